//! `laddkoll serve --demo`: a populated network, so a new user sees every part of the product
//! at once — locations around Stockholm with tariffs, an operator, drivers with RFID cards,
//! months of priced charging history, issued invoices and a batch of recommendations.
//!
//! The operator's side (tariffs, locations, charge points, cards, preferences) goes through the
//! real HTTP API in process, so it is validated like an operator's requests and each charger's
//! key comes from the handler that shows it once. The history is made by the functions the OCPP
//! endpoint calls (status, start, meter values, stop, pricing) with past timestamps, so sessions
//! are priced exactly like real ones; then the invoice run for each past month and the
//! recommendation job.
//!
//! A database is seeded once: the demo operator's account marks it. Passwords are random per
//! database and kept in `demo-credentials.json` and the simulator's fleet file (next to the
//! SQLite file; for PostgreSQL under `data/`), which are printed again at each start. When a
//! file is missing or no longer matches the database (another database, a changed password),
//! the demo accounts get new passwords and the demo chargers new keys, and both files are
//! rewritten: the database, not a file, is what must stay consistent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use rand::rngs::{OsRng, StdRng};
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::accounts::queries as users;
use crate::auth::tokens::{random_token, token_hash};
use crate::central::{self, ConnectorStatus, StatusChange, TransactionStart, TransactionStop};
use crate::charging::{MeterSample, Reading};
use crate::db::schema::{charge_points, connectors, rfid_cards};
use crate::db::{write_tx, DbConn};
use crate::http::auth::{DRIVER, OPERATOR};
use crate::http::time::now;
use crate::http::ApiError;
use crate::simulate::fleet::{Fleet, FleetCharger, FleetDriver};
use crate::state::AppState;

/// The demo operator's email; its account marks a seeded database.
pub const OPERATOR_EMAIL: &str = "operator@laddkoll.example";
/// The demo driver whose credentials are printed.
pub const DRIVER_EMAIL: &str = "anna@laddkoll.example";
/// Every demo charge point's id starts with this.
pub const CHARGE_POINT_PREFIX: &str = "DEMO-";
/// The time zone of every demo location.
const TIMEZONE: Tz = chrono_tz::Europe::Stockholm;
/// How far back the history goes.
const HISTORY_WEEKS: i64 = 16;
/// Sessions recorded per write transaction.
const SESSIONS_PER_TRANSACTION: usize = 50;

/// Where the demo keeps what it must print again: the fleet file and the credentials.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    /// The simulator's fleet file (`laddkoll::simulate::fleet::Fleet`).
    pub fleet: PathBuf,
    /// The operator's and the demo driver's logins.
    pub credentials: PathBuf,
}

impl DemoFiles {
    /// Next to the SQLite file, or under `data/` for PostgreSQL.
    pub fn for_database(database_url: &str) -> DemoFiles {
        let dir = match database_url.strip_prefix("sqlite://") {
            Some(path) => Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            None => PathBuf::from("data"),
        };
        DemoFiles::in_dir(&dir)
    }

    /// The files in `dir`.
    pub fn in_dir(dir: &Path) -> DemoFiles {
        DemoFiles {
            fleet: dir.join("demo-fleet.json"),
            credentials: dir.join("demo-credentials.json"),
        }
    }
}

/// An email and password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// What the demo prints: the operator's and the demo driver's logins and the driver's card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub operator: Login,
    pub driver: Login,
    /// The RFID uid of the demo driver's card.
    pub driver_id_tag: String,
}

/// What a fresh seeding created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedCounts {
    pub locations: usize,
    pub charge_points: usize,
    pub drivers: usize,
    pub sessions: usize,
    pub invoices: usize,
    pub recommendations: usize,
}

/// The outcome of [`ensure`].
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub credentials: DemoCredentials,
    pub files: DemoFiles,
    /// What was created, or `None` when the database held the demo already.
    pub seeded: Option<SeedCounts>,
}

impl DemoReport {
    /// The block printed on stdout when the server starts.
    pub fn banner(&self, bind: SocketAddr) -> String {
        let host = if bind.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), bind.port())
        } else {
            bind
        };
        let what = match &self.seeded {
            Some(c) => format!(
                "created {} locations, {} charge points, {} drivers, {} sessions, {} invoices, \
                 {} recommendations",
                c.locations, c.charge_points, c.drivers, c.sessions, c.invoices, c.recommendations
            ),
            None => "the demo data was there already; nothing added".to_string(),
        };
        let c = &self.credentials;
        format!(
            "\n=== laddkoll demo: {what} ===\n\
             web portal:        http://{host}/\n\
             API docs:          http://{host}/docs/\n\
             operator email:    {}\n\
             operator password: {}\n\
             driver email:      {}\n\
             driver password:   {}\n\
             driver RFID tag:   {}\n\
             fleet file:        {}\n\
             credentials file:  {}\n\
             (the files hold passwords and charger keys: keep them private)\n",
            c.operator.email,
            c.operator.password,
            c.driver.email,
            c.driver.password,
            c.driver_id_tag,
            self.files.fleet.display(),
            self.files.credentials.display(),
        )
    }
}

/// Seeds the demo into an empty database, or, when it is there already, makes sure the printed
/// credentials and the fleet file work and returns them.
pub async fn ensure(state: Arc<AppState>, files: &DemoFiles) -> anyhow::Result<DemoReport> {
    let found = state.db.run(|conn| Ok(demo_state(conn)?)).await?;
    match found {
        DemoState::Empty => seed(state, files).await,
        DemoState::Seeded => refresh(state, files).await,
        DemoState::Interrupted => bail!(
            "an earlier demo seeding of this database did not finish; start the demo with a \
             fresh database (remove the SQLite file or point DATABASE_URL at an empty one)"
        ),
        DemoState::NotEmpty(n) => bail!(
            "--demo fills an empty database, and this one has {n} accounts already; point \
             DATABASE_URL at a new one, e.g. DATABASE_URL=sqlite://data/demo.db"
        ),
    }
}

enum DemoState {
    Empty,
    Seeded,
    Interrupted,
    NotEmpty(i64),
}

fn demo_state(conn: &mut DbConn) -> QueryResult<DemoState> {
    if users::find_by_email(conn, OPERATOR_EMAIL)?.is_some() {
        // The recommendation batch is the last thing seeding writes.
        return Ok(
            match crate::recommend::queries::latest_complete_batch(conn)? {
                Some(_) => DemoState::Seeded,
                None => DemoState::Interrupted,
            },
        );
    }
    let accounts: i64 = crate::db::schema::users::table.count().get_result(conn)?;
    Ok(if accounts == 0 {
        DemoState::Empty
    } else {
        DemoState::NotEmpty(accounts)
    })
}

// --- the network -------------------------------------------------------------------------

/// A kind of charge point; each kind has its tariff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 2 × 22 kW AC at a workplace.
    AcWork,
    /// 2 × 22 kW AC on the street or in a public garage.
    AcStreet,
    /// 2 × DC CCS of this many kW.
    Dc(u32),
}

impl Kind {
    fn is_dc(self) -> bool {
        matches!(self, Kind::Dc(_))
    }

    fn power_kw(self) -> f64 {
        match self {
            Kind::Dc(kw) => f64::from(kw),
            _ => 22.0,
        }
    }

    fn tariff(self) -> usize {
        match self {
            Kind::AcWork => 0,
            Kind::AcStreet => 1,
            Kind::Dc(kw) if kw < 100 => 2,
            Kind::Dc(_) => 3,
        }
    }
}

struct Site {
    code: &'static str,
    name: &'static str,
    address: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    chargers: &'static [Kind],
}

const SITES: &[Site] = &[
    Site {
        code: "KST",
        name: "Kista Science Tower, garage",
        address: "Färögatan 33",
        city: "Kista",
        lat: 59.40325,
        lon: 17.94440,
        chargers: &[Kind::AcWork],
    },
    Site {
        code: "KGA",
        name: "Kista Galleria P-hus",
        address: "Kistagången 12",
        city: "Kista",
        lat: 59.40550,
        lon: 17.94950,
        chargers: &[Kind::AcStreet, Kind::Dc(50)],
    },
    Site {
        code: "GOT",
        name: "Götgatan, Södermalm",
        address: "Götgatan 78",
        city: "Stockholm",
        lat: 59.31020,
        lon: 18.07370,
        chargers: &[Kind::AcStreet],
    },
    Site {
        code: "MED",
        name: "Medborgarplatsen",
        address: "Medborgarplatsen 3",
        city: "Stockholm",
        lat: 59.31450,
        lon: 18.07220,
        chargers: &[Kind::AcStreet, Kind::AcStreet],
    },
    Site {
        code: "SKA",
        name: "Skanstull snabbladdning",
        address: "Ringvägen 98",
        city: "Stockholm",
        lat: 59.30790,
        lon: 18.07630,
        chargers: &[Kind::Dc(150), Kind::AcStreet],
    },
    Site {
        code: "ODE",
        name: "Odenplan",
        address: "Odengatan 65",
        city: "Stockholm",
        lat: 59.34300,
        lon: 18.04900,
        chargers: &[Kind::AcStreet, Kind::AcStreet],
    },
    Site {
        code: "KAR",
        name: "Karlaplan",
        address: "Karlaplan 13",
        city: "Stockholm",
        lat: 59.33880,
        lon: 18.09050,
        chargers: &[Kind::AcStreet, Kind::Dc(50)],
    },
    Site {
        code: "FRI",
        name: "Fridhemsplan",
        address: "Fridhemsgatan 36",
        city: "Stockholm",
        lat: 59.33250,
        lon: 18.03000,
        chargers: &[Kind::AcStreet, Kind::AcStreet],
    },
    Site {
        code: "HAM",
        name: "Hammarby Sjöstad",
        address: "Hammarby allé 93",
        city: "Stockholm",
        lat: 59.30400,
        lon: 18.10200,
        chargers: &[Kind::AcStreet, Kind::AcStreet],
    },
    Site {
        code: "MOS",
        name: "Mall of Scandinavia",
        address: "Stjärntorget 2",
        city: "Solna",
        lat: 59.36990,
        lon: 18.00430,
        chargers: &[Kind::Dc(150), Kind::Dc(150), Kind::AcStreet],
    },
    Site {
        code: "HAG",
        name: "Häggvik E4 snabbladdning",
        address: "Häggviksvägen 4",
        city: "Sollentuna",
        lat: 59.43900,
        lon: 17.92900,
        chargers: &[Kind::Dc(150), Kind::Dc(50)],
    },
    Site {
        code: "LIL",
        name: "Liljeholmstorget",
        address: "Liljeholmstorget 7",
        city: "Stockholm",
        lat: 59.31000,
        lon: 18.02280,
        chargers: &[Kind::AcStreet, Kind::Dc(50)],
    },
    Site {
        code: "NAC",
        name: "Nacka Forum",
        address: "Forumvägen 14",
        city: "Nacka",
        lat: 59.31050,
        lon: 18.16300,
        chargers: &[Kind::Dc(50), Kind::AcStreet],
    },
];

fn site(code: &str) -> usize {
    SITES
        .iter()
        .position(|s| s.code == code)
        .expect("demo habits name demo sites")
}

fn charge_point_id(site: &Site, n: usize) -> String {
    format!("{CHARGE_POINT_PREFIX}{}-{}", site.code, n + 1)
}

/// The tariffs, in [`Kind::tariff`] order. Prices excl. VAT; 25 % VAT. As such places price
/// charging: AC at work and in streets and garages by energy only (cheaper off-peak; a garage's
/// own parking fee is the garage's business, not the charging bill), DC fast chargers by energy
/// with an idle fee per hour connected after charging, so the bay is freed.
fn tariffs() -> [Value; 4] {
    let weekdays = json!(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]);
    [
        json!({"name": "AC arbetsplats", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 2.60, "step_size": 1}],
             "restrictions": {"start_time": "07:00", "end_time": "10:00", "day_of_week": weekdays}},
            {"price_components": [{"type": "ENERGY", "price": 1.90, "step_size": 1}]}
        ]}}),
        json!({"name": "AC gata", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 2.20, "step_size": 1}],
             "restrictions": {"start_time": "21:00", "end_time": "09:00"}},
            {"price_components": [{"type": "ENERGY", "price": 2.80, "step_size": 1}]}
        ]}}),
        json!({"name": "DC snabb 50 kW", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 3.90, "step_size": 1},
                                  {"type": "FLAT", "price": 4.00, "step_size": 1}]},
            {"price_components": [{"type": "PARKING_TIME", "price": 60.00, "step_size": 60}]}
        ]}}),
        json!({"name": "DC ultra 150 kW", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 4.70, "step_size": 1}]},
            {"price_components": [{"type": "PARKING_TIME", "price": 120.00, "step_size": 60}]}
        ]}}),
    ]
}

// --- the drivers and their habits ---------------------------------------------------------

/// A habit: on these weekdays (0 = Monday), with this probability, at this site (or the
/// alternative when it is full), arriving around `arrive_h` local time.
struct Habit {
    days: &'static [u32],
    prob: f64,
    site: &'static str,
    alt: Option<&'static str>,
    arrive_h: f64,
    spread_min: f64,
    /// Minutes added to `arrive_h` week by week (cycling), before the jitter: a habit whose
    /// arrival varies in a known way.
    pattern_min: &'static [f64],
    stay_h: (f64, f64),
    kwh: (f64, f64),
    dc: bool,
}

struct Driver {
    local: &'static str,
    name: &'static str,
    ac_kw: f64,
    dc_kw: f64,
    habits: &'static [Habit],
}

const WEEKDAYS: &[u32] = &[0, 1, 2, 3, 4];
const fn commute(arrive_h: f64) -> Habit {
    Habit {
        days: WEEKDAYS,
        prob: 0.75,
        site: "KST",
        alt: None,
        arrive_h,
        spread_min: 20.0,
        pattern_min: &[],
        stay_h: (7.5, 9.0),
        kwh: (10.0, 24.0),
        dc: false,
    }
}

/// The demo driver first; her home is near Götgatan and she works in Kista.
const DRIVERS: &[Driver] = &[
    Driver {
        local: "anna",
        name: "Anna Lindqvist",
        ac_kw: 11.0,
        dc_kw: 100.0,
        habits: &[
            Habit {
                days: &[0, 1, 2, 3],
                prob: 0.8,
                site: "KST",
                alt: Some("KGA"),
                arrive_h: 7.67,
                spread_min: 15.0,
                pattern_min: &[],
                stay_h: (8.0, 8.8),
                kwh: (12.0, 22.0),
                dc: false,
            },
            // Saturday mornings near home, some weeks before 09:00 (the cheaper night tariff
            // still applies), most weeks after: the cheaper hour is within her own habit
            Habit {
                days: &[5],
                prob: 0.85,
                site: "GOT",
                alt: Some("MED"),
                arrive_h: 9.33,
                spread_min: 10.0,
                pattern_min: &[-45.0, 0.0, 15.0, -30.0, 10.0, 0.0, 20.0, -40.0],
                stay_h: (1.5, 2.5),
                kwh: (14.0, 24.0),
                dc: false,
            },
            Habit {
                days: &[6],
                prob: 0.25,
                site: "HAG",
                alt: None,
                arrive_h: 15.5,
                spread_min: 60.0,
                pattern_min: &[],
                stay_h: (0.45, 0.7),
                kwh: (25.0, 40.0),
                dc: true,
            },
        ],
    },
    Driver {
        local: "erik",
        name: "Erik Johansson",
        ac_kw: 11.0,
        dc_kw: 130.0,
        habits: &[
            commute(7.3),
            Habit {
                days: &[5],
                prob: 0.5,
                site: "MOS",
                alt: None,
                arrive_h: 11.0,
                spread_min: 40.0,
                pattern_min: &[],
                stay_h: (0.4, 0.6),
                kwh: (25.0, 45.0),
                dc: true,
            },
        ],
    },
    Driver {
        local: "sara",
        name: "Sara Nilsson",
        ac_kw: 7.4,
        dc_kw: 75.0,
        habits: &[
            commute(7.6),
            Habit {
                days: &[6],
                prob: 0.5,
                site: "NAC",
                alt: None,
                arrive_h: 14.0,
                spread_min: 45.0,
                pattern_min: &[],
                stay_h: (1.5, 2.5),
                kwh: (10.0, 16.0),
                dc: false,
            },
        ],
    },
    Driver {
        local: "johan",
        name: "Johan Berg",
        ac_kw: 11.0,
        dc_kw: 150.0,
        habits: &[
            commute(7.9),
            Habit {
                days: &[2],
                prob: 0.6,
                site: "ODE",
                alt: None,
                arrive_h: 18.5,
                spread_min: 20.0,
                pattern_min: &[],
                stay_h: (1.5, 2.5),
                kwh: (10.0, 20.0),
                dc: false,
            },
        ],
    },
    Driver {
        local: "maria",
        name: "Maria Karlsson",
        ac_kw: 11.0,
        dc_kw: 100.0,
        habits: &[
            commute(8.2),
            Habit {
                days: &[5],
                prob: 0.6,
                site: "GOT",
                alt: None,
                arrive_h: 9.5,
                spread_min: 20.0,
                pattern_min: &[],
                stay_h: (1.5, 2.5),
                kwh: (12.0, 20.0),
                dc: false,
            },
        ],
    },
    Driver {
        local: "ali",
        name: "Ali Hassan",
        ac_kw: 11.0,
        dc_kw: 100.0,
        habits: &[
            Habit {
                days: &[0, 2, 4],
                prob: 0.7,
                site: "MED",
                alt: None,
                arrive_h: 18.5,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (12.0, 13.0),
                kwh: (15.0, 30.0),
                dc: false,
            },
            Habit {
                days: &[5],
                prob: 0.7,
                site: "GOT",
                alt: None,
                arrive_h: 10.3,
                spread_min: 20.0,
                pattern_min: &[],
                stay_h: (1.5, 2.5),
                kwh: (12.0, 20.0),
                dc: false,
            },
        ],
    },
    Driver {
        local: "elin",
        name: "Elin Andersson",
        ac_kw: 7.4,
        dc_kw: 50.0,
        habits: &[
            Habit {
                days: &[1, 3],
                prob: 0.7,
                site: "HAM",
                alt: None,
                arrive_h: 19.0,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (2.0, 3.0),
                kwh: (8.0, 18.0),
                dc: false,
            },
            Habit {
                days: &[5],
                prob: 0.6,
                site: "GOT",
                alt: None,
                arrive_h: 9.8,
                spread_min: 20.0,
                pattern_min: &[],
                stay_h: (1.5, 2.5),
                kwh: (8.0, 14.0),
                dc: false,
            },
            Habit {
                days: &[6],
                prob: 0.5,
                site: "SKA",
                alt: None,
                arrive_h: 12.0,
                spread_min: 45.0,
                pattern_min: &[],
                stay_h: (0.5, 0.8),
                kwh: (15.0, 25.0),
                dc: true,
            },
        ],
    },
    Driver {
        local: "oskar",
        name: "Oskar Lund",
        ac_kw: 11.0,
        dc_kw: 120.0,
        habits: &[
            Habit {
                days: &[0, 1, 2, 3, 4, 5, 6],
                prob: 0.35,
                site: "HAG",
                alt: None,
                arrive_h: 7.0,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (0.5, 0.75),
                kwh: (30.0, 50.0),
                dc: true,
            },
            Habit {
                days: &[0, 1, 2, 3, 4, 5, 6],
                prob: 0.35,
                site: "MOS",
                alt: None,
                arrive_h: 12.5,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (0.5, 0.75),
                kwh: (30.0, 50.0),
                dc: true,
            },
            Habit {
                days: &[0, 1, 2, 3, 4, 5, 6],
                prob: 0.3,
                site: "NAC",
                alt: None,
                arrive_h: 16.0,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (0.5, 0.75),
                kwh: (20.0, 35.0),
                dc: true,
            },
            Habit {
                days: &[0, 1, 2, 3, 4, 5, 6],
                prob: 0.3,
                site: "LIL",
                alt: None,
                arrive_h: 20.5,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (0.5, 0.75),
                kwh: (20.0, 35.0),
                dc: true,
            },
        ],
    },
    Driver {
        local: "lina",
        name: "Lina Ek",
        ac_kw: 11.0,
        dc_kw: 100.0,
        habits: &[
            Habit {
                days: WEEKDAYS,
                prob: 0.5,
                site: "KAR",
                alt: None,
                arrive_h: 12.0,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (1.0, 2.0),
                kwh: (6.0, 14.0),
                dc: false,
            },
            Habit {
                days: &[5],
                prob: 0.5,
                site: "NAC",
                alt: None,
                arrive_h: 13.0,
                spread_min: 45.0,
                pattern_min: &[],
                stay_h: (0.4, 0.6),
                kwh: (20.0, 30.0),
                dc: true,
            },
        ],
    },
    Driver {
        local: "mikael",
        name: "Mikael Svensson",
        ac_kw: 11.0,
        dc_kw: 100.0,
        habits: &[
            Habit {
                days: &[1, 3],
                prob: 0.6,
                site: "FRI",
                alt: None,
                arrive_h: 17.5,
                spread_min: 30.0,
                pattern_min: &[],
                stay_h: (2.0, 3.0),
                kwh: (10.0, 22.0),
                dc: false,
            },
            Habit {
                days: &[6],
                prob: 0.6,
                site: "LIL",
                alt: None,
                arrive_h: 11.0,
                spread_min: 45.0,
                pattern_min: &[],
                stay_h: (0.5, 0.7),
                kwh: (20.0, 35.0),
                dc: true,
            },
        ],
    },
];

fn driver_email(d: &Driver) -> String {
    format!("{}@laddkoll.example", d.local)
}

// --- secrets ----------------------------------------------------------------------------

/// A random password of four groups of four letters and digits (about 80 bits).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = OsRng;
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A random 7-byte RFID uid, as NFC cards have.
fn random_uid() -> String {
    let mut rng = OsRng;
    (0..7).map(|_| format!("{:02X}", rng.gen::<u8>())).collect()
}

// --- the in-process API ------------------------------------------------------------------

/// Calls the in-process app and returns the JSON answer, or an error naming the call.
macro_rules! api {
    ($app:expr, $method:ident, $path:expr, $token:expr, $body:expr) => {{
        let path: String = $path;
        let req = actix_web::test::TestRequest::default()
            .method(actix_web::http::Method::$method)
            .uri(&format!("/api/v1{path}"))
            .insert_header((
                actix_web::http::header::AUTHORIZATION,
                format!("Bearer {}", $token),
            ))
            .set_json($body)
            .to_request();
        let res = actix_web::dev::Service::call(&$app, req)
            .await
            .map_err(|e| anyhow!("{} {path}: {e}", stringify!($method)))?;
        let status = res.status();
        let body = actix_web::test::read_body(res).await;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{} {path} answered {status}: {value}", stringify!($method));
        }
        value
    }};
}

fn id_of(v: &Value) -> anyhow::Result<i64> {
    v["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no id in the answer {v}"))
}

fn access_token(state: &AppState, user: &users::User) -> String {
    state.jwt.issue(
        user.id,
        &user.role,
        user.token_version,
        None,
        now().and_utc().timestamp(),
    )
}

// --- seeding -----------------------------------------------------------------------------

/// A charge point as the history uses it.
#[derive(Debug, Clone)]
struct Point {
    id: String,
    site: usize,
    kind: Kind,
}

/// A demo driver's card.
#[derive(Debug, Clone)]
struct Account {
    id_tag: String,
}

async fn seed(state: Arc<AppState>, files: &DemoFiles) -> anyhow::Result<DemoReport> {
    let started = std::time::Instant::now();
    let app = actix_web::test::init_service(crate::build_app(state.clone())).await;

    let operator_password = random_password();
    let operator = crate::auth::register(
        &state,
        OPERATOR_EMAIL,
        SecretString::from(operator_password.clone()),
        "Demo Operator",
        OPERATOR,
        None,
    )
    .await
    .context("creating the demo operator")?;
    let op = access_token(&state, &operator);

    let mut tariff_ids = Vec::new();
    for body in tariffs() {
        let t = api!(app, POST, "/admin/tariffs".to_string(), op, body);
        tariff_ids.push(id_of(&t)?);
    }

    let mut fleet = Fleet::default();
    let mut points = Vec::new();
    let mut location_ids = Vec::new();
    for (si, s) in SITES.iter().enumerate() {
        let loc = api!(
            app,
            POST,
            "/admin/locations".to_string(),
            op,
            json!({
            "name": s.name, "address": s.address, "city": s.city, "country": "SE",
            "lat": s.lat, "lon": s.lon, "timezone": TIMEZONE.name()})
        );
        let location_id = id_of(&loc)?;
        location_ids.push(location_id);
        for (n, kind) in s.chargers.iter().enumerate() {
            let id = charge_point_id(s, n);
            let (standard, current) = if kind.is_dc() {
                ("IEC_62196_T2_COMBO", "DC")
            } else {
                ("IEC_62196_T2", "AC")
            };
            let connectors: Vec<Value> = (1..=2)
                .map(|c| {
                    json!({"connector_id": c, "standard": standard,
                                "power_kw": kind.power_kw(), "current_type": current})
                })
                .collect();
            let created = api!(
                app,
                POST,
                "/admin/charge-points".to_string(),
                op,
                json!({
                "id": id, "location_id": location_id,
                "tariff_id": tariff_ids[kind.tariff()], "connectors": connectors})
            );
            let key = created["password"]
                .as_str()
                .ok_or_else(|| anyhow!("no key for charge point {id}"))?;
            fleet.chargers.push(FleetCharger {
                id: id.clone(),
                key: key.to_string(),
                connectors: 2,
                location_id,
            });
            points.push(Point {
                id,
                site: si,
                kind: *kind,
            });
        }
    }

    let mut accounts = Vec::new();
    for d in DRIVERS {
        let email = driver_email(d);
        let password = random_password();
        let user = crate::auth::register(
            &state,
            &email,
            SecretString::from(password.clone()),
            d.name,
            DRIVER,
            None,
        )
        .await
        .with_context(|| format!("registering {email}"))?;
        let token = access_token(&state, &user);
        let uid = random_uid();
        api!(
            app,
            POST,
            "/me/rfid-cards".to_string(),
            token,
            json!({"uid": uid, "label": "Laddbricka"})
        );
        if d.local == DRIVERS[0].local {
            let (home, work) = (&SITES[site("GOT")], &SITES[site("KST")]);
            api!(
                app,
                PUT,
                "/me/preferences".to_string(),
                token,
                json!({
                "home": {"lat": home.lat, "lon": home.lon},
                "work": {"lat": work.lat, "lon": work.lon}})
            );
        }
        fleet.drivers.push(FleetDriver {
            email,
            password,
            id_tag: uid.clone(),
        });
        accounts.push(Account { id_tag: uid });
    }

    let seed_now = now();
    let plan = schedule(
        plan_sessions(seed_now, &mut StdRng::seed_from_u64(2026)),
        &points,
    );
    let recorded = plan.len();
    let config = BillingSettings::of(&state.config);
    let (invoices, recommendations) = state
        .db
        .run(move |conn| {
            record_history(conn, &plan, &points, &accounts)?;
            let invoices = issue_invoices(conn, &config, seed_now)?;
            let recommendations = run_recommendations(conn)?;
            Ok((invoices, recommendations))
        })
        .await?;

    let credentials = DemoCredentials {
        operator: Login {
            email: OPERATOR_EMAIL.into(),
            password: operator_password,
        },
        driver: Login {
            email: fleet.drivers[0].email.clone(),
            password: fleet.drivers[0].password.clone(),
        },
        driver_id_tag: fleet.drivers[0].id_tag.clone(),
    };
    save(files, &credentials, &fleet)?;
    let counts = SeedCounts {
        locations: location_ids.len(),
        charge_points: fleet.chargers.len(),
        drivers: fleet.drivers.len(),
        sessions: recorded,
        invoices,
        recommendations,
    };
    tracing::info!(
        ?counts,
        secs = started.elapsed().as_secs_f64(),
        "seeded the demo"
    );
    Ok(DemoReport {
        credentials,
        files: files.clone(),
        seeded: Some(counts),
    })
}

/// The settings the seeding needs on the blocking pool.
struct BillingSettings {
    timezone: Tz,
    series: String,
    seller: crate::billing::invoicing::Seller,
}

impl BillingSettings {
    fn of(config: &crate::config::Config) -> BillingSettings {
        BillingSettings {
            timezone: config.billing_timezone,
            series: config.invoice_series.clone(),
            seller: config.seller(),
        }
    }
}

fn save(files: &DemoFiles, credentials: &DemoCredentials, fleet: &Fleet) -> anyhow::Result<()> {
    fleet.save(&files.fleet)?;
    let json = serde_json::to_string_pretty(credentials)?;
    std::fs::write(&files.credentials, json)
        .with_context(|| format!("writing {}", files.credentials.display()))
}

// --- history -----------------------------------------------------------------------------

/// A session a habit asks for.
#[derive(Debug, Clone)]
struct Planned {
    driver: usize,
    sites: Vec<usize>,
    dc: bool,
    start: NaiveDateTime,
    plug_out: NaiveDateTime,
    energy_wh: i64,
}

/// A planned session with its connector.
#[derive(Debug, Clone)]
struct Scheduled {
    plan: Planned,
    point: usize,
    connector: u32,
}

/// Minutes around zero, roughly normal (the sum of three uniforms), within ±1.5 `spread`.
fn jitter(rng: &mut StdRng, spread: f64) -> f64 {
    (0..3).map(|_| rng.gen_range(-0.5..0.5)).sum::<f64>() * spread
}

/// Every habit's sessions over the past weeks, ending before `now` (UTC), in no order.
fn plan_sessions(now: NaiveDateTime, rng: &mut StdRng) -> Vec<Planned> {
    let today = TIMEZONE.from_utc_datetime(&now).date_naive();
    let first = today - Duration::weeks(HISTORY_WEEKS);
    let mut out = Vec::new();
    for day in first.iter_days().take_while(|d| *d <= today) {
        let weekday = day.weekday().num_days_from_monday();
        for (di, d) in DRIVERS.iter().enumerate() {
            for h in d.habits {
                if !h.days.contains(&weekday) || !rng.gen_bool(h.prob) {
                    continue;
                }
                let week = ((day - first).num_days() / 7) as usize;
                let pattern = if h.pattern_min.is_empty() {
                    0.0
                } else {
                    h.pattern_min[week % h.pattern_min.len()]
                };
                let minutes = h.arrive_h * 60.0 + pattern + jitter(rng, h.spread_min);
                let stay_min = rng.gen_range(h.stay_h.0..h.stay_h.1) * 60.0;
                let kwh = rng.gen_range(h.kwh.0..h.kwh.1);
                let Some(start) = local_to_utc(day, minutes) else {
                    continue;
                };
                let plug_out = start + Duration::seconds((stay_min * 60.0) as i64);
                if plug_out >= now - Duration::minutes(5) {
                    continue;
                }
                let mut sites = vec![site(h.site)];
                sites.extend(h.alt.map(site));
                out.push(Planned {
                    driver: di,
                    sites,
                    dc: h.dc,
                    start,
                    plug_out,
                    energy_wh: (kwh * 1000.0) as i64,
                });
            }
        }
    }
    out
}

/// A local time on `day`, `minutes` after midnight, in UTC (whole seconds); `None` in a DST gap.
fn local_to_utc(day: NaiveDate, minutes: f64) -> Option<NaiveDateTime> {
    let secs = (minutes * 60.0).round() as i64;
    let naive = day.and_time(NaiveTime::MIN) + Duration::seconds(secs);
    TIMEZONE
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.naive_utc())
}

/// Gives each session, in order of arrival, the first free connector of its kind at its site
/// (or the alternative site); a driver who finds none goes without, as at a full station.
fn schedule(mut plan: Vec<Planned>, points: &[Point]) -> Vec<Scheduled> {
    plan.sort_by_key(|p| (p.start, p.driver));
    let mut free_at: HashMap<(usize, u32), NaiveDateTime> = HashMap::new();
    let mut driver_free_at: HashMap<usize, NaiveDateTime> = HashMap::new();
    let mut out = Vec::new();
    for p in plan {
        if driver_free_at.get(&p.driver).is_some_and(|t| *t > p.start) {
            continue;
        }
        let found = p.sites.iter().find_map(|&s| {
            points
                .iter()
                .enumerate()
                .filter(|(_, pt)| pt.site == s && pt.kind.is_dc() == p.dc)
                .flat_map(|(i, _)| [(i, 1), (i, 2)])
                .find(|k| free_at.get(k).is_none_or(|t| *t <= p.start))
        });
        let Some((point, connector)) = found else {
            continue;
        };
        free_at.insert((point, connector), p.plug_out + Duration::minutes(2));
        driver_free_at.insert(p.driver, p.plug_out);
        out.push(Scheduled {
            plan: p,
            point,
            connector,
        });
    }
    out
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

fn sampled(value: i64, measurand: &str, unit: &str) -> Reading {
    Reading {
        value: value.to_string(),
        context: Some("Sample.Periodic".into()),
        measurand: Some(measurand.into()),
        unit: Some(unit.into()),
        ..Default::default()
    }
}

/// Records the sessions as a charger would report them, a batch per write transaction.
fn record_history(
    conn: &mut DbConn,
    plan: &[Scheduled],
    points: &[Point],
    accounts: &[Account],
) -> Result<(), ApiError> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut registers: HashMap<(usize, u32), i64> = HashMap::new();
    for (i, s) in plan.iter().enumerate() {
        registers
            .entry((s.point, s.connector))
            .or_insert_with(|| 1_000_000 + 10_000 * (i as i64 % 97));
    }
    for chunk in plan.chunks(SESSIONS_PER_TRANSACTION) {
        write_tx(conn, |conn| {
            for s in chunk {
                let register = registers
                    .get_mut(&(s.point, s.connector))
                    .expect("every connector has a register");
                record_session(
                    conn,
                    s,
                    &points[s.point],
                    &accounts[s.plan.driver],
                    register,
                    &mut rng,
                )?;
            }
            Ok::<_, ApiError>(())
        })?;
    }
    Ok(())
}

fn record_session(
    conn: &mut DbConn,
    s: &Scheduled,
    point: &Point,
    account: &Account,
    register: &mut i64,
    rng: &mut StdRng,
) -> Result<(), ApiError> {
    let driver = &DRIVERS[s.plan.driver];
    let p = &s.plan;
    let cp = point.id.as_str();
    let connector = i64::from(s.connector);
    let power_w = if p.dc {
        // DC power tapers: about three quarters of the lower of car and charger on average.
        (driver.dc_kw.min(point.kind.power_kw()) * 750.0) as i64
    } else {
        (driver.ac_kw.min(point.kind.power_kw()) * 1000.0) as i64
    };
    let stay = (p.plug_out - p.start).num_seconds();
    let charging = (p.energy_wh * 3600 / power_w).min(stay);
    let charge_end = p.start + Duration::seconds(charging);
    let energy_at =
        |t: NaiveDateTime| ((t - p.start).num_seconds().clamp(0, charging)) * power_w / 3600;
    let meter_start = *register;
    let meter_stop = meter_start + energy_at(p.plug_out);
    *register = meter_stop + rng.gen_range(0..50);
    let soc_start = rng.gen_range(10..40);

    // The same charger-event API the OCPP endpoint uses, one event at a time.
    let status = |conn: &mut DbConn, status: ConnectorStatus, at: NaiveDateTime| {
        let change = StatusChange {
            connector_id: connector,
            status,
            error_code: None,
            at,
        };
        central::status_changed(conn, cp, &change, at)
    };
    status(
        conn,
        ConnectorStatus::Preparing,
        p.start - Duration::seconds(30),
    )?;
    status(conn, ConnectorStatus::Charging, p.start)?;
    if charge_end < p.plug_out - Duration::minutes(1) {
        status(conn, ConnectorStatus::SuspendedEV, charge_end)?;
    }
    status(conn, ConnectorStatus::Finishing, p.plug_out)?;
    let available = p.plug_out + Duration::seconds(40);

    let start = TransactionStart {
        connector_id: s.connector,
        id_tag: account.id_tag.clone(),
        meter_start: i32::try_from(meter_start).unwrap_or(i32::MAX),
        at: utc(p.start),
    };
    let started =
        central::transaction_started(conn, cp, &start, p.start, p.start - Duration::hours(6))?;
    let tx = i32::try_from(started.transaction_id)
        .map_err(|_| ApiError::Internal("transaction id out of range".into()))?;

    // A sample every 15 minutes, and one when the car is full.
    let mut times: Vec<NaiveDateTime> = (1..)
        .map(|k| p.start + Duration::minutes(15 * k))
        .take_while(|t| *t < p.plug_out)
        .collect();
    if charge_end < p.plug_out && !times.contains(&charge_end) {
        times.push(charge_end);
        times.sort();
    }
    let samples: Vec<MeterSample> = times
        .iter()
        .map(|&t| {
            let energy = energy_at(t);
            let mut readings = vec![
                sampled(meter_start + energy, "Energy.Active.Import.Register", "Wh"),
                sampled(
                    if t < charge_end { power_w } else { 0 },
                    "Power.Active.Import",
                    "W",
                ),
            ];
            if p.dc {
                // A 75 kWh battery.
                let soc = (soc_start + energy / 750).min(100);
                readings.push(sampled(soc, "SoC", "Percent"));
            }
            MeterSample {
                at: utc(t),
                readings,
            }
        })
        .collect();
    central::meter_values(conn, cp, s.connector, Some(tx), &samples, p.plug_out)?;
    let stop = TransactionStop {
        transaction_id: tx,
        meter_stop: i32::try_from(meter_stop).unwrap_or(i32::MAX),
        at: utc(p.plug_out),
        reason: Some("EVDisconnected".into()),
        id_tag: None,
        data: Vec::new(),
    };
    let stopped = central::transaction_stopped(conn, cp, &stop, p.plug_out)?;
    if let Some(id) = stopped.finished {
        central::session_finished(conn, id, p.plug_out)?;
    }
    status(conn, ConnectorStatus::Available, available)?;
    Ok(())
}

/// Issues invoices for every complete month of the history, each on the first of the next
/// month, as a monthly run would have. Returns how many.
fn issue_invoices(
    conn: &mut DbConn,
    billing: &BillingSettings,
    now: NaiveDateTime,
) -> Result<usize, ApiError> {
    let tz = billing.timezone;
    let this_month = tz
        .from_utc_datetime(&now)
        .date_naive()
        .with_day(1)
        .expect("day 1");
    let mut month = (this_month - Duration::weeks(HISTORY_WEEKS + 1))
        .with_day(1)
        .expect("day 1");
    let mut issued = 0;
    while month < this_month {
        let next = (month + Duration::days(32)).with_day(1).expect("day 1");
        let issue_at = tz
            .from_local_datetime(&next.and_hms_opt(6, 0, 0).expect("06:00"))
            .earliest()
            .map_or(now, |t| t.naive_utc());
        let period = format!("{:04}-{:02}", month.year(), month.month());
        let report = crate::billing::invoicing::run(
            conn,
            &period,
            tz,
            &billing.series,
            &billing.seller,
            issue_at,
        )?;
        issued += report.invoices_issued;
        month = next;
    }
    Ok(issued)
}

/// Runs the nightly recommendation job once. Returns how many recommendations it wrote.
fn run_recommendations(conn: &mut DbConn) -> Result<usize, ApiError> {
    use crate::recommend::job;
    let cfg = job::JobConfig {
        window_days: 182,
        seed: 1,
        evidence: job::Evidence::default(),
    };
    let t = now();
    let batch = job::start(conn, &cfg, t)?;
    let loaded = job::load_input(conn, &cfg, t)?;
    let output = job::compute(&loaded.input, &cfg, &AtomicUsize::new(0));
    let counts = job::counts_of(&output, loaded.input.sessions.len());
    let rows = job::rows_of(&output, batch);
    job::commit(conn, batch, &rows, counts, now())?;
    Ok(rows.len())
}

// --- a seeded database -------------------------------------------------------------------

async fn refresh(state: Arc<AppState>, files: &DemoFiles) -> anyhow::Result<DemoReport> {
    let saved: Option<DemoCredentials> = std::fs::read_to_string(&files.credentials)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let saved_fleet = Fleet::load(&files.fleet).ok();
    let known_driver = |email: &str| {
        saved_fleet
            .as_ref()
            .and_then(|f| f.drivers.iter().find(|d| d.email == email))
            .map(|d| d.password.clone())
    };

    let operator_password = working_password(
        &state,
        OPERATOR_EMAIL,
        saved.as_ref().map(|c| c.operator.password.clone()),
    )
    .await?
    .ok_or_else(|| anyhow!("the demo operator {OPERATOR_EMAIL} has no password (erased?)"))?;

    let mut fleet = Fleet::default();
    for d in DRIVERS {
        let email = driver_email(d);
        // A driver who erased their account is no longer in the fleet.
        let Some(password) = working_password(&state, &email, known_driver(&email)).await? else {
            continue;
        };
        let tag_email = email.clone();
        let id_tag = state
            .db
            .run(move |conn| Ok(card_of(conn, &tag_email)?))
            .await?;
        fleet.drivers.push(FleetDriver {
            email,
            password,
            id_tag: id_tag.unwrap_or_default(),
        });
    }
    let driver = fleet
        .drivers
        .iter()
        .find(|d| d.email == DRIVER_EMAIL)
        .ok_or_else(|| anyhow!("the demo driver {DRIVER_EMAIL} was deleted"))?
        .clone();

    let known_keys: HashMap<String, String> = saved_fleet
        .map(|f| f.chargers.into_iter().map(|c| (c.id, c.key)).collect())
        .unwrap_or_default();
    fleet.chargers = state
        .db
        .run(move |conn| Ok(charger_keys(conn, &known_keys)?))
        .await?;

    let credentials = DemoCredentials {
        operator: Login {
            email: OPERATOR_EMAIL.into(),
            password: operator_password,
        },
        driver: Login {
            email: driver.email,
            password: driver.password,
        },
        driver_id_tag: driver.id_tag,
    };
    save(files, &credentials, &fleet)?;
    Ok(DemoReport {
        credentials,
        files: files.clone(),
        seeded: None,
    })
}

/// The account's password: `known` if it still verifies, else a new random one that is set
/// (revoking the account's tokens). `None` when the account is gone.
async fn working_password(
    state: &AppState,
    email: &str,
    known: Option<String>,
) -> anyhow::Result<Option<String>> {
    let lookup = email.to_string();
    let Some(user) = state
        .db
        .run(move |conn| Ok(users::find_by_email(conn, &lookup)?))
        .await?
    else {
        return Ok(None);
    };
    if let (Some(known), Some(hash)) = (known, user.password_hash.clone()) {
        let verified = state
            .passwords
            .verify(SecretString::from(known.clone()), Some(hash))
            .await?;
        if verified.ok {
            return Ok(Some(known));
        }
    }
    let password = random_password();
    let hash = state
        .passwords
        .hash(SecretString::from(password.clone()))
        .await?;
    let id = user.id;
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let t = now();
                users::set_password_hash(conn, id, &hash, t)?;
                users::bump_token_version(conn, id)?;
                users::reset_failed_logins(conn, id)?;
                Ok(())
            })
        })
        .await?;
    tracing::info!(email, "set a new password for a demo account");
    Ok(Some(password))
}

/// The uid of the account's first active card.
fn card_of(conn: &mut DbConn, email: &str) -> QueryResult<Option<String>> {
    let Some(user) = users::find_by_email(conn, email)? else {
        return Ok(None);
    };
    rfid_cards::table
        .filter(rfid_cards::user_id.eq(user.id))
        .filter(rfid_cards::status.eq(crate::charging::rfid::CardStatus::Active.as_str()))
        .order(rfid_cards::id)
        .select(rfid_cards::uid)
        .first(conn)
        .optional()
}

/// Every demo charger with a working key: the known one if it matches, else a new key (the
/// same rotation as `POST /admin/charge-points/{id}/rotate-key`).
fn charger_keys(
    conn: &mut DbConn,
    known: &HashMap<String, String>,
) -> QueryResult<Vec<FleetCharger>> {
    let rows: Vec<(String, i64, String)> = charge_points::table
        .filter(charge_points::id.like(format!("{CHARGE_POINT_PREFIX}%")))
        .order(charge_points::id)
        .select((
            charge_points::id,
            charge_points::location_id,
            charge_points::key_hash,
        ))
        .load(conn)?;
    let mut out = Vec::new();
    for (id, location_id, hash) in rows {
        let key = match known.get(&id) {
            Some(k) if token_hash(k) == hash => k.clone(),
            _ => {
                let key = random_token();
                crate::locations::queries::set_key_hash(conn, &id, &token_hash(&key), now())?;
                key
            }
        };
        let count: i64 = connectors::table
            .filter(connectors::charge_point_id.eq(&id))
            .count()
            .get_result(conn)?;
        out.push(FleetCharger {
            connectors: u32::try_from(count).unwrap_or(0),
            id,
            key,
            location_id,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Vec<Point> {
        SITES
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                s.chargers.iter().enumerate().map(move |(n, k)| Point {
                    id: charge_point_id(s, n),
                    site: si,
                    kind: *k,
                })
            })
            .collect()
    }

    #[test]
    fn the_schedule_never_puts_two_cars_on_one_connector_or_one_driver_in_two_places() {
        let now = NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(1, 0, 0)
            .unwrap();
        let plan = schedule(plan_sessions(now, &mut StdRng::seed_from_u64(1)), &points());
        assert!(plan.len() > 300, "{} sessions", plan.len());
        for (i, a) in plan.iter().enumerate() {
            assert!(a.plan.plug_out < now);
            for b in &plan[i + 1..] {
                let overlap = a.plan.start < b.plan.plug_out && b.plan.start < a.plan.plug_out;
                assert!(!(overlap && a.point == b.point && a.connector == b.connector));
                assert!(!(overlap && a.plan.driver == b.plan.driver));
            }
        }
        // The commuters fill Kista Science Tower's two connectors: some are turned away.
        let kista = plan
            .iter()
            .filter(|s| points()[s.point].site == site("KST"))
            .count();
        assert!(kista < 16 * 5 * 2 + 1, "{kista}");
    }

    #[test]
    fn passwords_are_random_and_pass_the_policy() {
        let (a, b) = (random_password(), random_password());
        assert_ne!(a, b);
        crate::auth::password::check_policy(&a, Some(OPERATOR_EMAIL)).unwrap();
        assert_eq!(
            crate::charging::normalize_uid(&random_uid()).unwrap().len(),
            14
        );
    }

    #[test]
    fn files_sit_next_to_the_sqlite_file_or_under_data() {
        let f = DemoFiles::for_database("sqlite://some/dir/x.db");
        assert_eq!(f.fleet, Path::new("some/dir/demo-fleet.json"));
        let f = DemoFiles::for_database("postgres://u@h/db");
        assert_eq!(f.credentials, Path::new("data/demo-credentials.json"));
    }
}
