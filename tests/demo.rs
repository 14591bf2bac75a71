//! `laddkoll serve --demo`: the seeded network seen through the real API by the printed
//! driver and operator, idempotent seeding, credentials that survive (or are reset) across
//! restarts, and the real binary printing logins that work.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{spawn_app, TestApp, TestDb};
use diesel::{QueryDsl, RunQueryDsl};
use laddkoll::demo::{self, DemoFiles, DemoReport};
use laddkoll::simulate::fleet::Fleet;
use serde_json::Value;

async fn seed(app: &TestApp, dir: &tempfile::TempDir) -> DemoReport {
    demo::ensure(app.state.clone(), &DemoFiles::in_dir(dir.path()))
        .await
        .expect("demo seeding")
}

async fn token(app: &TestApp, email: &str, password: &str) -> String {
    let a = app.login(email, password).await;
    assert_eq!(a.status, 200, "login {email}: {}", a.body);
    a.body["access_token"].as_str().unwrap().to_string()
}

/// Rows per table that seeding writes.
async fn counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    app.state
        .db
        .run(|conn| {
            use laddkoll::db::schema::*;
            Ok(vec![
                ("users", users::table.count().get_result(conn)?),
                ("locations", locations::table.count().get_result(conn)?),
                (
                    "charge_points",
                    charge_points::table.count().get_result(conn)?,
                ),
                ("tariffs", tariffs::table.count().get_result(conn)?),
                ("rfid_cards", rfid_cards::table.count().get_result(conn)?),
                (
                    "sessions",
                    charging_sessions::table.count().get_result(conn)?,
                ),
                (
                    "meter_values",
                    meter_values::table.count().get_result(conn)?,
                ),
                ("invoices", invoices::table.count().get_result(conn)?),
                (
                    "batches",
                    recommendation_batches::table.count().get_result(conn)?,
                ),
                (
                    "recommendations",
                    recommendations::table.count().get_result(conn)?,
                ),
            ])
        })
        .await
        .unwrap()
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().expect("a list answer")
}

#[actix_rt::test]
async fn the_printed_driver_sees_priced_sessions_invoices_and_recommendations() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let report = seed(&app, &dir).await;
    let seeded = report.seeded.expect("a fresh database is seeded");
    assert!((10..=15).contains(&seeded.locations), "{seeded:?}");
    assert!(seeded.sessions > 300 && seeded.invoices >= 6, "{seeded:?}");
    assert!(seeded.recommendations > 0, "{seeded:?}");

    let c = &report.credentials;
    assert_eq!(c.driver.email, demo::DRIVER_EMAIL);
    let me = token(&app, &c.driver.email, &c.driver.password).await;

    // Sessions: finished, from the driver's card, priced like real ones.
    let sessions = app.get("/sessions?limit=100", Some(&me)).await;
    assert_eq!(sessions.status, 200, "{}", sessions.body);
    let list = items(&sessions.body);
    assert!(list.len() >= 30, "{} sessions", list.len());
    for s in list {
        assert_eq!(s["status"], "finished", "{s}");
        assert!(s["flags"].as_array().unwrap().is_empty(), "{s}");
        let state = s["cost"]["state"].as_str().unwrap_or_default();
        assert!(state == "priced" || state == "billed", "{s}");
        assert!(s["cost"]["total"].as_i64().unwrap() > 0, "{s}");
        assert!(s["energy_wh"].as_i64().unwrap() > 0, "{s}");
        // AC at work and in the garage next to it bills energy only: a day at work parked at a
        // charger costs no parking fee.
        if ["DEMO-KST-1", "DEMO-KGA-1"].contains(&s["charge_point_id"].as_str().unwrap()) {
            let lines = s["cost"]["details"]["lines"].as_array().unwrap();
            assert!(
                lines.iter().all(|l| l["kind"] == "energy"),
                "an AC session pays for energy only: {s}"
            );
        }
    }
    // Both kinds of places: the AC work garage in the mornings and DC fast charging.
    let at = |prefix: &str| {
        list.iter()
            .any(|s| s["charge_point_id"].as_str().unwrap().starts_with(prefix))
    };
    assert!(at("DEMO-KST-") || at("DEMO-KGA-"), "no workday sessions");
    let detail = app
        .get(&format!("/sessions/{}", list[0]["id"]), Some(&me))
        .await;
    assert!(
        detail.body["cost"]["details"]["lines"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{}",
        detail.body
    );

    // The card whose tag was printed.
    let cards = app.get("/me/rfid-cards", Some(&me)).await;
    assert_eq!(cards.body[0]["uid"], c.driver_id_tag.as_str());

    // Invoices for past months, with lines and a PDF.
    let invoices = app.get("/invoices", Some(&me)).await;
    let invoices = items(&invoices.body);
    assert!(invoices.len() >= 2, "{invoices:?}");
    let id = invoices[0]["id"].as_i64().unwrap();
    let invoice = app.get(&format!("/invoices/{id}"), Some(&me)).await;
    assert_eq!(invoice.status, 200);
    assert!(!invoice.body["lines"].as_array().unwrap().is_empty());
    assert!(invoice.body["amount"]["total"].as_i64().unwrap() > 0);
    let pdf = app
        .client
        .get(app.api(&format!("/invoices/{id}/pdf")))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"));

    // Recommendations with their reasons, and a forecast for a place she uses.
    let recs = app.get("/me/recommendations", Some(&me)).await;
    assert!(!recs.body["batch"].is_null(), "{}", recs.body);
    let recs = items(&recs.body);
    assert!(!recs.is_empty());
    assert!(recs
        .iter()
        .all(|r| !r["sentence"].as_str().unwrap().is_empty()));
    let location = recs[0]["location"]["id"].as_i64().unwrap();
    let forecast = app
        .get(&format!("/locations/{location}/forecast"), Some(&me))
        .await;
    let slots = forecast.body["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 168);
    assert!(slots
        .iter()
        .any(|s| s["expected_occupied"].as_f64().unwrap() > 0.0));

    // The operator sees the whole network and everyone's sessions.
    let op = token(&app, &c.operator.email, &c.operator.password).await;
    let locations = app.get("/admin/locations?limit=100", Some(&op)).await;
    assert_eq!(locations.status, 200, "{}", locations.body);
    let locations = items(&locations.body);
    assert_eq!(locations.len(), seeded.locations);
    let mut charge_points = 0;
    for l in locations {
        assert_eq!(l["timezone"], "Europe/Stockholm");
        assert_eq!(l["country"], "SE");
        let cps = l["charge_points"].as_array().unwrap();
        assert!((1..=4).contains(&cps.len()), "{l}");
        for cp in cps {
            assert_eq!(cp["connectors"].as_array().unwrap().len(), 2);
            assert!(!cp["tariff"].is_null(), "{cp}");
        }
        charge_points += cps.len();
    }
    assert_eq!(charge_points, seeded.charge_points);
    let all = app.get("/admin/sessions?limit=100", Some(&op)).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(items(&all.body).len(), 100);
    let drivers_only = app.get("/admin/locations", Some(&me)).await;
    assert_eq!(drivers_only.status, 403);
}

#[actix_rt::test]
async fn the_fleet_file_holds_working_charger_keys_and_driver_logins() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let report = seed(&app, &dir).await;
    let fleet = Fleet::load(&report.files.fleet).expect("the fleet file loads");
    let seeded = report.seeded.unwrap();
    assert_eq!(fleet.chargers.len(), seeded.charge_points);
    assert_eq!(fleet.drivers.len(), seeded.drivers);
    assert!(fleet.chargers.iter().all(|c| c.connectors == 2));
    assert!(fleet
        .drivers
        .iter()
        .any(|d| d.email == report.credentials.driver.email
            && d.id_tag == report.credentials.driver_id_tag));

    // A charger connects with its key; a wrong key is refused.
    let cp = &fleet.chargers[0];
    common::charger::connect(&app.base, &cp.id, Some(&cp.key), true)
        .await
        .expect("the charger's key from the fleet file is accepted");
    let wrong = common::charger::connect(&app.base, &cp.id, Some("not-the-key"), true).await;
    assert_eq!(wrong.err(), Some(401));

    // Another driver of the fleet can sign in.
    let other = &fleet.drivers[1];
    token(&app, &other.email, &other.password).await;
}

#[actix_rt::test]
async fn seeding_again_adds_nothing_and_the_credentials_keep_working() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let first = seed(&app, &dir).await;
    let before = counts(&app).await;
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    let second = seed(&app, &dir).await;
    assert!(second.seeded.is_none());
    assert_eq!(counts(&app).await, before);
    assert_eq!(second.credentials.driver, first.credentials.driver);
    assert_eq!(second.credentials.operator, first.credentials.operator);
    token(
        &app,
        &first.credentials.driver.email,
        &first.credentials.driver.password,
    )
    .await;

    // Without the files (e.g. another working directory) the demo accounts get new passwords
    // and the chargers new keys, still without adding anything.
    std::fs::remove_file(&first.files.credentials).unwrap();
    std::fs::remove_file(&first.files.fleet).unwrap();
    let third = seed(&app, &dir).await;
    assert!(third.seeded.is_none());
    assert_eq!(counts(&app).await, before);
    assert_ne!(
        third.credentials.driver.password,
        first.credentials.driver.password
    );
    assert_eq!(
        third.credentials.driver_id_tag,
        first.credentials.driver_id_tag
    );
    let old = app
        .login(
            &first.credentials.driver.email,
            &first.credentials.driver.password,
        )
        .await;
    assert_eq!(old.status, 401);
    token(
        &app,
        &third.credentials.driver.email,
        &third.credentials.driver.password,
    )
    .await;
    token(
        &app,
        &third.credentials.operator.email,
        &third.credentials.operator.password,
    )
    .await;
    let fleet = Fleet::load(&third.files.fleet).unwrap();
    let cp = fleet.chargers.last().unwrap();
    common::charger::connect(&app.base, &cp.id, Some(&cp.key), true)
        .await
        .expect("the rotated key works");
}

#[actix_rt::test]
async fn a_database_with_other_accounts_is_left_alone() {
    let app = spawn_app().await;
    app.register("someone@example.se").await;
    let dir = tempfile::tempdir().unwrap();
    let err = demo::ensure(app.state.clone(), &DemoFiles::in_dir(dir.path()))
        .await
        .expect_err("a database in use is not seeded");
    assert!(err.to_string().contains("empty database"), "{err}");
    assert_eq!(counts(&app).await[0], ("users", 1));
    assert!(!dir.path().join("demo-fleet.json").exists());
}

/// Kills the child process when dropped, so a failing test leaves no server behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_rt::test]
async fn serve_demo_prints_credentials_that_work() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_laddkoll"))
            .args(["serve", "--demo"])
            .current_dir(dir.path())
            .env("DATABASE_URL", &db.url)
            .env("LADDKOLL_BIND", format!("127.0.0.1:{port}"))
            .env("LADDKOLL_JWT_SECRET", "s".repeat(40))
            .env("LADDKOLL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start laddkoll serve --demo"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = std::collections::HashMap::new();
    while !printed.contains_key("credentials file") {
        let line = rx
            .recv_timeout(Duration::from_secs(180))
            .expect("the demo prints its credentials");
        if let Some((key, value)) = line.split_once(':') {
            printed.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    assert_eq!(
        printed["API docs"],
        format!("http://127.0.0.1:{port}/docs/")
    );
    let fleet = dir.path().join(&printed["fleet file"]);
    assert!(Fleet::load(&fleet).is_ok(), "{}", fleet.display());

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server answers after printing");
    for who in ["driver", "operator"] {
        let res = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({
                "email": printed[&format!("{who} email")],
                "password": printed[&format!("{who} password")],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{who} login");
    }
    let docs = client.get(&printed["API docs"]).send().await.unwrap();
    assert_eq!(docs.status(), 200);

    // The printed portal URL and the driver's login work in the web portal.
    assert_eq!(printed["web portal"], format!("{base}/"));
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"form_token\" value=\"";
    let at = login.find(marker).expect("the sign-in form") + marker.len();
    let token = login[at..].split('"').next().unwrap();
    let home = browser
        .post(format!("{base}/login"))
        .form(&[
            ("form_token", token),
            ("email", printed["driver email"].as_str()),
            ("password", printed["driver password"].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    assert_eq!(home.url().path(), "/");
    assert!(home.text().await.unwrap().contains("action=\"/logout\""));
}
