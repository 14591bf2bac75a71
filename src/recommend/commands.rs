//! The command-line side: `laddkoll import-sessions`, `laddkoll evaluate` and
//! `laddkoll recommend` (the nightly job).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{import, job, queries};
use crate::config::Config;
use crate::db::Db;
use crate::http::time::now;

/// Arguments of `laddkoll import-sessions`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The CSV: driver_ref, location_ref, started_at, ended_at, energy_kwh, optional
    /// charge_point_ref and timezone (see docs/recommendations.md).
    pub file: PathBuf,
    /// IANA time zone for naive local times in rows without a `timezone`.
    #[arg(
        long,
        env = "LADDKOLL_IMPORT_TIMEZONE",
        default_value = "Europe/Stockholm"
    )]
    pub timezone: String,
    /// Import the valid rows and report the invalid ones, instead of refusing the file.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// How much evidence a piece of advice needs (shared by `recommend` and `evaluate --advice`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct EvidenceArgs {
    /// Fewest sessions behind a habit for it to get advice.
    #[arg(long, env = "LADDKOLL_RECOMMEND_MIN_HABIT_SESSIONS",
          default_value_t = job::Evidence::default().min_habit_sessions as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub min_habit_sessions: u32,
    /// Fewest weeks of history behind an occupancy figure for advice to rest on it.
    #[arg(long, env = "LADDKOLL_RECOMMEND_MIN_OCCUPANCY_WEEKS",
          default_value_t = job::Evidence::default().min_occupancy_weeks,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub min_occupancy_weeks: u32,
}

impl EvidenceArgs {
    fn evidence(&self) -> job::Evidence {
        job::Evidence {
            min_habit_sessions: self.min_habit_sessions as usize,
            min_occupancy_weeks: self.min_occupancy_weeks,
        }
    }
}

/// Arguments of `laddkoll evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The CSV, in the format of `import-sessions`.
    pub file: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also replay the held-out period with 0, 25, 50 and 100 % of the advised drivers following
    /// the advice issued at the split: arrivals finding every connector taken, each place's peak,
    /// sessions moved.
    #[arg(long)]
    pub advice: bool,
    /// Seed of the model, as `laddkoll recommend --seed`.
    #[arg(long, env = "LADDKOLL_RECOMMEND_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Days of history before the split the replayed advice is learned from, as `laddkoll
    /// recommend --window-days`.
    #[arg(long, env = "LADDKOLL_RECOMMEND_WINDOW_DAYS", default_value_t = 182,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub window_days: u32,
    /// IANA time zone for naive local times in rows without a `timezone`.
    #[arg(
        long,
        env = "LADDKOLL_IMPORT_TIMEZONE",
        default_value = "Europe/Stockholm"
    )]
    pub timezone: String,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

/// Arguments of `laddkoll recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// Print what would be written (one line per recommendation) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Days of history to learn from.
    #[arg(long, env = "LADDKOLL_RECOMMEND_WINDOW_DAYS", default_value_t = 182,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub window_days: u32,
    /// Seed of the recommender: the same history and seed give the same batch.
    #[arg(long, env = "LADDKOLL_RECOMMEND_SEED", default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

fn parse_timezone(tz: &str) -> anyhow::Result<chrono_tz::Tz> {
    tz.parse()
        .map_err(|_| anyhow::anyhow!("--timezone {tz:?} is not an IANA time zone"))
}

fn read_csv(file: &Path, tz: chrono_tz::Tz) -> anyhow::Result<laddkoll_ml::ParseOutcome> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    Ok(laddkoll_ml::parse_sessions_csv(
        std::io::BufReader::new(f),
        tz,
    ))
}

fn open_db() -> anyhow::Result<Db> {
    let config = Config::from_env()?;
    let db = Db::connect(&config.database_url, 2).context("opening the database (DATABASE_URL)")?;
    db.migrate().context("applying migrations")?;
    Ok(db)
}

/// Most invalid rows listed one by one; the rest are counted.
const LISTED_ERRORS: usize = 100;

fn list_errors(errors: &[laddkoll_ml::RowError]) -> String {
    let mut out: Vec<String> = errors
        .iter()
        .take(LISTED_ERRORS)
        .map(|e| format!("  {e}"))
        .collect();
    if errors.len() > LISTED_ERRORS {
        out.push(format!("  … and {} more", errors.len() - LISTED_ERRORS));
    }
    out.join("\n")
}

/// `laddkoll import-sessions FILE [--timezone TZ] [--skip-invalid]`.
pub fn import_sessions(args: &ImportArgs) -> anyhow::Result<()> {
    let tz = parse_timezone(&args.timezone)?;
    let parsed = read_csv(&args.file, tz)?;
    if !parsed.errors.is_empty() && !args.skip_invalid {
        bail!(
            "{} has {} invalid row(s); nothing was imported (fix them, or pass --skip-invalid):\n{}",
            args.file.display(),
            parsed.errors.len(),
            list_errors(&parsed.errors)
        );
    }
    let db = open_db()?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let counts = import::import_rows(&mut conn, &parsed.rows, now()).context("importing")?;
    println!(
        "imported {} of {} valid row(s) from {}: {} new session(s), {} already present; \
         created {} driver(s) and {} location(s)",
        counts.inserted,
        counts.rows,
        args.file.display(),
        counts.inserted,
        counts.already_present,
        counts.new_drivers,
        counts.new_locations
    );
    if !parsed.errors.is_empty() {
        println!(
            "skipped {} invalid row(s):\n{}",
            parsed.errors.len(),
            list_errors(&parsed.errors)
        );
    }
    Ok(())
}

/// `laddkoll evaluate FILE [--json] [--advice] [--timezone TZ] [--seed S] [--window-days N]`: the temporal
/// hold-out of the model `recommend` advises from (same code, same settings: [`job::model_config`])
/// against the baselines, and with `--advice` the replay of the held-out period.
pub fn evaluate(args: &EvaluateArgs) -> anyhow::Result<()> {
    let tz = parse_timezone(&args.timezone)?;
    let parsed = read_csv(&args.file, tz)?;
    if !parsed.errors.is_empty() {
        eprintln!(
            "warning: {} invalid row(s) left out:\n{}",
            parsed.errors.len(),
            list_errors(&parsed.errors)
        );
    }
    let (habits, rank) = job::model_config(args.evidence.evidence());
    let cfg = laddkoll_ml::EvalConfig {
        habits,
        seed: args.seed,
        ..laddkoll_ml::EvalConfig::default()
    };
    let mut report = laddkoll_ml::evaluate(&parsed.rows, &cfg);
    report.skipped.add_invalid_rows(&parsed.errors);
    let replay = args.advice.then(|| {
        laddkoll_ml::replay(
            &parsed.rows,
            &laddkoll_ml::ReplayConfig {
                seed: args.seed,
                window_days: args.window_days,
                habits,
                rank,
                ..laddkoll_ml::ReplayConfig::default()
            },
        )
    });
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(r) = &replay {
            value["advice_replay"] = serde_json::to_value(r)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.to_text());
        if let Some(r) = &replay {
            println!();
            print!("{}", r.to_text());
        }
    }
    Ok(())
}

/// Shows progress while `work` runs: a bar on a terminal, a log line every few seconds
/// otherwise.
fn with_progress<T: Send>(total: usize, work: impl FnOnce(&AtomicUsize) -> T + Send) -> T {
    let done = AtomicUsize::new(0);
    let terminal = std::io::stderr().is_terminal();
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| work(&done));
        let bar = if terminal {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} drivers {pos}/{len} [{bar:40}] {percent}% eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut last_log = Instant::now();
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            let n = done.load(Ordering::Relaxed);
            bar.set_position(n as u64);
            if !terminal && last_log.elapsed() >= Duration::from_secs(5) {
                tracing::info!(done = n, total, "recommending");
                last_log = Instant::now();
            }
        }
        bar.finish_and_clear();
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `laddkoll recommend [--dry-run] [--window-days N] [--seed S]`: the nightly job.
pub fn recommend(args: &RecommendArgs) -> anyhow::Result<()> {
    let cfg = job::JobConfig {
        window_days: args.window_days,
        seed: args.seed,
        evidence: args.evidence.evidence(),
    };
    let db = open_db()?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let batch = if args.dry_run {
        None
    } else {
        Some(job::start(&mut conn, &cfg, now()).context("recording the run")?)
    };
    let result = run_batch(&mut conn, &cfg, batch, started);
    if let (Err(e), Some(id)) = (&result, batch) {
        let _ = job::fail(&mut conn, id, Default::default(), &format!("{e:#}"), now());
    }
    result
}

/// What to tell an operator whose window holds no session: how old the newest session is and
/// which window would include it.
fn empty_window_warning(conn: &mut crate::db::DbConn, window_days: u32) -> anyhow::Result<String> {
    let newest = queries::newest_session_start(conn).context("finding the newest session")?;
    Ok(match newest {
        None => "warning: there is no charging history at all; nothing to learn from (import \
                 history with `laddkoll import-sessions`)"
            .to_string(),
        Some(t) => {
            let age = (now() - t).num_days();
            let needed = age + 1;
            let hint = if needed <= 3650 {
                format!("so pass --window-days {needed} to include it")
            } else {
                "which is older than the longest window (3650 days): import recent history, or \
                 move old history forward by whole weeks"
                    .to_string()
            };
            format!(
                "warning: no session started in the last {window_days} days, so there is nothing \
                 to learn from; the newest session started on {}, {age} days ago, {hint}",
                t.date()
            )
        }
    })
}

fn run_batch(
    conn: &mut crate::db::DbConn,
    cfg: &job::JobConfig,
    batch: Option<i64>,
    started: Instant,
) -> anyhow::Result<()> {
    let loaded = job::load_input(conn, cfg, now()).context("reading histories")?;
    let read = started.elapsed();
    println!(
        "window: the last {} days (since {}): {} driver(s), {} session(s)",
        cfg.window_days,
        loaded.since.date(),
        loaded.drivers,
        loaded.input.sessions.len()
    );
    if loaded.input.sessions.is_empty() {
        eprintln!("{}", empty_window_warning(conn, cfg.window_days)?);
    }
    tracing::info!(
        sessions = loaded.input.sessions.len(),
        drivers = loaded.drivers,
        locations = loaded.input.locations.len(),
        secs = read.as_secs_f64(),
        "read histories"
    );
    let output = with_progress(loaded.drivers, |done| {
        job::compute(&loaded.input, cfg, done)
    });
    let counts = job::counts_of(&output, loaded.input.sessions.len());
    let computed = started.elapsed();
    let Some(batch_id) = batch else {
        for r in output.drivers.iter().flat_map(|d| &d.recommendations) {
            println!(
                "user {}\t{}\tlocation {}\t{}",
                r.driver,
                r.kind.as_str(),
                r.location,
                r.sentence
            );
        }
        println!(
            "dry run: would write {} recommendation(s) for {} driver(s) from {} session(s) \
             ({} candidates); nothing written",
            counts.recommendations, counts.drivers, counts.sessions, output.candidates
        );
        return Ok(());
    };
    let rows = job::rows_of(&output, batch_id);
    drop(output);
    job::commit(conn, batch_id, &rows, counts, now()).context("writing the batch")?;
    println!(
        "batch {batch_id} complete: {} recommendation(s) for {} driver(s) from {} session(s); \
         read {:.1} s, computed {:.1} s, total {:.1} s",
        counts.recommendations,
        counts.drivers,
        counts.sessions,
        read.as_secs_f64(),
        (computed - read).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
