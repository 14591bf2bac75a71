//! Several instances on one database (DESIGN §8): commands reach a charger on another instance
//! through PostgreSQL, only the current connection's owner marks a charger offline, a dead
//! instance's chargers go offline when its lease expires, and SQLite refuses a second instance.

mod common;

use std::time::Duration;

use common::charger::connect;
use common::{spawn_app, start_instance};
use serde_json::{json, Value};

/// The second instance of a PostgreSQL test app, or None (with a message) on SQLite.
async fn second_instance(app: &common::TestApp) -> Option<(String, reqwest::Client)> {
    if !app.db.is_postgres() {
        eprintln!(
            "skipped: several instances need PostgreSQL (set TEST_DATABASE_URL to run this test)"
        );
        return None;
    }
    // One system: the same token secret; each instance has its own id and lease.
    let secret = app.state.config.jwt_secret.clone();
    let (base, client, state) = start_instance(&app.db.url, |c| {
        c.jwt_secret = secret;
        c.instance_lease = Duration::from_secs(2);
    })
    .await;
    laddkoll::cluster::spawn(app.state.clone());
    laddkoll::cluster::spawn(state);
    Some((base, client))
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let res = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[actix_rt::test]
async fn a_command_taken_by_one_instance_reaches_a_charger_connected_to_the_other() {
    let app = spawn_app().await;
    let Some((b_base, b_client)) = second_instance(&app).await else {
        return;
    };
    let site = app.site("CP-CLU").await;
    let (driver, _) = app.driver("clu@example.se").await;
    // The charger is connected to instance A (app.base); the operator talks to instance B.
    let mut c = app.charger(&site).await;
    let reset = post(
        &b_client,
        format!("{b_base}/api/v1/admin/charge-points/CP-CLU/reset"),
        &site.operator,
        json!({"type": "Soft"}),
    );
    let charger_side = async {
        let (id, action, payload) = c.server_call().await;
        assert_eq!(
            (action.as_str(), &payload),
            ("Reset", &json!({"type": "Soft"}))
        );
        c.respond(&id, json!({"status": "Accepted"})).await;
    };
    let ((status, body), ()) = futures_util::join!(reset, charger_side);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Accepted");

    // The driver's app unlock through B reaches the charger on A.
    let unlock = post(
        &b_client,
        format!("{b_base}/api/v1/sessions"),
        &driver,
        json!({"charge_point_id": "CP-CLU", "connector_id": 1}),
    );
    let charger_side = async {
        let (id, action, payload) = c.server_call().await;
        assert_eq!(action, "RemoteStartTransaction");
        c.respond(&id, json!({"status": "Accepted"})).await;
        payload["idTag"].as_str().unwrap().to_string()
    };
    let ((status, body), tag) = futures_util::join!(unlock, charger_side);
    assert_eq!(status, 202, "{body}");
    let tx = c.start(1, &tag, 100, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    assert_eq!(tx, body["id"].as_i64().unwrap());

    // The charger reconnects to B; the late disconnect of its old connection on A does not
    // mark it offline, and a command through A now reaches it on B.
    let mut on_b = connect(&b_base, "CP-CLU", Some(&site.key), true)
        .await
        .unwrap();
    on_b.boot().await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fleet = app
        .get("/admin/charge-points/CP-CLU", Some(&site.operator))
        .await;
    assert_eq!(fleet.body["online"], true, "{}", fleet.body);
    let stop = post(
        &app.client,
        app.api(&format!("/sessions/{tx}/stop")),
        &driver,
        json!({}),
    );
    let charger_side = async {
        let (id, action, payload) = on_b.server_call().await;
        assert_eq!(
            (action.as_str(), &payload),
            ("RemoteStopTransaction", &json!({"transactionId": tx}))
        );
        on_b.respond(&id, json!({"status": "Accepted"})).await;
    };
    let ((status, body), ()) = futures_util::join!(stop, charger_side);
    assert_eq!(status, 202, "{body}");

    // A charger that disconnects before answering a routed command: offline at once.
    let trigger = post(
        &app.client,
        app.api("/admin/charge-points/CP-CLU/trigger-message"),
        &site.operator,
        json!({"requested_message": "Heartbeat"}),
    );
    let charger_side = async move {
        let (_, action, _) = on_b.server_call().await;
        assert_eq!(action, "TriggerMessage");
        drop(on_b);
    };
    let ((status, body), ()) = futures_util::join!(trigger, charger_side);
    assert_eq!(status, 503, "{body}");
}

#[actix_rt::test]
async fn the_chargers_of_an_instance_whose_lease_expired_show_offline() {
    let app = spawn_app().await;
    let Some(_) = second_instance(&app).await else {
        return;
    };
    let site = app.site("CP-LEASE").await;
    // A charger held by an instance that died (its lease row is old, or it never had one).
    let mut conn = app.state.db.get().unwrap();
    laddkoll::locations::queries::claim_connection(
        &mut conn,
        "CP-LEASE",
        "i-dead",
        laddkoll::http::time::now(),
    )
    .unwrap();
    drop(conn);
    let mut online = true;
    for _ in 0..100 {
        let cp = app
            .get("/admin/charge-points/CP-LEASE", Some(&site.operator))
            .await;
        online = cp.body["online"].as_bool().unwrap();
        if !online {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!online, "a dead instance's charger is shown offline");
    // It is served again when it reconnects, to any instance.
    let _c = app.charger(&site).await;
    let cp = app
        .get("/admin/charge-points/CP-LEASE", Some(&site.operator))
        .await;
    assert_eq!(cp.body["online"], true);
}

#[test]
fn a_second_instance_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let url = format!("sqlite://{}", db.display());
    let port = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let serve = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_laddkoll"))
            .arg("serve")
            .env("DATABASE_URL", &url)
            .env("LADDKOLL_BIND", format!("127.0.0.1:{port}"))
            .env("LADDKOLL_JWT_SECRET", "x".repeat(40))
            .env("LADDKOLL_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first_port = port(());
    let mut first = serve(first_port);
    // Wait until the first instance serves.
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", first_port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "the first instance starts");
    let second = serve(port(())).wait_with_output().unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("SQLite is one instance only"),
        "a clear error: {stderr}"
    );
}
