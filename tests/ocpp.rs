//! Chargers over OCPP 1.6J through real WebSockets: authentication, the Core profile,
//! RFID, sessions from the charger's record, app unlock and live monitoring (DESIGN §3–5).

mod common;

use common::charger::connect;
use common::{priced_site, spawn_app, spawn_app_with, TestApp, PASSWORD};
use serde_json::{json, Value};

async fn card(app: &TestApp, token: &str, uid: &str) -> i64 {
    let a = app
        .post(
            "/me/rfid-cards",
            json!({"uid": uid, "label": "My card"}),
            Some(token),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["id"].as_i64().unwrap()
}

async fn audit_reasons(app: &TestApp, operator: &str, action: &str) -> Vec<String> {
    let a = app
        .get(
            &format!("/admin/audit-events?action={action}"),
            Some(operator),
        )
        .await;
    a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[actix_rt::test]
async fn a_charger_with_a_wrong_key_or_unknown_id_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let site = app.site("CP-AUTH").await;
    assert_eq!(
        connect(&app.base, "CP-AUTH", Some("wrong-key"), true)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        connect(&app.base, "CP-AUTH", None, true).await.err(),
        Some(401)
    );
    assert_eq!(
        connect(&app.base, "CP-NOBODY", Some(&site.key), true)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        connect(&app.base, "CP-AUTH", Some(&site.key), false)
            .await
            .err(),
        Some(400),
        "ocpp1.6 must be offered"
    );
    let reasons = audit_reasons(&app, &site.operator, "charger_connection_refused").await;
    assert!(
        reasons.iter().any(|r| r.contains("wrong key")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown charge point")),
        "{reasons:?}"
    );
    assert!(connect(&app.base, "CP-AUTH", Some(&site.key), true)
        .await
        .is_ok());

    // A rotated key locks the old one out.
    let rotated = app
        .post(
            "/admin/charge-points/CP-AUTH/rotate-key?manual=true",
            json!({}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(rotated.status, 200);
    assert_eq!(
        connect(&app.base, "CP-AUTH", Some(&site.key), true)
            .await
            .err(),
        Some(401)
    );
    assert!(connect(
        &app.base,
        "CP-AUTH",
        Some(rotated.body["password"].as_str().unwrap()),
        true
    )
    .await
    .is_ok());
}

#[actix_rt::test]
async fn boot_heartbeat_and_status_are_answered_and_drivers_see_the_charger_live() {
    let app = spawn_app().await;
    let site = app.site("CP-LIVE").await;
    let (driver, _) = app.driver("d@example.se").await;
    let before = app
        .get(&format!("/locations/{}", site.location_id), Some(&driver))
        .await;
    assert_eq!(before.body["charge_points"][0]["online"], false);

    let mut c = connect(&app.base, "CP-LIVE", Some(&site.key), true)
        .await
        .unwrap();
    let boot = c.boot().await;
    assert_eq!(boot["status"], "Accepted");
    assert_eq!(boot["interval"], 300);
    assert!(boot["currentTime"].is_string());
    assert!(c.call("Heartbeat", json!({})).await.ok()["currentTime"].is_string());
    c.status(1, "Available", "2026-11-24T10:00:00Z").await;
    c.status(2, "Faulted", "2026-11-24T10:00:00Z").await;
    // A late, older status does not overwrite the newer one.
    c.status(1, "Charging", "2026-11-24T09:00:00Z").await;

    let near = app
        .get("/locations?lat=59.33&lon=18.06&radius_km=5", Some(&driver))
        .await;
    assert_eq!(near.status, 200);
    let loc = &near.body[0];
    assert_eq!(loc["id"], site.location_id);
    assert!(loc["distance_km"].as_f64().unwrap() < 3.0);
    let cp = &loc["charge_points"][0];
    assert_eq!(cp["online"], true);
    assert_eq!(cp["vendor"], "Laddkoll");
    assert_eq!(cp["connectors"][0]["status"], "Available");
    assert_eq!(cp["connectors"][1]["status"], "Faulted");
    assert_eq!(cp["connectors"][1]["power_kw"], 150.0);
    let far = app
        .get("/locations?lat=57.70&lon=11.97&radius_km=20", Some(&driver))
        .await;
    assert_eq!(
        far.body.as_array().unwrap().len(),
        0,
        "Gothenburg is far from Stockholm"
    );
    let bad = app.get("/locations?lat=100&lon=18", Some(&driver)).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_query"));

    drop(c);
    for _ in 0..100 {
        let l = app
            .get(&format!("/locations/{}", site.location_id), Some(&driver))
            .await;
        if l.body["charge_points"][0]["online"] == false {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the charger never went offline after disconnecting");
}

#[actix_rt::test]
async fn malformed_frames_get_the_named_callerror_and_the_connection_stays_up() {
    let app = spawn_app().await;
    let site = app.site("CP-FUZZ").await;
    let mut c = app.charger(&site).await;
    c.send_raw("this is not json").await;
    assert_eq!(c.answer_to("-1").await.error_code(), "FormationViolation");
    c.send_raw(r#"[2,"x1","StartTransaction",{"connectorId":1,"meterStart":0,"timestamp":"2026-11-24T10:00:00Z"}]"#).await;
    assert_eq!(
        c.answer_to("x1").await.error_code(),
        "OccurenceConstraintViolation"
    );
    c.send_raw(r#"[2,"x2","StartTransaction",{"connectorId":"one","idTag":"AA","meterStart":0,"timestamp":"2026-11-24T10:00:00Z"}]"#).await;
    assert_eq!(
        c.answer_to("x2").await.error_code(),
        "TypeConstraintViolation"
    );
    c.send_raw(r#"[2,"x3","Authorize",{"idTag":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]"#)
        .await;
    assert_eq!(
        c.answer_to("x3").await.error_code(),
        "PropertyConstraintViolation"
    );
    c.send_raw(r#"[2,"x4","FlyToTheMoon",{}]"#).await;
    assert_eq!(c.answer_to("x4").await.error_code(), "NotImplemented");
    c.send_raw(r#"[2,"x5","Heartbeat"]"#).await;
    assert_eq!(c.answer_to("x5").await.error_code(), "FormationViolation");
    // Still connected and served.
    assert!(c.call("Heartbeat", json!({})).await.ok()["currentTime"].is_string());
}

#[actix_rt::test]
async fn rfid_authorize_answers_from_card_and_account_state() {
    let app = spawn_app().await;
    let site = app.site("CP-RFID").await;
    let (anna, _) = app.driver("anna@example.se").await;
    let (bo, _) = app.driver("bo@example.se").await;
    let card_a = card(&app, &anna, "04:A1:B2:C3").await;
    let taken = app
        .post(
            "/me/rfid-cards",
            json!({"uid": "04a1b2c3", "label": "Mine now"}),
            Some(&bo),
        )
        .await;
    assert_eq!((taken.status, taken.code()), (409, "uid_taken"));
    let bad = app
        .post(
            "/me/rfid-cards",
            json!({"uid": "twenty-one characters", "label": "x"}),
            Some(&bo),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_uid"));
    app.post(
        "/me/rfid-cards",
        json!({"uid": "0BADC0DE", "label": "Old", "expires_at": "2020-01-01T00:00:00Z"}),
        Some(&bo),
    )
    .await;

    let mut c = app.charger(&site).await;
    let status = |v: Value| v["idTagInfo"]["status"].as_str().unwrap().to_string();
    assert_eq!(
        status(c.call("Authorize", json!({"idTag": "04A1B2C3"})).await.ok()),
        "Accepted"
    );
    assert_eq!(
        status(c.call("Authorize", json!({"idTag": "DEADBEEF"})).await.ok()),
        "Invalid"
    );
    assert_eq!(
        status(c.call("Authorize", json!({"idTag": "0BADC0DE"})).await.ok()),
        "Expired"
    );

    // Bo cannot touch Anna's card; Anna blocks it.
    let req = app
        .client
        .patch(app.api(&format!("/me/rfid-cards/{card_a}")))
        .bearer_auth(&bo)
        .json(&json!({"status": "blocked"}));
    assert_eq!(app.send(req).await.status, 404);
    let req = app
        .client
        .patch(app.api(&format!("/me/rfid-cards/{card_a}")))
        .bearer_auth(&anna)
        .json(&json!({"status": "blocked", "label": "Lost"}));
    let patched = app.send(req).await;
    assert_eq!(
        (
            patched.body["status"].as_str(),
            patched.body["label"].as_str()
        ),
        (Some("blocked"), Some("Lost"))
    );
    assert_eq!(
        status(c.call("Authorize", json!({"idTag": "04A1B2C3"})).await.ok()),
        "Blocked"
    );
    let req = app
        .client
        .patch(app.api(&format!("/me/rfid-cards/{card_a}")))
        .bearer_auth(&anna)
        .json(&json!({"status": "active"}));
    app.send(req).await;

    // Charging with the card, Authorize still answers from the card (OCPP 1.6 reserves
    // ConcurrentTx for StartTransaction), and a second start is ConcurrentTx.
    let started = c.start(1, "04A1B2C3", 1000, "2026-11-24T10:00:00Z").await;
    assert_eq!(started["idTagInfo"]["status"], "Accepted");
    assert_eq!(
        status(c.call("Authorize", json!({"idTag": "04A1B2C3"})).await.ok()),
        "Accepted"
    );
    let second = c.start(2, "04A1B2C3", 500, "2026-11-24T10:05:00Z").await;
    assert_eq!(second["idTagInfo"]["status"], "ConcurrentTx");

    // A blocked account blocks its cards.
    let anna_id = app.get("/me", Some(&anna)).await.body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/admin/users/{anna_id}/block"),
        json!({}),
        Some(&site.operator),
    )
    .await;
    assert_eq!(
        status(c.call("Authorize", json!({"idTag": "04A1B2C3"})).await.ok()),
        "Blocked"
    );

    let decisions = audit_reasons(&app, &site.operator, "rfid_authorize").await;
    assert_eq!(decisions.len(), 6);
    assert!(
        decisions.iter().all(|d| !d.contains("04A1B2C3")),
        "uids are masked: {decisions:?}"
    );
    assert!(decisions.iter().any(|d| d.contains("04A1…")));

    let del = app
        .send(
            app.client
                .delete(app.api(&format!("/me/rfid-cards/{card_a}")))
                .bearer_auth(&bo),
        )
        .await;
    assert_eq!(del.status, 404, "another driver's card answers 404");
}

#[actix_rt::test]
async fn an_rfid_session_is_recorded_from_the_chargers_messages_live_and_final() {
    let app = spawn_app().await;
    let site = app.site("CP-TX").await;
    let (anna, _) = app.driver("anna@example.se").await;
    let (bo, _) = app.driver("bo@example.se").await;
    card(&app, &anna, "AABBCCDD").await;
    let mut c = app.charger(&site).await;
    c.status(1, "Preparing", "2026-11-24T09:59:00Z").await;
    let started = c.start(1, "AABBCCDD", 12_000, "2026-11-24T10:00:00Z").await;
    let tx = started["transactionId"].as_i64().unwrap();
    // A replayed StartTransaction gets the same transaction and makes no second session.
    let replay = c.start(1, "AABBCCDD", 12_000, "2026-11-24T10:00:00Z").await;
    assert_eq!(replay["transactionId"].as_i64(), Some(tx));

    c.status(1, "Charging", "2026-11-24T10:00:05Z").await;
    c.meter(1, Some(tx), "2026-11-24T10:15:00Z", "14500", "11000", "40")
        .await;
    // Without transactionId, linked by connector and time.
    c.meter(1, None, "2026-11-24T10:30:00Z", "17250", "10500", "52")
        .await;
    let live = app.get(&format!("/sessions/{tx}"), Some(&anna)).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "active");
    assert_eq!(live.body["energy_wh"], 17_250 - 12_000);
    assert_eq!(live.body["power_w"], 10_500);
    assert_eq!(live.body["soc"], 52);
    assert_eq!(live.body["origin"], "rfid");
    assert_eq!(
        app.get(&format!("/sessions/{tx}"), Some(&bo)).await.status,
        404,
        "another driver's session"
    );

    c.status(1, "SuspendedEV", "2026-11-24T10:40:00Z").await;
    c.status(1, "Finishing", "2026-11-24T10:50:00Z").await;
    let stop = c.stop(tx, 18_000, "2026-11-24T11:00:00Z").await;
    assert!(stop.get("idTagInfo").is_none() || stop["idTagInfo"]["status"] == "Accepted");
    let done = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(done["status"], "finished");
    assert_eq!(done["energy_wh"], 6_000);
    assert_eq!(done["started_at"], "2026-11-24T10:00:00Z");
    assert_eq!(done["stopped_at"], "2026-11-24T11:00:00Z");
    assert_eq!(
        done["charging_seconds"],
        40 * 60,
        "a session starts as charging; Preparing does not change that"
    );
    assert_eq!(done["idle_seconds"], 20 * 60);
    assert_eq!(done["stop_reason"], "EVDisconnected");
    assert_eq!(
        done["flags"].as_array().unwrap().len(),
        0,
        "{}",
        done["flags"]
    );
    assert!(done["power_w"].is_null(), "no live power after the end");

    let list = app.get("/sessions", Some(&anna)).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "the replay made no second session"
    );
    let values = app
        .get(&format!("/sessions/{tx}/meter-values?limit=4"), Some(&anna))
        .await;
    assert_eq!(values.body["items"].as_array().unwrap().len(), 4);
    assert_eq!(values.body["items"][0]["value"], "14500");
    assert_eq!(values.body["items"][0]["normalized"], 14_500);
    let rest = app
        .get(
            &format!(
                "/sessions/{tx}/meter-values?cursor={}",
                values.body["next_cursor"].as_str().unwrap()
            ),
            Some(&anna),
        )
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest.body["items"][1]["measurand"], "SoC");

    // The stop is idempotent too.
    c.stop(tx, 18_000, "2026-11-24T11:00:00Z").await;
    let again = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(again["energy_wh"], 6_000);
}

#[actix_rt::test]
async fn suspect_meter_data_is_stored_and_flagged_not_fixed() {
    let app = spawn_app().await;
    let site = app.site("CP-FLAG").await;
    let (anna, _) = app.driver("anna@example.se").await;
    card(&app, &anna, "CAFEBABE").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "CAFEBABE", 0, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-24T10:10:00Z", "3000", "7000", "30")
        .await;
    c.meter(1, Some(tx), "2026-11-24T10:20:00Z", "2500", "7000", "31")
        .await;
    c.meter(1, Some(tx), "2026-11-24T11:20:00Z", "4000", "7000", "40")
        .await;
    c.stop(tx, 100, "2026-11-24T11:30:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    let flags: Vec<&str> = s["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flag"].as_str().unwrap())
        .collect();
    for expected in ["register_backwards", "meter_gap"] {
        assert!(
            flags.contains(&expected),
            "{expected} missing from {flags:?}"
        );
    }
    // A zero start whose readings a 22 kW connector could deliver is a per-transaction
    // register, not a suspect baseline.
    assert!(!flags.contains(&"zero_start_baseline"), "{flags:?}");
    assert_eq!(s["status"], "finished");
    let values = app
        .get(
            &format!("/sessions/{tx}/meter-values?limit=100"),
            Some(&anna),
        )
        .await;
    assert_eq!(
        values.body["items"].as_array().unwrap().len(),
        9,
        "everything sent is kept"
    );

    let tx2 = c.start(1, "CAFEBABE", 500, "2026-11-24T12:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(tx2, 400, "2026-11-24T12:30:00Z").await;
    let s2 = app.get(&format!("/sessions/{tx2}"), Some(&anna)).await.body;
    let flags: Vec<&str> = s2["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flag"].as_str().unwrap())
        .collect();
    assert!(flags.contains(&"meter_stop_below_start"), "{flags:?}");
    assert_eq!(s2["energy_wh"], 0, "never negative energy");
}

#[actix_rt::test]
async fn a_charger_cannot_touch_another_chargers_transaction_and_unknown_stops_are_accepted() {
    let app = spawn_app().await;
    let a = app.site("CP-A").await;
    let b = app.site_with(&a.operator, "CP-B").await;
    let (anna, _) = app.driver("anna@example.se").await;
    card(&app, &anna, "11223344").await;
    let mut ca = app.charger(&a).await;
    let mut cb = app.charger(&b).await;
    let tx = ca.start(1, "11223344", 1000, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();

    cb.meter(1, Some(tx), "2026-11-24T10:05:00Z", "99999", "1", "1")
        .await;
    let stop = cb
        .call(
            "StopTransaction",
            json!({"transactionId": tx, "meterStop": 99999, "timestamp": "2026-11-24T10:06:00Z"}),
        )
        .await;
    assert!(
        matches!(stop, common::charger::Reply::Result(_)),
        "answered, never refused"
    );
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(s["status"], "active", "B could not stop A's session");
    assert_eq!(s["energy_wh"], 0, "B's readings are not in A's session");
    let refused = audit_reasons(&app, &a.operator, "foreign_transaction_refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");

    // An unknown transaction (and -1) is accepted and logged.
    cb.call(
        "StopTransaction",
        json!({"transactionId": 424242, "meterStop": 5, "timestamp": "2026-11-24T10:07:00Z"}),
    )
    .await
    .ok();
    cb.call(
        "StopTransaction",
        json!({"transactionId": -1, "meterStop": 5, "timestamp": "2026-11-24T10:07:00Z"}),
    )
    .await
    .ok();
    assert_eq!(
        audit_reasons(&app, &a.operator, "unknown_transaction_stop")
            .await
            .len(),
        2
    );

    // A late StopTransaction after an offline period keeps the charger's timestamps.
    drop(ca);
    let mut ca = app.charger(&a).await;
    ca.stop(tx, 4000, "2026-11-24T10:45:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(
        (
            s["status"].as_str(),
            s["stopped_at"].as_str(),
            s["energy_wh"].as_i64()
        ),
        (Some("finished"), Some("2026-11-24T10:45:00Z"), Some(3000))
    );
}

#[actix_rt::test]
async fn a_newer_authenticated_connection_replaces_the_live_one() {
    let app = spawn_app().await;
    let site = app.site("CP-TWICE").await;
    let mut first = app.charger(&site).await;
    let intruder = connect(&app.base, "CP-TWICE", Some("guess"), true).await;
    assert_eq!(intruder.err(), Some(401));
    assert!(
        first.call("Heartbeat", json!({})).await.ok()["currentTime"].is_string(),
        "the refused attempt did not disturb it"
    );
    let mut second = app.charger(&site).await;
    assert!(first.is_closed().await, "the older connection is closed");
    assert!(second.call("Heartbeat", json!({})).await.ok()["currentTime"].is_string());
}

#[actix_rt::test]
async fn app_unlock_starts_through_the_charger_and_the_app_stops_it() {
    let app = spawn_app().await;
    let site = app.site("CP-APP").await;
    let (anna, _) = app.driver("anna@example.se").await;
    let (bo, _) = app.driver("bo@example.se").await;
    let offline = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-APP", "connector_id": 1}),
            Some(&anna),
        )
        .await;
    assert_eq!(
        (offline.status, offline.code()),
        (503, "service_unavailable")
    );

    let mut c = app.charger(&site).await;
    c.status(1, "Available", "2026-11-24T10:00:00Z").await;
    c.status(2, "Faulted", "2026-11-24T10:00:00Z").await;
    let missing = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-APP", "connector_id": 9}),
            Some(&anna),
        )
        .await;
    assert_eq!(missing.status, 404);
    let faulted = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-APP", "connector_id": 2}),
            Some(&anna),
        )
        .await;
    assert_eq!(
        (faulted.status, faulted.code()),
        (409, "connector_unavailable")
    );

    let started = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-APP", "connector_id": 1}),
            Some(&anna),
        )
        .await;
    assert_eq!(started.status, 202);
    assert_eq!(started.body["status"], "pending");
    let id = started.body["id"].as_i64().unwrap();
    let busy = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-APP", "connector_id": 1}),
            Some(&bo),
        )
        .await;
    assert_eq!((busy.status, busy.code()), (409, "connector_busy"));

    let (call_id, action, payload) = c.server_call().await;
    assert_eq!(action, "RemoteStartTransaction");
    assert_eq!(payload["connectorId"], 1);
    let tag = payload["idTag"].as_str().unwrap().to_string();
    assert!(tag.len() <= 20 && tag.starts_with("APP"), "{tag}");
    c.respond(&call_id, json!({"status": "Accepted"})).await;
    let tx = c.start(1, &tag, 5000, "2026-11-24T10:01:00Z").await;
    assert_eq!(tx["idTagInfo"]["status"], "Accepted");
    assert_eq!(
        tx["transactionId"].as_i64(),
        Some(id),
        "correlated with the app's session"
    );
    let active = app.wait_session(&anna, id, "active").await;
    assert_eq!(active["origin"], "app");
    c.meter(1, Some(id), "2026-11-24T10:20:00Z", "8000", "9000", "60")
        .await;
    assert_eq!(
        app.get(&format!("/sessions/{id}"), Some(&anna)).await.body["energy_wh"],
        3000
    );

    // Only the session's driver may stop it.
    assert_eq!(
        app.post(&format!("/sessions/{id}/stop"), json!({}), Some(&bo))
            .await
            .status,
        404
    );
    let stop_req = app
        .client
        .post(app.api(&format!("/sessions/{id}/stop")))
        .bearer_auth(&anna)
        .send();
    let charger_side = async {
        let (call_id, action, payload) = c.server_call().await;
        assert_eq!(action, "RemoteStopTransaction");
        assert_eq!(payload["transactionId"].as_i64(), Some(id));
        c.respond(&call_id, json!({"status": "Accepted"})).await;
        c
    };
    let (res, mut c) = futures_util::join!(stop_req, charger_side);
    assert_eq!(res.unwrap().status(), 202);
    c.stop(id, 9000, "2026-11-24T10:30:00Z").await;
    let done = app.wait_session(&anna, id, "finished").await;
    assert_eq!(done["energy_wh"], 4000);
    let actions: Vec<String> = app.get("/me/activity", Some(&anna)).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(
        actions.contains(&"app_unlock".to_string()) && actions.contains(&"remote_stop".to_string()),
        "{actions:?}"
    );
}

#[actix_rt::test]
async fn an_app_start_the_charger_refuses_or_never_starts_fails_with_a_reason() {
    let app = spawn_app_with(|c| c.app_start_timeout = std::time::Duration::from_millis(300)).await;
    let site = app.site("CP-NO").await;
    let (anna, _) = app.driver("anna@example.se").await;
    let mut c = app.charger(&site).await;
    let id = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-NO", "connector_id": 1}),
            Some(&anna),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let (call_id, _, _) = c.server_call().await;
    c.respond(&call_id, json!({"status": "Rejected"})).await;
    let failed = app.wait_session(&anna, id, "failed").await;
    assert_eq!(failed["failure_reason"], "the charger refused to start");

    let id = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-NO", "connector_id": 1}),
            Some(&anna),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let (call_id, _, payload) = c.server_call().await;
    c.respond(&call_id, json!({"status": "Accepted"})).await;
    let failed = app.wait_session(&anna, id, "failed").await;
    assert_eq!(
        failed["failure_reason"],
        "the charger did not start the session in time"
    );
    // If the charger starts after all, nothing is lost: a new session records it, flagged.
    let late = c
        .start(
            1,
            payload["idTag"].as_str().unwrap(),
            100,
            "2026-11-24T10:05:00Z",
        )
        .await;
    let late_id = late["transactionId"].as_i64().unwrap();
    assert_ne!(late_id, id);
    let s = app
        .get(&format!("/sessions/{late_id}"), Some(&anna))
        .await
        .body;
    assert_eq!(s["status"], "active");
    assert_eq!(s["flags"][0]["flag"], "late_start_after_failure");
}

#[actix_rt::test]
async fn operators_send_charger_commands_and_get_the_chargers_answer() {
    let app = spawn_app().await;
    let site = app.site("CP-CMD").await;
    let (driver, _) = app.driver("d@example.se").await;
    let offline = app
        .post(
            "/admin/charge-points/CP-CMD/reset",
            json!({"type": "Soft"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(offline.status, 503);
    let mut c = app.charger(&site).await;
    let cases = [
        (
            "reset",
            json!({"type": "Hard"}),
            "Reset",
            json!({"type": "Hard"}),
            "Accepted",
        ),
        (
            "unlock-connector",
            json!({"connector_id": 1}),
            "UnlockConnector",
            json!({"connectorId": 1}),
            "Unlocked",
        ),
        (
            "change-availability",
            json!({"connector_id": 0, "type": "Inoperative"}),
            "ChangeAvailability",
            json!({"connectorId": 0, "type": "Inoperative"}),
            "Scheduled",
        ),
        (
            "trigger-message",
            json!({"requested_message": "StatusNotification", "connector_id": 1}),
            "TriggerMessage",
            json!({"requestedMessage": "StatusNotification", "connectorId": 1}),
            "Accepted",
        ),
        (
            "change-configuration",
            json!({"key": "HeartbeatInterval", "value": "120"}),
            "ChangeConfiguration",
            json!({"key": "HeartbeatInterval", "value": "120"}),
            "RebootRequired",
        ),
        (
            "clear-cache",
            json!({}),
            "ClearCache",
            json!({}),
            "Accepted",
        ),
        (
            "data-transfer",
            json!({"vendor_id": "com.example", "message_id": "ping", "data": "hello"}),
            "DataTransfer",
            json!({"vendorId": "com.example", "messageId": "ping", "data": "hello"}),
            "UnknownVendorId",
        ),
    ];
    for (path, body, action, expected, answer) in cases {
        let req = app
            .client
            .post(app.api(&format!("/admin/charge-points/CP-CMD/{path}")))
            .bearer_auth(&site.operator)
            .json(&body)
            .send();
        let charger_side = async {
            let (id, got_action, payload) = c.server_call().await;
            assert_eq!((got_action.as_str(), &payload), (action, &expected));
            c.respond(&id, json!({"status": answer})).await;
        };
        let (res, ()) = futures_util::join!(req, charger_side);
        let res = res.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], answer, "{path}");
    }
    let invalid = app
        .post(
            "/admin/charge-points/CP-CMD/reset",
            json!({"type": "Gentle"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(invalid.status, 422);
    let denied = app
        .post(
            "/admin/charge-points/CP-CMD/reset",
            json!({"type": "Soft"}),
            Some(&driver),
        )
        .await;
    assert_eq!(denied.status, 403);
    let commands = audit_reasons(&app, &site.operator, "charger_command").await;
    assert_eq!(commands.len(), 8, "{commands:?}");
    let _ = PASSWORD;
}

#[actix_rt::test]
async fn operators_register_locations_and_charge_points_with_validation() {
    let app = spawn_app().await;
    let op = app.operator("ops@example.se").await;
    let bad = app.post("/admin/locations", json!({"name": "X", "address": "Y", "city": "Z", "country": "SE", "lat": 91.0, "lon": 18.0, "timezone": "Europe/Stockholm"}), Some(&op)).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("lat"));
    let bad_tz = app.post("/admin/locations", json!({"name": "X", "address": "Y", "city": "Z", "country": "SE", "lat": 59.0, "lon": 18.0, "timezone": "Mars/Olympus"}), Some(&op)).await;
    assert!(bad_tz.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("timezone"));
    let site = app.site_with(&op, "CP-REG").await;
    let dup = app.post("/admin/charge-points", json!({"id": "CP-REG", "location_id": site.location_id, "connectors": [{"connector_id": 1, "standard": "IEC_62196_T2", "power_kw": 11.0, "current_type": "AC"}]}), Some(&op)).await;
    assert_eq!((dup.status, dup.code()), (409, "charge_point_exists"));
    let bad_conn = app.post("/admin/charge-points", json!({"id": "CP-2", "location_id": site.location_id, "connectors": [{"connector_id": 1, "standard": "SCART", "power_kw": 11.0, "current_type": "AC"}]}), Some(&op)).await;
    assert_eq!(bad_conn.status, 422);
    assert!(bad_conn.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("connectors[0].standard"));
    let no_loc = app.post("/admin/charge-points", json!({"id": "CP-3", "location_id": 9999, "connectors": [{"connector_id": 1, "standard": "IEC_62196_T2", "power_kw": 11.0, "current_type": "AC"}]}), Some(&op)).await;
    assert_eq!(no_loc.status, 404);
    let bad_id = app.post("/admin/charge-points", json!({"id": "CP/../x", "location_id": site.location_id, "connectors": [{"connector_id": 1, "standard": "IEC_62196_T2", "power_kw": 11.0, "current_type": "AC"}]}), Some(&op)).await;
    assert_eq!(bad_id.status, 422);
    let list = app.get("/admin/locations", Some(&op)).await;
    assert_eq!(list.body["items"][0]["charge_points"][0]["id"], "CP-REG");
    assert!(
        list.body["items"][0]["charge_points"][0]
            .get("password")
            .is_none(),
        "the key is never shown again"
    );
}

#[actix_rt::test]
async fn operators_list_all_sessions_with_filters() {
    let app = spawn_app().await;
    let site = app.site("CP-LIST").await;
    let (anna, _) = app.driver("anna@example.se").await;
    card(&app, &anna, "01020304").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "01020304", 10, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    let active = app
        .get(
            "/admin/sessions?status=active&charge_point_id=CP-LIST",
            Some(&site.operator),
        )
        .await;
    assert_eq!(active.body["items"][0]["id"].as_i64(), Some(tx));
    let finished = app
        .get("/admin/sessions?status=finished", Some(&site.operator))
        .await;
    assert_eq!(finished.body["items"].as_array().unwrap().len(), 0);
    let bad = app
        .get("/admin/sessions?status=sleeping", Some(&site.operator))
        .await;
    assert_eq!(bad.status, 400);
    // Operators see any session; drivers only their own.
    assert_eq!(
        app.get(&format!("/sessions/{tx}"), Some(&site.operator))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn per_phase_energy_readings_are_kept_but_not_taken_for_the_total() {
    let app = spawn_app().await;
    let site = app.site("CP-PHASE").await;
    let (anna, _) = app.driver("anna@example.se").await;
    card(&app, &anna, "0A0B0C0D").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "0A0B0C0D", 30_000, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.call("MeterValues", json!({"connectorId": 1, "transactionId": tx, "meterValue": [{"timestamp": "2026-11-24T10:10:00Z", "sampledValue": [
        {"value": "33000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "11000", "measurand": "Energy.Active.Import.Register", "unit": "Wh", "phase": "L1"},
        {"value": "11000", "measurand": "Energy.Active.Import.Register", "unit": "Wh", "phase": "L2"},
        {"value": "11000", "measurand": "Energy.Active.Import.Register", "unit": "Wh", "phase": "L3"}
    ]}]})).await.ok();
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(s["energy_wh"], 3000, "the total register, not a phase");
    assert_eq!(s["flags"].as_array().unwrap().len(), 0, "{}", s["flags"]);
    let values = app
        .get(&format!("/sessions/{tx}/meter-values"), Some(&anna))
        .await
        .body;
    assert_eq!(
        values["items"].as_array().unwrap().len(),
        4,
        "phases are stored as sent"
    );
}

#[actix_rt::test]
async fn a_pending_start_left_behind_by_a_restart_does_not_block_the_driver() {
    let app = spawn_app().await;
    let site = app.site("CP-STALE").await;
    let (anna, _) = app.driver("anna@example.se").await;
    let user = app.get("/me", Some(&anna)).await.body["id"]
        .as_i64()
        .unwrap();
    // A pending session whose RemoteStart task died with the previous process.
    let old = laddkoll::http::time::now() - chrono::Duration::hours(1);
    let stale = app
        .state
        .db
        .run(move |conn| {
            Ok(laddkoll::charging::queries::insert_session(
                conn,
                laddkoll::charging::queries::NewSession {
                    user_id: Some(user),
                    charge_point_id: "CP-STALE",
                    connector_id: 1,
                    id_tag: "APPstale",
                    origin: laddkoll::charging::queries::SessionOrigin::App,
                    status: laddkoll::charging::queries::SessionStatus::Pending,
                    start_key: None,
                    started_at: None,
                    meter_start_wh: None,
                    created_at: old,
                    updated_at: old,
                },
            )?)
        })
        .await
        .unwrap();
    let mut c = app.charger(&site).await;
    c.status(1, "Available", "2026-11-24T10:00:00Z").await;
    let started = app
        .post(
            "/sessions",
            json!({"charge_point_id": "CP-STALE", "connector_id": 1}),
            Some(&anna),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let old_session = app
        .get(&format!("/sessions/{stale}"), Some(&anna))
        .await
        .body;
    assert_eq!(old_session["status"], "failed");
}

#[actix_rt::test]
async fn meter_values_resent_after_a_lost_answer_are_stored_once() {
    let app = spawn_app().await;
    let site = app.site("CP-RESEND").await;
    let (anna, _) = app.driver("anna@example.se").await;
    card(&app, &anna, "CAFEF00D").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "CAFEF00D", 1_000, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-24T10:10:00Z", "3000", "7000", "30")
        .await;
    assert_eq!(stored_values(&app, &anna, tx).await, 3);
    // The charger never saw the answer and sends the same message again.
    c.meter(1, Some(tx), "2026-11-24T10:10:00Z", "3000", "7000", "30")
        .await;
    assert_eq!(
        stored_values(&app, &anna, tx).await,
        3,
        "the resend is not stored twice"
    );
    // Same time, other readings: that is data, kept as sent.
    c.meter(1, Some(tx), "2026-11-24T10:10:00Z", "3000", "7100", "30")
        .await;
    assert_eq!(stored_values(&app, &anna, tx).await, 4);
    c.meter(1, Some(tx), "2026-11-24T10:20:00Z", "5000", "7000", "35")
        .await;
    assert_eq!(stored_values(&app, &anna, tx).await, 7);
    c.stop(tx, 5_500, "2026-11-24T10:30:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(s["energy_wh"], 4_500);
}

async fn stored_values(app: &common::TestApp, token: &str, tx: i64) -> usize {
    app.get(
        &format!("/sessions/{tx}/meter-values?limit=100"),
        Some(token),
    )
    .await
    .body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[actix_rt::test]
async fn operators_read_the_chargers_configuration_with_secrets_redacted() {
    let app = spawn_app().await;
    let site = app.site("CP-CONF").await;
    let mut c = app.charger(&site).await;
    let req = app
        .client
        .post(app.api("/admin/charge-points/CP-CONF/get-configuration"))
        .bearer_auth(&site.operator)
        .json(&json!({"keys": ["HeartbeatInterval", "AuthorizationKey", "NoSuchKey"]}))
        .send();
    let charger_side = async {
        let (id, action, payload) = c.server_call().await;
        assert_eq!(action, "GetConfiguration");
        assert_eq!(
            payload,
            json!({"key": ["HeartbeatInterval", "AuthorizationKey", "NoSuchKey"]})
        );
        c.respond(
            &id,
            json!({"configurationKey": [
                {"key": "HeartbeatInterval", "readonly": false, "value": "300"},
                {"key": "AuthorizationKey", "readonly": false, "value": "old-secret-key-value"}],
                "unknownKey": ["NoSuchKey"]}),
        )
        .await;
    };
    let (res, ()) = futures_util::join!(req, charger_side);
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let keys = &body["response"]["configurationKey"];
    assert_eq!(keys[0]["value"], "300");
    assert_eq!(keys[1]["value"], "[redacted]");
    assert_eq!(body["response"]["unknownKey"], json!(["NoSuchKey"]));
    let audit = audit_reasons(&app, &site.operator, "charger_command").await;
    assert!(
        audit.iter().all(|r| !r.contains("old-secret-key-value")),
        "{audit:?}"
    );
    // The key itself changes only through rotation, which keeps the database in step.
    let refused = app
        .post(
            "/admin/charge-points/CP-CONF/change-configuration",
            json!({"key": "AuthorizationKey", "value": "0123456789abcdef0123"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (422, "invalid_field"));
}

#[actix_rt::test]
async fn a_rotated_key_is_sent_to_the_charger_and_takes_effect_only_when_accepted() {
    let app = spawn_app().await;
    let site = app.site("CP-ROT").await;
    let mut c = app.charger(&site).await;
    let rotate = || {
        app.client
            .post(app.api("/admin/charge-points/CP-ROT/rotate-key"))
            .bearer_auth(&site.operator)
            .send()
    };

    // Refused by the charger: the old key stays in force and the connection stays up.
    let charger_side = async {
        let (id, action, payload) = c.server_call().await;
        assert_eq!(action, "ChangeConfiguration");
        assert_eq!(payload["key"], "AuthorizationKey");
        let value = payload["value"].as_str().unwrap();
        assert_eq!(value.len(), 40, "20 bytes as hex");
        assert!(value.chars().all(|ch| ch.is_ascii_hexdigit()));
        c.respond(&id, json!({"status": "Rejected"})).await;
    };
    let (res, ()) = futures_util::join!(rotate(), charger_side);
    let res = res.unwrap();
    assert_eq!(res.status(), 409);
    assert!(c.call("Heartbeat", json!({})).await.ok()["currentTime"].is_string());
    assert!(connect(&app.base, "CP-ROT", Some(&site.key), true)
        .await
        .is_ok());
    // That connection replaced `c`; boot a fresh one for the accepted rotation.
    let mut c = app.charger(&site).await;

    // Accepted: the new key is the one the charger got, the old connection is closed and
    // the old key no longer connects.
    let mut sent = String::new();
    let charger_side = async {
        let (id, _, payload) = c.server_call().await;
        sent = payload["value"].as_str().unwrap().to_string();
        c.respond(&id, json!({"status": "Accepted"})).await;
    };
    let (res, ()) = futures_util::join!(rotate(), charger_side);
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["password"], sent.as_str());
    assert_eq!(body["delivered"], "charger");
    assert!(c.is_closed().await, "the old-key connection is closed");
    assert_eq!(
        connect(&app.base, "CP-ROT", Some(&site.key), true)
            .await
            .err(),
        Some(401)
    );
    assert!(connect(&app.base, "CP-ROT", Some(&sent), true)
        .await
        .is_ok());

    // Offline, only a manual rotation is possible.
    let offline = app
        .post(
            "/admin/charge-points/CP-OFF/rotate-key",
            json!({}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(offline.status, 404);
}

#[actix_rt::test]
async fn a_command_whose_charger_disconnects_before_answering_fails_at_once_as_offline() {
    // A timeout far longer than the test: only the disconnect can end the call.
    let app = spawn_app_with(|c| c.ocpp_call_timeout = std::time::Duration::from_secs(600)).await;
    let site = app.site("CP-DROP").await;
    let mut c = app.charger(&site).await;
    let req = app
        .client
        .post(app.api("/admin/charge-points/CP-DROP/reset"))
        .bearer_auth(&site.operator)
        .json(&json!({"type": "Soft"}))
        .send();
    let charger_side = async move {
        let (_, action, _) = c.server_call().await;
        assert_eq!(action, "Reset");
        drop(c); // power cut before answering
    };
    let (res, ()) = futures_util::join!(req, charger_side);
    let res = res.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
}

#[actix_rt::test]
async fn status_changes_under_a_millisecond_apart_in_a_priced_session_do_not_lose_the_stop() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-SUBMS").await;
    let (driver, _) = app.driver("sub@example.se").await;
    card(&app, &driver, "TAG-001").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "tag-001", 1000, "2026-11-24T10:00:00Z").await;
    assert_eq!(
        tx["idTagInfo"]["status"], "Accepted",
        "idTags match case-insensitively"
    );
    let tx = tx["transactionId"].as_i64().unwrap();
    // The reproduction: Charging and SuspendedEV 0.5 ms apart, then the stop.
    c.status(1, "Charging", "2026-11-24T10:00:00.000200Z").await;
    c.status(1, "SuspendedEV", "2026-11-24T10:00:00.000700Z")
        .await;
    c.status(1, "Charging", "2026-11-24T10:00:00.000900Z").await;
    c.meter(1, Some(tx), "2026-11-24T10:30:00Z", "6000", "11000", "50")
        .await;
    // And without timestamps, as the simulator sends them: laddkoll's receive times.
    for status in ["SuspendedEV", "Charging", "SuspendedEV", "Charging"] {
        c.call(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": status}),
        )
        .await
        .ok();
    }
    let live = app.get(&format!("/sessions/{tx}"), Some(&driver)).await;
    assert_eq!(live.status, 200, "{}", live.body);
    let stop = c
        .call(
            "StopTransaction",
            json!({"transactionId": tx, "meterStop": 11000, "timestamp": "2026-11-24T11:00:00Z"}),
        )
        .await;
    assert!(
        stop.is_ok(),
        "the stop is answered, not an error: {:?}",
        stop
    );
    // Sent twice (a lost answer): answered again, stored once.
    let again = c
        .call(
            "StopTransaction",
            json!({"transactionId": tx, "meterStop": 11000, "timestamp": "2026-11-24T11:00:00Z"}),
        )
        .await;
    assert!(again.is_ok());
    let s = app
        .get(&format!("/sessions/{tx}"), Some(&driver))
        .await
        .body;
    assert_eq!(s["status"], "finished");
    assert_eq!(s["energy_wh"], 10000);
    assert_eq!(s["cost"]["state"], "priced", "{s}");
    // 10 kWh at 2 kr + 5 kr flat at least, excl. VAT, in öre.
    assert!(s["cost"]["excl_vat"].as_i64().unwrap() >= 2500, "{s}");
    let list = app.get("/sessions", Some(&driver)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[actix_rt::test]
async fn a_session_that_cannot_be_priced_is_stored_held_and_audited_never_an_error() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-HOLD").await;
    let (driver, _) = app.driver("hold@example.se").await;
    card(&app, &driver, "04A1B2C3D4").await;
    let mut c = app.charger(&site).await;
    // A start years in the past (a charger clock reset): longer than any real session.
    let tx = c.start(1, "04A1B2C3D4", 500, "2020-01-01T00:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    let live = app.get(&format!("/sessions/{tx}"), Some(&driver)).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["cost"]["state"], "unpriced");
    assert!(live.body["cost"]["hold_reason"]
        .as_str()
        .unwrap()
        .contains("implausible"));
    let list = app.get("/sessions", Some(&driver)).await;
    assert_eq!(list.status, 200, "session lists never answer 500");
    let stop = c
        .call(
            "StopTransaction",
            json!({"transactionId": tx, "meterStop": 1500, "timestamp": "2026-11-24T11:00:00Z"}),
        )
        .await;
    assert!(stop.is_ok(), "{stop:?}");
    let s = app
        .get(&format!("/sessions/{tx}"), Some(&driver))
        .await
        .body;
    assert_eq!(s["status"], "finished");
    assert_eq!(s["energy_wh"], 1000);
    assert_eq!(s["cost"]["state"], "held");
    assert!(s["cost"]["hold_reason"]
        .as_str()
        .unwrap()
        .starts_with("cannot be priced"));
    let held = audit_reasons(&app, &site.operator, "session_held").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].contains(&format!("session {tx}")));
}

#[actix_rt::test]
async fn operators_stop_start_and_force_close_sessions_and_stale_ones_block_nobody() {
    // Stale as soon as the charger is offline and silent.
    let app = spawn_app_with(|c| c.stale_session_after = std::time::Duration::ZERO).await;
    let site = app.site("CP-OPS").await;
    let other = app.site_with(&site.operator, "CP-OPS2").await;
    let (driver, _) = app.driver("ops@example.se").await;
    let driver_id = app.get("/me", Some(&driver)).await.body["id"]
        .as_i64()
        .unwrap();
    card(&app, &driver, "AA11BB22").await;
    card(&app, &driver, "AA11BB33").await;

    let mut c = app.charger(&site).await;
    let tx = c.start(1, "AA11BB22", 1000, "2026-11-24T08:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-24T08:40:00Z", "5000", "7000", "60")
        .await;
    // The charger dies and never reports the stop.
    drop(c);
    let mut stale = Value::Null;
    for _ in 0..100 {
        stale = app
            .get("/admin/sessions/stale", Some(&site.operator))
            .await
            .body;
        if stale.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stale[0]["id"], tx, "{stale}");

    // The stale session does not block the driver's other card elsewhere.
    let mut c2 = app.charger(&other).await;
    let tx2 = c2.start(1, "AA11BB33", 0, "2026-11-24T09:00:00Z").await;
    assert_eq!(tx2["idTagInfo"]["status"], "Accepted");
    let tx2 = tx2["transactionId"].as_i64().unwrap();

    // Force-close: billed to the last reading, flagged, audited.
    let bad = app
        .post(
            &format!("/admin/sessions/{tx}/force-close"),
            json!({"reason": ""}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(bad.status, 422);
    let closed = app
        .post(
            &format!("/admin/sessions/{tx}/force-close"),
            json!({"reason": "charger destroyed"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.body["status"], "finished");
    assert_eq!(closed.body["energy_wh"], 4000);
    assert_eq!(closed.body["stopped_at"], "2026-11-24T08:40:00Z");
    assert_eq!(closed.body["flags"][0]["flag"], "force_closed");
    let again = app
        .post(
            &format!("/admin/sessions/{tx}/force-close"),
            json!({"reason": "twice"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "session_not_active"));
    let audit = audit_reasons(&app, &site.operator, "session_force_closed").await;
    assert!(audit[0].contains("charger destroyed"), "{audit:?}");
    // The charger comes back with its queued stop: stored and logged, nothing changes.
    let mut c = app.charger(&site).await;
    assert!(c
        .call(
            "StopTransaction",
            json!({"transactionId": tx, "meterStop": 9000, "timestamp": "2026-11-24T09:30:00Z"}),
        )
        .await
        .is_ok());
    let late = audit_reasons(&app, &site.operator, "stop_after_force_close").await;
    assert_eq!(late.len(), 1);

    // Remote stop of any session by an operator.
    let req = app
        .client
        .post(app.api(&format!("/admin/sessions/{tx2}/stop")))
        .bearer_auth(&site.operator)
        .send();
    let charger_side = async {
        let (id, action, payload) = c2.server_call().await;
        assert_eq!(
            (action.as_str(), &payload),
            ("RemoteStopTransaction", &json!({"transactionId": tx2}))
        );
        c2.respond(&id, json!({"status": "Accepted"})).await;
    };
    let (res, ()) = futures_util::join!(req, charger_side);
    assert_eq!(res.unwrap().status(), 202);
    c2.stop(tx2, 3000, "2026-11-24T10:00:00Z").await;

    // Remote start for a driver by an operator: the charger gets the driver's app tag.
    let started = app.post(
        "/admin/charge-points/CP-OPS/remote-start",
        json!({"user_id": driver_id, "connector_id": 2}),
        Some(&site.operator),
    );
    let charger_side = async {
        let (id, action, payload) = c.server_call().await;
        assert_eq!(action, "RemoteStartTransaction");
        assert_eq!(payload["connectorId"], 2);
        c.respond(&id, json!({"status": "Accepted"})).await;
        payload["idTag"].as_str().unwrap().to_string()
    };
    let (started, tag) = futures_util::join!(started, charger_side);
    assert_eq!(started.status, 202, "{}", started.body);
    let pending = started.body["id"].as_i64().unwrap();
    let tx3 = c.start(2, &tag, 100, "2026-11-24T11:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    assert_eq!(tx3, pending);
    let s = app.wait_session(&driver, pending, "active").await;
    assert_eq!(s["charge_point_id"], "CP-OPS");
    let by_operator = audit_reasons(&app, &site.operator, "operator_remote_start").await;
    assert!(
        by_operator.iter().any(|r| r.starts_with("success")),
        "{by_operator:?}"
    );
    let drivers = app
        .get("/admin/charge-points/CP-OPS/remote-start", Some(&driver))
        .await;
    assert_eq!(drivers.status, 404, "GET is not a route");
    let denied = app
        .post(
            "/admin/charge-points/CP-OPS/remote-start",
            json!({"user_id": driver_id, "connector_id": 1}),
            Some(&driver),
        )
        .await;
    assert_eq!(denied.status, 403);
}

#[actix_rt::test]
async fn operators_list_their_fleet_with_boot_details_and_connector_errors() {
    let app = spawn_app().await;
    let site = app.site("CP-FLEET-A").await;
    let other = app.site_with(&site.operator, "CP-FLEET-B").await;
    let mut c = app.charger(&site).await;
    c.call(
        "StatusNotification",
        json!({"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted", "timestamp": "2026-11-24T10:00:00Z"}),
    )
    .await
    .ok();
    let all = app.get("/admin/charge-points", Some(&site.operator)).await;
    assert_eq!(all.status, 200);
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CP-FLEET-A", "CP-FLEET-B"]);
    let online = app
        .get("/admin/charge-points?state=online", Some(&site.operator))
        .await;
    let item = &online.body["items"][0];
    assert_eq!(online.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(item["id"], "CP-FLEET-A");
    assert_eq!(item["vendor"], "Laddkoll");
    assert_eq!(item["model"], "Test-22");
    assert!(item["last_seen_at"].is_string());
    assert_eq!(item["connectors"][1]["status"], "Faulted");
    assert_eq!(item["connectors"][1]["error_code"], "GroundFailure");
    let offline = app
        .get(
            &format!(
                "/admin/charge-points?state=offline&location_id={}",
                other.location_id
            ),
            Some(&site.operator),
        )
        .await;
    assert_eq!(offline.body["items"][0]["id"], "CP-FLEET-B");
    assert_eq!(offline.body["items"].as_array().unwrap().len(), 1);
    let page = app
        .get("/admin/charge-points?limit=1", Some(&site.operator))
        .await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_string();
    let next = app
        .get(
            &format!("/admin/charge-points?limit=1&cursor={cursor}"),
            Some(&site.operator),
        )
        .await;
    assert_eq!(next.body["items"][0]["id"], "CP-FLEET-B");
    let one = app
        .get("/admin/charge-points/CP-FLEET-B", Some(&site.operator))
        .await;
    assert_eq!(
        (one.status, one.body["online"].as_bool()),
        (200, Some(false))
    );
    let bad = app
        .get("/admin/charge-points?state=sleeping", Some(&site.operator))
        .await;
    assert_eq!(bad.status, 400);
    let missing = app
        .get("/admin/charge-points/NOPE", Some(&site.operator))
        .await;
    assert_eq!(missing.status, 404);
}

// Group commit (DESIGN §5): charger writes from all connections share one transaction per
// short window, each message answered only after its commit.

/// The connector states of a charger, from the database.
async fn connector_states(app: &TestApp, cp: &str) -> Vec<(i64, String)> {
    use diesel::prelude::*;
    use laddkoll::db::schema::connectors;
    let cp = cp.to_string();
    app.state
        .db
        .run(move |conn| {
            Ok(connectors::table
                .filter(connectors::charge_point_id.eq(cp))
                .order(connectors::connector_id)
                .select((connectors::connector_id, connectors::status))
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// The status events of a charger's connector, oldest first.
async fn status_events(app: &TestApp, cp: &str, connector: i64) -> Vec<String> {
    use diesel::prelude::*;
    use laddkoll::db::schema::status_events;
    let cp = cp.to_string();
    app.state
        .db
        .run(move |conn| {
            Ok(status_events::table
                .filter(status_events::charge_point_id.eq(cp))
                .filter(status_events::connector_id.eq(connector))
                .order(status_events::id)
                .select(status_events::status)
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn queued(app: &TestApp, n: usize) {
    while app.state.charger_writes.stats().queued() < n {
        tokio::task::yield_now().await;
    }
}

#[actix_rt::test]
async fn messages_of_several_chargers_share_one_commit_and_each_answer_is_already_stored() {
    let app = spawn_app().await;
    let first = app.site("GROUP-1").await;
    let mut sites = vec![first];
    for cp in ["GROUP-2", "GROUP-3"] {
        let operator = sites[0].operator.clone();
        sites.push(app.site_with(&operator, cp).await);
    }
    let mut chargers = Vec::new();
    for site in &sites {
        chargers.push(app.charger(site).await);
    }
    let writes = app.state.charger_writes.stats();
    let (batches, messages) = (writes.batches(), writes.messages());

    // The writer pauses; one StatusNotification from each charger queues up.
    let held = app.state.charger_writes.hold().await;
    for (i, c) in chargers.iter_mut().enumerate() {
        c.send_raw(
            &json!([2, "g1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
            "status": "Charging", "timestamp": "2026-05-04T10:00:00Z"}])
            .to_string(),
        )
        .await;
        queued(&app, i + 1).await;
    }
    drop(held);
    for c in &mut chargers {
        assert!(c.answer_to("g1").await.is_ok());
    }
    // One transaction per writer held all three (one writer on SQLite; on PostgreSQL the
    // chargers may be spread over several), and each answer came after the commit: it is stored.
    let mut writers: Vec<usize> = sites
        .iter()
        .map(|s| app.state.charger_writes.writer_of(&s.cp))
        .collect();
    writers.sort_unstable();
    writers.dedup();
    assert_eq!(writes.batches() - batches, writers.len() as u64);
    assert_eq!(writes.messages() - messages, 3);
    for site in &sites {
        assert_eq!(
            connector_states(&app, &site.cp).await[0],
            (1, "Charging".to_string())
        );
    }
}

#[actix_rt::test]
async fn one_chargers_messages_keep_their_order_even_when_sent_without_waiting() {
    let app = spawn_app().await;
    let site = app.site("ORDER-1").await;
    let mut c = app.charger(&site).await;
    let held = app.state.charger_writes.hold().await;
    // Two calls back to back with the same timestamp: only their order decides the outcome.
    for (id, status) in [
        ("o1", "Preparing"),
        ("o2", "Charging"),
        ("o3", "SuspendedEV"),
    ] {
        c.send_raw(
            &json!([2, id, "StatusNotification", {"connectorId": 2, "errorCode": "NoError",
            "status": status, "timestamp": "2026-05-04T10:00:00Z"}])
            .to_string(),
        )
        .await;
    }
    drop(held);
    for id in ["o1", "o2", "o3"] {
        assert!(c.answer_to(id).await.is_ok());
    }
    assert_eq!(
        status_events(&app, &site.cp, 2).await,
        ["Preparing", "Charging", "SuspendedEV"]
    );
    assert_eq!(
        connector_states(&app, &site.cp).await[1],
        (2, "SuspendedEV".to_string())
    );
}

#[actix_rt::test]
async fn a_status_notification_that_changes_nothing_is_answered_without_a_write() {
    let app = spawn_app().await;
    let site = app.site("SAME-1").await;
    let mut c = app.charger(&site).await;
    c.status(1, "Available", "2026-05-04T10:00:00Z").await;
    let writes = app.state.charger_writes.stats();
    let before = writes.messages();
    // The same status again, later: nothing changes, nothing is written.
    c.status(1, "Available", "2026-05-04T10:05:00Z").await;
    assert_eq!(writes.messages(), before);
    assert_eq!(status_events(&app, &site.cp, 1).await, ["Available"]);
    // A different status, or the same with an error code, is written.
    c.status(1, "Preparing", "2026-05-04T10:06:00Z").await;
    let fault = c
        .call(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "GroundFailure",
            "status": "Preparing", "timestamp": "2026-05-04T10:07:00Z"}),
        )
        .await;
    assert!(fault.is_ok());
    assert_eq!(writes.messages(), before + 2);
    assert_eq!(
        status_events(&app, &site.cp, 1).await,
        ["Available", "Preparing", "Preparing"]
    );
}

#[actix_rt::test]
async fn a_failing_message_is_rolled_back_alone_and_the_rest_of_its_batch_commits() {
    use diesel::prelude::*;
    use laddkoll::audit::{self, NewEvent};
    use laddkoll::db::schema::audit_events;
    use laddkoll::http::ApiError;
    let app = spawn_app().await;
    let writer = &app.state.charger_writes;
    let batches = writer.stats().batches();
    let held = writer.hold().await;
    let mut answers = Vec::new();
    for i in 0..3 {
        let state = app.state.clone();
        answers.push(actix_rt::spawn(async move {
            state
                .charger_writes
                // One charger's messages: the same writer, so one batch on any backend.
                .submit("CP-PROBE", move |conn| {
                    let t = laddkoll::http::time::now();
                    let event =
                        NewEvent::user(None, &format!("group_probe_{i}"), audit::SUCCESS, None, t);
                    audit::record(conn, &event)?;
                    if i == 1 {
                        // Its own write happened; the failure must undo it, and only it.
                        return Err(ApiError::Internal("probe failure".into()));
                    }
                    Ok(i)
                })
                .await
        }));
        queued(&app, i + 1).await;
    }
    drop(held);
    let mut results = Vec::new();
    for a in answers {
        results.push(a.await.unwrap());
    }
    assert_eq!(results[0].as_ref().ok(), Some(&0));
    assert!(results[1].is_err());
    assert_eq!(results[2].as_ref().ok(), Some(&2));
    assert_eq!(writer.stats().batches() - batches, 1);
    let stored: Vec<String> = app
        .state
        .db
        .run(|conn| {
            Ok(audit_events::table
                .filter(audit_events::action.like("group_probe_%"))
                .order(audit_events::action)
                .select(audit_events::action)
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(stored, ["group_probe_0", "group_probe_2"]);
}
