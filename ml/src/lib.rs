//! laddkoll's recommender as a pure library: no database, no HTTP, deterministic for a seed.
//!
//! Stages: [`import`] reads session history CSV; [`features`] turns sessions into arrival
//! angles, weekday types, durations and energies; [`habits`] clusters each driver's sessions
//! into habits with linfa; [`occupancy`] estimates each location's use per hour of week;
//! [`rank`] turns habits into reasoned recommendations and [`spread`] assigns them so no slot
//! gets more drivers than it has room for; [`pipeline::recommend_all`] runs all of it for every
//! driver in parallel; [`mod@evaluate`] measures the habit model on a temporal hold-out and
//! [`mod@replay`] replays a held-out period with a share of drivers following the advice;
//! [`synth`] generates realistic synthetic histories for tests and benchmarks.

#![warn(missing_docs)]

pub mod data;
pub mod evaluate;
pub mod features;
pub mod geo;
pub mod habits;
pub mod import;
pub mod occupancy;
pub mod pipeline;
pub mod rank;
pub mod replay;
pub mod spread;
pub mod synth;

pub use data::{DriverId, Location, LocationId, Preferences, Session, TimeWindow, HOURS_PER_WEEK};
pub use evaluate::{evaluate, EvalConfig, EvalReport, Metrics, Skipped};
pub use geo::{haversine_km, Coord};
pub use habits::{learn_habits, DayKind, DriverModel, Habit, HabitConfig, Prediction};
pub use import::{parse_sessions_csv, ImportRow, ParseOutcome, RowError};
pub use occupancy::{compute_occupancy, LocationOccupancy};
pub use pipeline::{
    count_drivers, recommend_all, recommend_all_with_progress, DriverResult, RecommendInput,
    RecommendOutput,
};
pub use rank::{span_label, RankConfig, Reason, Recommendation, RecommendationKind};
pub use replay::{replay, ReplayConfig, ReplayReport};
pub use synth::{generate, synthetic_input, SynthConfig};
