//! The nightly job behind `laddkoll recommend`: read histories, run the recommender for every
//! driver in parallel (inside `laddkoll-ml`), and write a complete new batch atomically.
//!
//! A run is recorded as a `recommendation_batches` row with status `running` as soon as it
//! starts (its own short transaction). Its recommendations are written, older batches' rows
//! removed and the status set to `complete` in **one** write transaction, so the API — which
//! shows only the newest complete batch — never sees half a batch. A failure marks the batch
//! `failed` with the error.

use std::sync::atomic::AtomicUsize;

use chrono::NaiveDateTime;
use laddkoll_ml::{HabitConfig, RankConfig, RecommendInput, RecommendOutput};

use super::history;
use super::queries::{self, BatchCounts, RecommendationRow};
use crate::db::{write_tx, DbConn};

/// Settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct JobConfig {
    /// History older than this many days is ignored.
    pub window_days: u32,
    /// Seed of the recommender: same data and seed, same batch.
    pub seed: u64,
    /// How much evidence a piece of advice needs.
    pub evidence: Evidence,
}

/// The minimum evidence behind a piece of advice (`--min-habit-sessions`,
/// `--min-occupancy-weeks`); the defaults are the ml crate's ([`RankConfig::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// Fewest sessions behind a habit.
    pub min_habit_sessions: usize,
    /// Fewest weeks of history behind an occupancy figure.
    pub min_occupancy_weeks: u32,
}

impl Default for Evidence {
    fn default() -> Self {
        let rank = RankConfig::default();
        Self {
            min_habit_sessions: rank.min_habit_sessions,
            min_occupancy_weeks: rank.min_occupancy_weeks,
        }
    }
}

/// The habit model's and the ranking's settings: the one configuration `laddkoll recommend`
/// advises from and `laddkoll evaluate` scores (defaults documented in `ml/README.md`).
pub fn model_config(evidence: Evidence) -> (HabitConfig, RankConfig) {
    (
        HabitConfig::default(),
        RankConfig {
            min_habit_sessions: evidence.min_habit_sessions,
            min_occupancy_weeks: evidence.min_occupancy_weeks,
            ..RankConfig::default()
        },
    )
}

/// The input read from the database, with what it counted.
pub struct LoadedInput {
    pub input: RecommendInput,
    pub drivers: usize,
    /// The start of the window (UTC).
    pub since: NaiveDateTime,
}

/// Reads histories within the window, locations with their energy prices by hour of week (from
/// their charge points' tariffs, see [`history::attach_prices`]) and preferences.
pub fn load_input(
    conn: &mut DbConn,
    cfg: &JobConfig,
    now: NaiveDateTime,
) -> Result<LoadedInput, diesel::result::Error> {
    let (mut locations, timezones) = history::load_locations(conn, None)?;
    history::attach_prices(conn, &mut locations)?;
    let since = history::window_start(now, cfg.window_days);
    let sessions = history::load_sessions(conn, since, None, &timezones)?;
    let preferences = history::load_preferences(conn)?;
    let drivers = laddkoll_ml::count_drivers(&sessions);
    let (habits, rank) = model_config(cfg.evidence);
    Ok(LoadedInput {
        input: RecommendInput {
            sessions,
            locations,
            preferences,
            habits,
            rank,
        },
        drivers,
        since,
    })
}

/// Runs the recommender, counting finished drivers in `progress`.
pub fn compute(input: &RecommendInput, cfg: &JobConfig, progress: &AtomicUsize) -> RecommendOutput {
    laddkoll_ml::recommend_all_with_progress(input, cfg.seed, progress)
}

/// The rows a batch holds for `output`.
pub fn rows_of(output: &RecommendOutput, batch_id: i64) -> Vec<RecommendationRow> {
    output
        .drivers
        .iter()
        .flat_map(|d| d.recommendations.iter())
        .map(|r| RecommendationRow {
            id: 0,
            batch_id,
            user_id: r.driver,
            kind: r.kind.as_str().to_string(),
            sentence: r.sentence.clone(),
            numbers: serde_json::to_string(&r.reason).unwrap_or_else(|_| "{}".into()),
            location_id: r.location,
            from_location_id: r.from_location,
            weekday: i64::from(r.weekday),
            start_hour: i64::from(r.start_hour),
            end_hour: i64::from(r.end_hour),
            hour_of_week: i64::from(r.hour_of_week),
            from_hour_of_week: i64::from(r.from_hour_of_week),
            score: r.score,
            days: i64::from(r.days),
        })
        .collect()
}

/// What a run counted.
pub fn counts_of(output: &RecommendOutput, sessions: usize) -> BatchCounts {
    BatchCounts {
        drivers: output.drivers.len() as i64,
        sessions: sessions as i64,
        recommendations: output.recommendations as i64,
        failures: 0,
    }
}

/// Records the start of a run; returns the batch id.
pub fn start(
    conn: &mut DbConn,
    cfg: &JobConfig,
    now: NaiveDateTime,
) -> Result<i64, diesel::result::Error> {
    write_tx(conn, |conn| {
        queries::start_batch(conn, now, i64::from(cfg.window_days), cfg.seed as i64)
    })
}

/// Writes the batch's rows, drops older batches' rows and marks it complete, all in one write
/// transaction.
pub fn commit(
    conn: &mut DbConn,
    batch_id: i64,
    rows: &[RecommendationRow],
    counts: BatchCounts,
    now: NaiveDateTime,
) -> Result<(), diesel::result::Error> {
    write_tx(conn, |conn| {
        queries::insert_recommendations(conn, rows)?;
        queries::delete_recommendations_before(conn, batch_id)?;
        queries::complete_batch(conn, batch_id, counts, now)
    })
}

/// Marks a run failed.
pub fn fail(
    conn: &mut DbConn,
    batch_id: i64,
    counts: BatchCounts,
    error: &str,
    now: NaiveDateTime,
) -> Result<(), diesel::result::Error> {
    write_tx(conn, |conn| {
        queries::fail_batch(conn, batch_id, counts, error, now)
    })
}
