//! The command-line side: `laddkoll import-sessions`, `laddkoll evaluate` and
//! `laddkoll recommend` (the nightly job).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{import, job};
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

/// Arguments of `laddkoll evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The CSV, in the format of `import-sessions`.
    pub file: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// IANA time zone for naive local times in rows without a `timezone`.
    #[arg(
        long,
        env = "LADDKOLL_IMPORT_TIMEZONE",
        default_value = "Europe/Stockholm"
    )]
    pub timezone: String,
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

/// `laddkoll evaluate FILE [--json] [--timezone TZ]`.
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
    let report = laddkoll_ml::evaluate(&parsed.rows, &laddkoll_ml::EvalConfig::default());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
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

fn run_batch(
    conn: &mut crate::db::DbConn,
    cfg: &job::JobConfig,
    batch: Option<i64>,
    started: Instant,
) -> anyhow::Result<()> {
    let loaded = job::load_input(conn, cfg, now()).context("reading histories")?;
    let read = started.elapsed();
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
