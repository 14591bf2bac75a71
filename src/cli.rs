//! The command line: `serve [--demo]` (default), `migrate`, `openapi`, `create-operator`, …

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use secrecy::SecretString;

use crate::config::Config;
use crate::db::Db;
use crate::state::AppState;

/// laddkoll: backend for EV-charging networks (OCPP 1.6J chargers, REST API for drivers and operators).
///
/// Settings come from environment variables and `.env`; see `.env.example`.
#[derive(Debug, Parser)]
#[command(name = "laddkoll", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default): applies migrations, then listens on LADDKOLL_BIND.
    Serve {
        /// Start with a populated demo network (seeded once into an empty database): locations
        /// around Stockholm, tariffs, an operator and drivers with months of priced history,
        /// invoices and recommendations. Prints the logins and writes a simulator fleet file.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// Revert every migration instead (empties the database).
        #[arg(long)]
        revert_all: bool,
    },
    /// Write the OpenAPI document generated from the code.
    Openapi {
        /// Where to write it.
        #[arg(long, default_value = "openapi/openapi.json")]
        out: PathBuf,
        /// Do not write; fail if the file differs from what the code generates.
        #[arg(long)]
        check: bool,
    },
    /// Create an operator account. The password is read from LADDKOLL_OPERATOR_PASSWORD or stdin.
    CreateOperator {
        /// The operator's email address.
        #[arg(long)]
        email: String,
        /// The operator's display name.
        #[arg(long, default_value = "Operator")]
        name: String,
    },
    /// Issue invoices for a month: each driver's priced, unbilled sessions become one invoice.
    /// Idempotent: running it again bills nothing twice.
    Invoice {
        /// The month, YYYY-MM (in LADDKOLL_BILLING_TIMEZONE).
        #[arg(long)]
        period: String,
    },
    /// Import charging history from a CSV of a previous system (idempotent); a file with
    /// invalid rows is refused whole unless --skip-invalid.
    ImportSessions(crate::recommend::commands::ImportArgs),
    /// Measure the recommender on a session CSV: temporal hold-out against baselines.
    Evaluate(crate::recommend::commands::EvaluateArgs),
    /// The nightly job: learn habits from history and write a new batch of recommendations.
    Recommend(crate::recommend::commands::RecommendArgs),
    /// Drive a server with a fleet of simulated OCPP 1.6J chargers and report answer latency.
    Simulate(Box<crate::simulate::SimulateArgs>),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_tracing();
    let result = match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => serve(demo),
        Command::Migrate { revert_all } => migrate(revert_all),
        Command::Openapi { out, check } => write_openapi(&out, check),
        Command::CreateOperator { email, name } => create_operator(&email, &name),
        Command::Invoice { period } => invoice(&period),
        Command::ImportSessions(args) => crate::recommend::commands::import_sessions(&args),
        Command::Evaluate(args) => crate::recommend::commands::evaluate(&args),
        Command::Recommend(args) => crate::recommend::commands::recommend(&args),
        Command::Simulate(args) => crate::simulate::command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LADDKOLL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    use tracing_subscriber::util::SubscriberInitExt;
    let ansi = std::io::stderr().is_terminal();
    let _ = crate::logging::subscriber(filter, std::io::stderr, ansi).try_init();
}

fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url, config.db_pool_size)
        .context("opening the database (DATABASE_URL)")?;
    let applied = db.migrate().context("applying migrations")?;
    if applied > 0 {
        tracing::info!(applied, "applied database migrations");
    }
    Ok(db)
}

fn serve(demo: bool) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    // SQLite is one instance only: a second `serve` on the same file stops here.
    let _instance_lock = match crate::db::Backend::from_url(&config.database_url)? {
        (crate::db::Backend::Sqlite, path) => Some(crate::cluster::lock_sqlite(&path)?),
        _ => None,
    };
    let db = open_database(&config)?;
    // Sessions whose stop was stored but whose pricing a crash cut short are priced now.
    let repriced = {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::billing::records::price_unpriced(&mut conn, None, crate::http::time::now())
            .map_err(|e| anyhow::anyhow!("pricing sessions left open by a restart: {e}"))?
    };
    if repriced > 0 {
        tracing::info!(
            sessions = repriced,
            "priced finished sessions left open by a restart"
        );
    }
    let bind = config.bind;
    let backend = db.backend();
    let demo_files = demo.then(|| crate::demo::DemoFiles::for_database(&config.database_url));
    let state = AppState::new(config, db);
    actix_web::rt::System::new().block_on(async move {
        // Seed (or find) the demo before the server takes requests.
        let demo = match demo_files {
            Some(files) => Some(
                crate::demo::ensure(state.clone(), &files)
                    .await
                    .context("preparing the demo")?,
            ),
            None => None,
        };
        crate::cluster::spawn(state.clone());
        let instance = state.config.instance_id.clone();
        let metrics_bind = state.config.metrics_bind;
        let metrics_state = state.clone();
        let server = actix_web::HttpServer::new(move || crate::build_app(state.clone()))
            .bind(bind)
            .with_context(|| format!("binding {bind} (LADDKOLL_BIND)"))?;
        let metrics_server = match metrics_bind {
            Some(addr) => Some(
                actix_web::HttpServer::new(move || crate::app::metrics_app(metrics_state.clone()))
                    .workers(1)
                    .bind(addr)
                    .with_context(|| format!("binding {addr} (LADDKOLL_METRICS_BIND)"))?
                    .run(),
            ),
            None => None,
        };
        if let Some(metrics) = metrics_server {
            tracing::info!(metrics_bind = ?metrics_bind, "/metrics served on its own address");
            actix_web::rt::spawn(metrics);
        }
        if let Some(demo) = demo {
            println!("{}", demo.banner(bind));
        }
        tracing::info!(%bind, ?backend, %instance, "laddkoll listening; API docs at http://{bind}/docs/");
        server.run().await.context("serving")
    })
}

fn migrate(revert_all: bool) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let db = Db::connect(&config.database_url, 1)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    if revert_all {
        let n = crate::db::revert_all_migrations(&mut conn)?;
        println!("reverted {n} migrations");
    } else {
        let n = crate::db::run_migrations(&mut conn)?;
        println!("applied {n} migrations");
    }
    Ok(())
}

/// The OpenAPI document as committed: pretty JSON with a trailing newline.
pub fn openapi_json() -> String {
    let mut json = crate::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

fn write_openapi(out: &PathBuf, check: bool) -> anyhow::Result<()> {
    let json = openapi_json();
    if check {
        let existing =
            std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
        if existing != json {
            bail!("{} is out of date; run `laddkoll openapi`", out.display());
        }
        println!("{} is up to date", out.display());
        return Ok(());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

fn invoice(period: &str) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let db = open_database(&config)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = crate::billing::invoicing::run(
        &mut conn,
        period,
        config.billing_timezone,
        &config.invoice_series,
        &config.seller(),
        crate::http::time::now(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "period {}: {} invoices issued for {} sessions; {} sessions held for review",
        report.period, report.invoices_issued, report.sessions_billed, report.sessions_held
    );
    for number in &report.numbers {
        println!("  {number}");
    }
    Ok(())
}

fn read_operator_password() -> anyhow::Result<SecretString> {
    if let Ok(p) = std::env::var("LADDKOLL_OPERATOR_PASSWORD") {
        return Ok(SecretString::from(p));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for the new operator: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password given: set LADDKOLL_OPERATOR_PASSWORD or pipe it on stdin");
    }
    Ok(SecretString::from(password))
}

fn create_operator(email: &str, name: &str) -> anyhow::Result<()> {
    let password = read_operator_password()?;
    let config = Config::from_env()?;
    let db = open_database(&config)?;
    let state = actix_web::web::Data::from(AppState::new(config, db));
    let user = actix_web::rt::System::new().block_on(async {
        crate::auth::register(
            &state,
            email,
            password,
            name,
            crate::http::auth::OPERATOR,
            None,
        )
        .await
    });
    let user = user.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "created operator {} (id {})",
        user.email.unwrap_or_default(),
        user.id
    );
    Ok(())
}
