//! Crash safety: the real server process is killed with SIGKILL while sessions are active and
//! meter values are flowing, restarted on the same database, and the simulated chargers
//! reconnect and replay what they got no answer for. Afterwards every message the server
//! acknowledged is in the database exactly once, every session finished once, and each is
//! priced and invoiced exactly once.
//!
//! Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set (as `.ci/run` does).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use diesel::prelude::*;
use laddkoll::db::schema::{
    charging_sessions, invoice_lines, invoices, meter_values, session_billing,
};
use laddkoll::db::Db;
use laddkoll::simulate::fleet::Fleet;
use laddkoll::simulate::{provision, SimConfig, Simulation};
use serde_json::{json, Value};

const PASSWORD: &str = "crash-test-operator-7";

struct Server {
    child: Option<Child>,
    port: u16,
    db_url: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_laddkoll"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", &self.db_url)
            .env("LADDKOLL_BIND", format!("127.0.0.1:{}", self.port))
            .env("LADDKOLL_JWT_SECRET", "c".repeat(48))
            .env("LADDKOLL_AUTH_RATE_PER_MINUTE", "100000")
            .env("LADDKOLL_REGISTER_RATE_PER_HOUR", "100000")
            .env("LADDKOLL_LOG", "error");
        cmd
    }

    async fn start(&mut self) {
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start laddkoll serve");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        for _ in 0..300 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready");
    }

    /// SIGKILL: no shutdown, no flush, no goodbye to the chargers.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("a running server");
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the server");
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run laddkoll");
        assert!(
            out.status.success(),
            "laddkoll {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Operator, tariff on every charger, and the fleet.
async fn set_up(server: &Server) -> Fleet {
    let out = server
        .command(&["create-operator", "--email", "ops@crash.test"])
        .env("LADDKOLL_OPERATOR_PASSWORD", PASSWORD)
        .output()
        .expect("create-operator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = format!("http://127.0.0.1:{}/api/v1", server.port);
    let http = laddkoll::simulate::http_client();
    let token = provision::login(&http, &api, "ops@crash.test", PASSWORD)
        .await
        .unwrap();
    let plan = provision::Plan {
        prefix: "CRASH".into(),
        chargers: 6,
        connectors: 2,
        locations: 2,
        drivers: 12,
        seed: 42,
    };
    let fleet = provision::provision(&http, &api, &token, &plan)
        .await
        .unwrap();
    assert_eq!((fleet.chargers.len(), fleet.drivers.len()), (6, 12));
    let tariff = http
        .post(format!("{api}/admin/tariffs"))
        .bearer_auth(&token)
        .json(&json!({"name": "Standard", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": 2.00, "step_size": 1}, {"type": "FLAT", "price": 5.00, "step_size": 1}]}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(tariff.status(), 201);
    let tariff_id = tariff.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    for c in &fleet.chargers {
        let set = http
            .put(format!("{api}/admin/charge-points/{}/tariff", c.id))
            .bearer_auth(&token)
            .json(&json!({"tariff_id": tariff_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 204);
    }
    fleet
}

fn config(port: u16) -> SimConfig {
    SimConfig {
        ws_base: format!("ws://127.0.0.1:{port}"),
        api: format!("http://127.0.0.1:{port}/api/v1"),
        meter_interval: Duration::from_millis(250),
        session_secs: 2.5,
        idle_secs: 0.4,
        offline_per_hour: 0.0,
        offline_secs: 0.0,
        call_timeout: Duration::from_secs(5),
        app_share: 0.25,
        seed: 7,
    }
}

fn count(sim: &Simulation, action: &str) -> usize {
    sim.journal().iter().filter(|a| a.action == action).count()
}

/// Waits until the server has acknowledged `more` further messages of `action`.
async fn traffic(sim: &Simulation, action: &str, more: usize) {
    let want = count(sim, action) + more;
    for _ in 0..600 {
        if count(sim, action) >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {action} traffic: {} acknowledged", count(sim, action));
}

fn time(ts: &Value) -> NaiveDateTime {
    DateTime::parse_from_rfc3339(ts.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .naive_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_traffic_loses_no_acknowledged_message_and_bills_each_session_once() {
    let db = common::TestDb::new();
    let mut server = Server {
        child: None,
        port: free_port(),
        db_url: db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    server.start().await;
    let fleet = set_up(&server).await;
    let mut sim = Simulation::start(config(server.port), &fleet, 100.0, true);
    assert!(sim.wait_connected(Duration::from_secs(30)).await);

    for round in 0..2 {
        traffic(&sim, "MeterValues", 25).await;
        assert!(
            sim.stats()
                .sessions_started
                .load(std::sync::atomic::Ordering::Relaxed)
                > sim
                    .stats()
                    .sessions_stopped
                    .load(std::sync::atomic::Ordering::Relaxed),
            "sessions are active when the server dies"
        );
        server.kill();
        // Chargers notice, queue transaction messages and retry with back-off meanwhile.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!sim.all_connected(), "round {round}: the chargers noticed");
        server.start().await;
        assert!(
            sim.wait_connected(Duration::from_secs(60)).await,
            "round {round}: every charger reconnected"
        );
        traffic(&sim, "StopTransaction", 3).await;
    }
    let report_end = sim.finish(Duration::from_secs(60)).await;
    assert_eq!(
        report_end.messages.queued_at_end, 0,
        "every queued message was delivered"
    );
    assert!(
        report_end.messages.replayed > 0,
        "messages were queued while the server was down and replayed"
    );
    let journal = sim.journal();

    let pool = Db::connect(&db.url, 2).unwrap();
    let mut conn = pool.get().unwrap();

    // Every acknowledged StartTransaction is one session with the charger's data.
    let mut acked_tx = BTreeSet::new();
    for ack in journal.iter().filter(|a| a.action == "StartTransaction") {
        let tx = ack.answer["transactionId"].as_i64().unwrap();
        acked_tx.insert(tx);
        let (cp, start, started): (String, Option<i64>, Option<NaiveDateTime>) =
            charging_sessions::table
                .find(tx)
                .select((
                    charging_sessions::charge_point_id,
                    charging_sessions::meter_start_wh,
                    charging_sessions::started_at,
                ))
                .first(&mut conn)
                .unwrap_or_else(|e| panic!("acknowledged transaction {tx} is missing: {e}"));
        assert_eq!(cp, ack.charge_point);
        assert_eq!(start, ack.payload["meterStart"].as_i64());
        assert_eq!(started, Some(time(&ack.payload["timestamp"])));
    }
    // Every acknowledged meter value is stored, exactly once.
    let mut checked = 0;
    for ack in journal.iter().filter(|a| a.action == "MeterValues") {
        let tx = ack.payload["transactionId"].as_i64().unwrap();
        for mv in ack.payload["meterValue"].as_array().unwrap() {
            let at = time(&mv["timestamp"]);
            for sv in mv["sampledValue"].as_array().unwrap() {
                let measurand = sv["measurand"].as_str().unwrap();
                let stored: Vec<String> = meter_values::table
                    .filter(meter_values::session_id.eq(tx))
                    .filter(meter_values::sampled_at.eq(at))
                    .filter(meter_values::measurand.eq(measurand))
                    .select(meter_values::value)
                    .load(&mut conn)
                    .unwrap();
                assert_eq!(
                    stored,
                    vec![sv["value"].as_str().unwrap().to_string()],
                    "{} tx {tx} {measurand} at {at}",
                    ack.charge_point
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} samples checked");
    // Every acknowledged stop is recorded as sent.
    for ack in journal.iter().filter(|a| a.action == "StopTransaction") {
        let tx = ack.payload["transactionId"].as_i64().unwrap();
        let (status, stop, stopped): (String, Option<i64>, Option<NaiveDateTime>) =
            charging_sessions::table
                .find(tx)
                .select((
                    charging_sessions::status,
                    charging_sessions::meter_stop_wh,
                    charging_sessions::stopped_at,
                ))
                .first(&mut conn)
                .unwrap();
        assert_eq!(status, "finished");
        assert_eq!(stop, ack.payload["meterStop"].as_i64());
        assert_eq!(stopped, Some(time(&ack.payload["timestamp"])));
    }

    // Every session finished once: no duplicates from replays, none left open.
    let sessions: Vec<(i64, String, Option<NaiveDateTime>)> = charging_sessions::table
        .select((
            charging_sessions::id,
            charging_sessions::status,
            charging_sessions::stopped_at,
        ))
        .load(&mut conn)
        .unwrap();
    let started = report_end.sessions.started as usize;
    assert_eq!(
        sessions.len(),
        started,
        "one session per start the chargers made"
    );
    assert!(acked_tx
        .iter()
        .all(|tx| sessions.iter().any(|s| s.0 == *tx)));
    for (id, status, stopped) in &sessions {
        assert_eq!(status, "finished", "session {id}");
        assert!(stopped.is_some(), "session {id}");
    }

    // Each priced once …
    let billing: BTreeMap<i64, (String, Option<i64>, Option<String>)> = session_billing::table
        .select((
            session_billing::session_id,
            (
                session_billing::status,
                session_billing::total,
                session_billing::hold_reason,
            ),
        ))
        .load::<(i64, (String, Option<i64>, Option<String>))>(&mut conn)
        .unwrap()
        .into_iter()
        .collect();
    for (id, ..) in &sessions {
        let (status, total, hold) = &billing[id];
        assert_eq!(status, "priced", "session {id}: {hold:?}");
        assert!(
            total.is_some_and(|t| t >= 500),
            "session {id}: the start fee at least"
        );
    }
    drop(conn);

    // … and invoiced once, however often the run is repeated.
    let periods: BTreeSet<String> = sessions
        .iter()
        .filter_map(|s| s.2)
        .map(|t| {
            t.and_utc()
                .with_timezone(&chrono_tz::Europe::Stockholm)
                .format("%Y-%m")
                .to_string()
        })
        .collect();
    for period in &periods {
        server.run(&["invoice", "--period", period]);
    }
    let mut conn = pool.get().unwrap();
    let issued: i64 = invoices::table.count().get_result(&mut conn).unwrap();
    assert!(issued > 0);
    for period in &periods {
        server.run(&["invoice", "--period", period]);
    }
    let again: i64 = invoices::table.count().get_result(&mut conn).unwrap();
    assert_eq!(again, issued, "a second run issues nothing");
    for (id, ..) in &sessions {
        let lines: i64 = invoice_lines::table
            .filter(invoice_lines::session_id.eq(id))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(lines, 1, "session {id} is on exactly one invoice");
    }
    server.kill();
}
