//! `laddkoll simulate`: a fleet of simulated chargers over real WebSockets speaking OCPP 1.6J
//! as real chargers do (boot, heartbeats, status, RFID and app-started transactions, meter
//! values at an interval, stop), driven by drivers whose habits vary by time and place, with
//! offline periods (transaction messages queued, then replayed in order) and reconnects with
//! back-off. It measures what the central system answers and how fast.
//!
//! The library side ([`Simulation`]) is also what the crash-safety test drives.

mod charger;
pub mod drivers;
pub mod fleet;
pub mod provision;
pub mod stats;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use drivers::Drivers;
use fleet::Fleet;
use stats::{Phase, Report, Stats, StormReport};

/// Options of `laddkoll simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// The laddkoll server to drive.
    #[arg(
        long,
        env = "LADDKOLL_SIM_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Use the chargers and drivers of this fleet file (as written by --save-fleet or `serve --demo`).
    #[arg(long, conflicts_with = "operator_email")]
    pub fleet: Option<PathBuf>,
    /// Provision a new fleet through the operator API, logging in as this operator
    /// (password from LADDKOLL_SIM_OPERATOR_PASSWORD).
    #[arg(long, requires = "operator_password")]
    pub operator_email: Option<String>,
    #[arg(
        long,
        env = "LADDKOLL_SIM_OPERATOR_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub operator_password: Option<String>,
    /// Provisioning: how many chargers.
    #[arg(long, default_value_t = 10)]
    pub chargers: usize,
    /// Provisioning: connectors per charger (odd ones AC 22 kW, even ones DC 50 kW).
    #[arg(long, default_value_t = 2)]
    pub connectors: u32,
    /// Provisioning: how many locations the chargers are spread over.
    #[arg(long, default_value_t = 5)]
    pub locations: usize,
    /// Provisioning: how many drivers (each with an account and an RFID card). A driver charges
    /// at one place at a time, so this bounds the concurrent sessions.
    #[arg(long, default_value_t = 20)]
    pub drivers: usize,
    /// Provisioning: charge point id prefix.
    #[arg(long, default_value = "SIM")]
    pub prefix: String,
    /// Provisioning: write the new fleet (with keys and passwords) here for later runs.
    #[arg(long, default_value = "data/sim-fleet.json")]
    pub save_fleet: PathBuf,
    /// Provision only, do not run.
    #[arg(long)]
    pub provision_only: bool,
    /// How long to run, in seconds, before stopping every session and reporting (0: until Ctrl-C).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seconds after the start (and at least until every charger is connected) that count as
    /// ramp-up rather than steady state in the report.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Chargers connecting per second at the start.
    #[arg(long, default_value_t = 200.0)]
    pub connect_rate: f64,
    /// Seconds between meter values during a session.
    #[arg(long, default_value_t = 10.0)]
    pub meter_interval: f64,
    /// Mean session length in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub session_secs: f64,
    /// Mean idle time of a connector between sessions, in seconds, at average demand.
    #[arg(long, default_value_t = 30.0)]
    pub idle_secs: f64,
    /// Share of drivers who start from the app (POST /sessions) rather than with their card.
    #[arg(long, default_value_t = 0.2)]
    pub app_share: f64,
    /// How often a charger drops offline on its own, per hour.
    #[arg(long, default_value_t = 0.0)]
    pub offline_per_hour: f64,
    /// Mean length of such an offline period, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub offline_secs: f64,
    /// Reconnect storm: at this second every charger loses its connection …
    #[arg(long)]
    pub storm_at: Option<f64>,
    /// … stays offline this many seconds (queueing transaction messages) …
    #[arg(long, default_value_t = 5.0)]
    pub storm_offline: f64,
    /// … and reconnects at a random moment within this many seconds, replaying its queue.
    #[arg(long, default_value_t = 10.0)]
    pub storm_window: f64,
    /// Seconds to wait for an answer before resending on a new connection.
    #[arg(long, default_value_t = 30.0)]
    pub call_timeout: f64,
    /// Write the JSON report here ("-" for stdout; stdout by default).
    #[arg(long, default_value = "-")]
    pub report: PathBuf,
    /// Random seed (habits, timings, meter readings).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No live status lines.
    #[arg(long)]
    pub quiet: bool,
}

/// Settings every charger reads.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `ws://host:port`
    pub ws_base: String,
    /// `http://host:port/api/v1`
    pub api: String,
    pub meter_interval: Duration,
    pub session_secs: f64,
    pub idle_secs: f64,
    pub offline_per_hour: f64,
    pub offline_secs: f64,
    pub call_timeout: Duration,
    pub app_share: f64,
    pub seed: u64,
}

impl SimConfig {
    /// Settings from the command line, for the server at `url`.
    pub fn new(url: &str, args: &SimulateArgs) -> SimConfig {
        let url = url.trim_end_matches('/');
        SimConfig {
            ws_base: url
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1),
            api: format!("{url}/api/v1"),
            meter_interval: Duration::from_secs_f64(args.meter_interval.max(0.05)),
            session_secs: args.session_secs.max(0.0),
            idle_secs: args.idle_secs.max(0.0),
            offline_per_hour: args.offline_per_hour.max(0.0),
            offline_secs: args.offline_secs.max(0.0),
            call_timeout: Duration::from_secs_f64(args.call_timeout.max(0.1)),
            app_share: args.app_share.clamp(0.0, 1.0),
            seed: args.seed,
        }
    }
}

/// An outage every charger goes through (the reconnect storm).
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub id: u32,
    /// When reconnecting may begin.
    pub ends: Instant,
    /// Each charger reconnects at a random moment within this window after `ends`.
    pub window: Duration,
}

/// What the simulation tells every charger.
#[derive(Debug, Clone, Copy, Default)]
pub struct Control {
    /// Stop every session, start no new one, drain the queues, disconnect.
    pub finishing: bool,
    pub outage: Option<Outage>,
}

/// A transaction message the central system acknowledged.
#[derive(Debug, Clone)]
pub struct Ack {
    pub charge_point: String,
    pub action: &'static str,
    pub payload: Value,
    pub answer: Value,
}

/// What every charger shares.
pub struct Ctx {
    pub cfg: SimConfig,
    pub stats: Arc<Stats>,
    pub drivers: Arc<Drivers>,
    pub http: reqwest::Client,
    pub control: watch::Receiver<Control>,
    pub journal: Option<Mutex<Vec<Ack>>>,
}

/// A running simulation.
pub struct Simulation {
    ctx: Arc<Ctx>,
    control: watch::Sender<Control>,
    tasks: JoinSet<()>,
    chargers: usize,
    storm: Option<(Instant, u64)>,
}

/// An HTTP client for the API.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("an HTTP client with rustls")
}

impl Simulation {
    /// Starts every charger of `fleet`, `connect_rate` per second.
    pub fn start(cfg: SimConfig, fleet: &Fleet, connect_rate: f64, journal: bool) -> Simulation {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut places: Vec<i64> = fleet.chargers.iter().map(|c| c.location_id).collect();
        places.sort_unstable();
        places.dedup();
        let drivers = Drivers::new(&fleet.drivers, &places, cfg.app_share, &mut rng);
        let (control, control_rx) = watch::channel(Control::default());
        let ctx = Arc::new(Ctx {
            cfg,
            stats: Arc::new(Stats::new()),
            drivers: Arc::new(drivers),
            http: http_client(),
            control: control_rx,
            journal: journal.then(|| Mutex::new(Vec::new())),
        });
        let mut tasks = JoinSet::new();
        let rate = connect_rate.max(0.001);
        for (i, spec) in fleet.chargers.iter().enumerate() {
            let delay = Duration::from_secs_f64(i as f64 / rate);
            tasks.spawn(charger::run(ctx.clone(), spec.clone(), i, delay));
        }
        Simulation {
            ctx,
            control,
            tasks,
            chargers: fleet.chargers.len(),
            storm: None,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// The acknowledged transaction messages so far (when started with a journal).
    pub fn journal(&self) -> Vec<Ack> {
        self.ctx.journal.as_ref().map_or_else(Vec::new, |j| {
            j.lock().unwrap_or_else(|p| p.into_inner()).clone()
        })
    }

    /// Every charger connected right now.
    pub fn all_connected(&self) -> bool {
        self.ctx.stats.connected.load(Relaxed) >= self.chargers as i64
    }

    /// Waits until every charger is connected, up to `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.all_connected() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.all_connected()
    }

    /// Cuts every charger off for `offline`; they reconnect within `window` after that.
    pub fn outage(&mut self, offline: Duration, window: Duration) {
        let ends = Instant::now() + offline;
        let id = self.control.borrow().outage.map_or(1, |o| o.id + 1);
        self.ctx.stats.set_phase(Phase::Storm);
        let replayed_before = self.ctx.stats.replayed.load(Relaxed);
        self.storm = Some((ends, replayed_before));
        self.control.send_modify(|c| {
            c.outage = Some(Outage { id, ends, window });
        });
    }

    /// Stops every session, waits (up to `limit`) until the chargers have delivered everything
    /// and disconnected, and reports.
    pub async fn finish(&mut self, limit: Duration) -> Report {
        self.ctx.stats.set_phase(Phase::Finish);
        self.control.send_modify(|c| c.finishing = true);
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!("chargers still busy at the end; aborting them");
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        self.ctx.stats.report(self.chargers)
    }
}

fn read_fleet(args: &SimulateArgs) -> anyhow::Result<Option<Fleet>> {
    args.fleet.as_deref().map(Fleet::load).transpose()
}

/// `laddkoll simulate`.
pub fn command(args: &SimulateArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(simulate(args))
}

async fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let cfg = SimConfig::new(&args.url, args);
    let fleet = match read_fleet(args)? {
        Some(f) => f,
        None => {
            let (Some(email), Some(password)) = (&args.operator_email, &args.operator_password)
            else {
                bail!("give a fleet file (--fleet FILE) or an operator to provision one (--operator-email, LADDKOLL_SIM_OPERATOR_PASSWORD)");
            };
            let http = http_client();
            let token = provision::login(&http, &cfg.api, email, password)
                .await
                .context("logging in as the operator")?;
            let plan = provision::Plan {
                prefix: args.prefix.clone(),
                chargers: args.chargers,
                connectors: args.connectors,
                locations: args.locations,
                drivers: args.drivers,
                seed: args.seed,
            };
            eprintln!(
                "provisioning {} chargers at {} locations and {} drivers …",
                plan.chargers, plan.locations, plan.drivers
            );
            let started = std::time::Instant::now();
            let fleet = provision::provision(&http, &cfg.api, &token, &plan).await?;
            fleet.save(&args.save_fleet)?;
            eprintln!(
                "provisioned in {:.1} s; fleet written to {} (it holds keys: keep it private)",
                started.elapsed().as_secs_f64(),
                args.save_fleet.display()
            );
            fleet
        }
    };
    if args.provision_only {
        return Ok(());
    }
    let mut sim = Simulation::start(cfg, &fleet, args.connect_rate, false);
    let started = Instant::now();
    let live = !args.quiet;
    let tty = std::io::stderr().is_terminal();
    let print_every = if tty { 4 } else { 20 };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u64;
    let run_for = (args.duration > 0).then(|| Duration::from_secs(args.duration));
    let ramp_limit =
        Duration::from_secs_f64(fleet.chargers.len() as f64 / args.connect_rate.max(0.001))
            + Duration::from_secs(30);
    let mut storm_pending = args.storm_at.map(Duration::from_secs_f64);
    let mut storm_marks: Option<(Option<f64>, Option<f64>)> = None;
    let mut last_answered = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => { eprintln!("interrupted: stopping sessions"); break; }
        }
        let elapsed = started.elapsed();
        let warm = elapsed.as_secs_f64() >= args.warmup;
        if sim.stats().phase() == Phase::Ramp
            && warm
            && (sim.all_connected() || elapsed > ramp_limit)
        {
            sim.stats().set_phase(Phase::Steady);
        }
        if storm_pending.is_some_and(|at| elapsed >= at) {
            storm_pending = None;
            eprintln!(
                "storm: cutting every charger off for {} s",
                args.storm_offline
            );
            sim.outage(
                Duration::from_secs_f64(args.storm_offline),
                Duration::from_secs_f64(args.storm_window),
            );
            storm_marks = Some((None, None));
        }
        let stats = sim.stats();
        if let (Some((ends, _)), Some(marks)) = (sim.storm, storm_marks.as_mut()) {
            let now = Instant::now();
            if now > ends {
                let since = (now - ends).as_secs_f64();
                if marks.0.is_none() && sim.all_connected() {
                    marks.0 = Some(since);
                }
                if marks.0.is_some() && marks.1.is_none() && stats.queued.load(Relaxed) == 0 {
                    marks.1 = Some(since);
                    stats.set_phase(Phase::Steady);
                }
            }
        }
        ticks += 1;
        if live && ticks.is_multiple_of(print_every) {
            let answered = stats.answered.load(Relaxed);
            let rate = (answered - last_answered) as f64
                / (tick.period() * print_every as u32).as_secs_f64();
            last_answered = answered;
            let l = stats.latency(stats.phase());
            let line = format!(
                "{:>5.0}s {:?} connected {}/{} sent {} answered {} ({rate:.0}/s) errors {} timeouts {} queued {} sessions {} p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
                elapsed.as_secs_f64(),
                stats.phase(),
                stats.connected.load(Relaxed),
                fleet.chargers.len(),
                stats.sent.load(Relaxed),
                answered,
                stats.call_errors.load(Relaxed),
                stats.timeouts.load(Relaxed),
                stats.queued.load(Relaxed),
                stats.sessions_started.load(Relaxed),
                l.p50,
                l.p99,
                l.max
            );
            if tty {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        }
        if run_for.is_some_and(|d| elapsed >= d) {
            break;
        }
    }
    if live && tty {
        eprintln!();
    }
    let storm = sim
        .storm
        .map(|(_, replayed_before)| (replayed_before, storm_marks));
    let stats_replayed = sim.stats().replayed.load(Relaxed);
    eprintln!("stopping every session and draining queues …");
    let mut report = sim.finish(Duration::from_secs(120)).await;
    if let Some((before, marks)) = storm {
        let (reconnected, drained) = marks.unwrap_or((None, None));
        report.storm = Some(StormReport {
            all_reconnected_secs: reconnected.map(|s| (s * 10.0).round() / 10.0),
            drained_secs: drained.map(|s| (s * 10.0).round() / 10.0),
            replayed: stats_replayed - before,
        });
    }
    let json = serde_json::to_string_pretty(&report)?;
    if args.report.as_os_str() == "-" {
        println!("{json}");
    } else {
        std::fs::write(&args.report, json + "\n")
            .with_context(|| format!("writing {}", args.report.display()))?;
        eprintln!("report written to {}", args.report.display());
    }
    Ok(())
}
