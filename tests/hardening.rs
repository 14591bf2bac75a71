//! Regression tests for the findings of the independent security review (issue 14) and for the
//! integrity holds that fit real chargers. Each test replays what the review sent and fails
//! without its fix.

mod common;

use common::{priced_site, spawn_app, spawn_app_with, TestApp, PASSWORD};
use serde_json::{json, Value};

/// Finding 1: any method name became a Prometheus label.
#[actix_rt::test]
async fn unknown_methods_are_refused_before_routing_and_metrics_labels_stay_bounded() {
    let app = spawn_app().await;
    let long = "X".repeat(4_000);
    for i in 0..30 {
        let method = reqwest::Method::from_bytes(format!("{long}{i}").as_bytes()).unwrap();
        let a = app.send(app.client.request(method, app.api("/me"))).await;
        assert_eq!((a.status, a.code()), (405, "method_not_allowed"));
    }
    let odd = reqwest::Method::from_bytes(b"PROPFIND").unwrap();
    let a = app
        .send(app.client.request(odd, app.base.clone() + "/healthz"))
        .await;
    assert_eq!(a.status, 405);
    let a = app
        .send(app.client.request(reqwest::Method::TRACE, app.api("/me")))
        .await;
    assert_eq!((a.status, a.code()), (405, "method_not_allowed"));
    assert!(a.headers["allow"].to_str().unwrap().contains("PATCH"));
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("XXXX") && !metrics.contains("PROPFIND"));
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
    assert!(metrics.len() < 20_000, "{} bytes of metrics", metrics.len());
    for line in metrics.lines().filter(|l| l.contains("method=")) {
        let method = line
            .split("method=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"].contains(&method),
            "{line}"
        );
    }
}

/// Finding 1: `/metrics` on its own address.
#[actix_rt::test]
async fn metrics_can_move_to_their_own_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = spawn_app_with(|c| c.metrics_bind = Some(addr)).await;
    let on_api = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404, "not on the API's address");
    let state = app.state.clone();
    let server = actix_web::HttpServer::new(move || laddkoll::app::metrics_app(state.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    actix_rt::spawn(server);
    let scraped = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped
        .text()
        .await
        .unwrap()
        .contains("laddkoll_http_requests_total"));
    let api = app
        .client
        .get(format!("http://{addr}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404, "the metrics address serves nothing else");
}

/// Finding 2: 40 parallel guesses were all checked and the right password still logged in.
#[actix_rt::test]
async fn parallel_guesses_never_check_more_than_the_threshold_and_the_lock_holds() {
    let app = spawn_app().await;
    let id = app.register("target@example.se").await;
    let guesses = (0..40).map(|i| {
        app.login(
            "target@example.se",
            if i == 39 {
                PASSWORD
            } else {
                "wrong password here"
            },
        )
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = app
        .audit_actions(id)
        .await
        .iter()
        .filter(|a| *a == "login_failed" || *a == "login_succeeded")
        .count();
    assert!(
        checked <= 5,
        "{checked} guesses were checked against the password (threshold 5)"
    );
    assert!(answers.iter().filter(|a| a.status == 401).count() >= 35);
    // The lock is in force: the right password does not get in, nor clear it.
    let a = app.login("target@example.se", PASSWORD).await;
    assert_eq!((a.status, a.code()), (401, "invalid_credentials"));
    assert!(app
        .audit_actions(id)
        .await
        .contains(&"account_locked".to_string()));
}

/// Finding 2: a locked account is answered as fast as any other (the dummy hash is verified).
#[actix_rt::test]
async fn a_sequential_lockout_still_locks_at_the_threshold_and_success_clears_it() {
    let app = spawn_app_with(|c| c.lockout_base = std::time::Duration::from_secs(1)).await;
    app.register("seq@example.se").await;
    for _ in 0..4 {
        assert_eq!(
            app.login("seq@example.se", "wrong password here")
                .await
                .status,
            401
        );
    }
    // Four failures: the fifth attempt is checked, and right.
    assert_eq!(app.login("seq@example.se", PASSWORD).await.status, 200);
    for _ in 0..5 {
        assert_eq!(
            app.login("seq@example.se", "wrong password here")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        app.login("seq@example.se", PASSWORD).await.status,
        401,
        "locked"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(
        app.login("seq@example.se", PASSWORD).await.status,
        200,
        "the lock ends"
    );
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<laddkoll::audit::Event> {
    let db = app.state.db.clone();
    let action = action.to_string();
    db.run(move |conn| {
        let filter = laddkoll::audit::EventFilter {
            action: Some(action),
            ..Default::default()
        };
        let page = laddkoll::http::pagination::PageQuery {
            limit: Some(100),
            cursor: None,
        }
        .validate()?;
        Ok(laddkoll::audit::list(conn, &filter, page)?)
    })
    .await
    .unwrap()
}

async fn upgrade(app: &TestApp, path_id: &str) -> (u16, Value) {
    let res = app
        .client
        .get(format!("{}/ocpp/{path_id}", app.base))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "ocpp1.6")
        .basic_auth("NOPE", Some("wrong"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Finding 3: every refused upgrade wrote an audit row holding the whole id, without a limit.
#[actix_rt::test]
async fn refused_upgrades_are_bounded_rate_limited_and_audited_short() {
    let app = spawn_app_with(|c| c.ocpp_refusals_per_minute = 5).await;
    let long = "A".repeat(5_000);
    let (status, body) = upgrade(&app, &long).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_charge_point_id");
    let rows = audit_rows(&app, "charger_connection_refused").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].actor.chars().count() < 80, "{}", rows[0].actor);
    assert_eq!(
        rows[0].charge_point_id.as_deref().map(|c| c.len()),
        Some(48)
    );

    for _ in 0..10 {
        let (status, _) = upgrade(&app, "UNKNOWN-CP").await;
        assert!(status == 401 || status == 429, "{status}");
    }
    let (status, body) = upgrade(&app, "UNKNOWN-CP").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(
        audit_rows(&app, "charger_connection_refused").await.len(),
        5,
        "refusals past the limit write nothing"
    );
    // A charger with its key still connects from the same address.
    let site = app.site("CP-AFTER-FLOOD").await;
    app.charger(&site).await;
}

/// Finding 4: CR, LF and ESC in the charge point id forged a log line.
#[test]
fn control_characters_in_logged_fields_cannot_forge_lines() {
    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = Capture::default();
    let writer = out.clone();
    let subscriber = laddkoll::logging::subscriber(
        tracing_subscriber::EnvFilter::new("info"),
        move || writer.clone(),
        false,
    );
    let forged = "SE-1\r\n2026-12-01T00:00:00Z  INFO laddkoll: operator logged in\u{1b}[2K\u{202e}";
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("HTTP request", http.target = %format!("/ocpp/{forged}"));
        let _in = span.enter();
        tracing::warn!(charge_point = %forged, reason = forged, "charger connection refused {forged}");
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches('\n').count(),
        1,
        "one event, one line: {text:?}"
    );
    assert!(!text.contains('\r') && !text.contains('\u{1b}') && !text.contains('\u{202e}'));
    assert!(text.contains(r"SE-1\r\n2026-12-01T00:00:00Z"), "{text}");
}

/// Finding 5: unblocking a user revived access tokens issued before the block.
#[actix_rt::test]
async fn unblocking_does_not_revive_tokens_issued_before_the_block() {
    let app = spawn_app().await;
    let operator = app.operator("ops@example.se").await;
    let (token, refresh) = app.driver("blocked@example.se").await;
    let id = app.get("/me", Some(&token)).await.body["id"]
        .as_i64()
        .unwrap();
    let block = app
        .post(
            &format!("/admin/users/{id}/block"),
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(block.status, 200);
    let unblock = app
        .post(
            &format!("/admin/users/{id}/unblock"),
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(unblock.status, 200);
    let me = app.get("/me", Some(&token)).await;
    assert_eq!((me.status, me.code()), (401, "invalid_token"));
    let refreshed = app
        .post("/auth/refresh", json!({"refresh_token": refresh}), None)
        .await;
    assert_eq!(refreshed.status, 401);
    // Signing in again works.
    assert_eq!(app.login("blocked@example.se", PASSWORD).await.status, 200);
}

/// Finding 7: `POST /auth/register` answered 409 `email_taken` without a limit.
#[actix_rt::test]
async fn registrations_are_rationed_per_address() {
    let app = spawn_app_with(|c| c.register_rate_per_hour = 3).await;
    app.register("taken@example.se").await;
    let probe = || {
        app.post(
            "/auth/register",
            json!({"email": "taken@example.se", "password": PASSWORD, "name": "Probe"}),
            None,
        )
    };
    assert_eq!(probe().await.code(), "email_taken");
    assert_eq!(probe().await.code(), "email_taken");
    let limited = probe().await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    assert!(limited.headers.contains_key("retry-after"));
}

/// Finding 8: eight spaces, `aaaaaaaa` and `Summer2024!` were accepted.
#[actix_rt::test]
async fn weak_passwords_are_refused_at_registration_and_change() {
    let app = spawn_app().await;
    for (email, weak) in [
        ("a@example.se", "        "),
        ("b@example.se", "aaaaaaaa"),
        ("c@example.se", "Summer2024!"),
        // Hard enough alone (score 3), but it is the email address's own words.
        ("anna.andersson@example.se", "anna.andersson"),
    ] {
        let a = app
            .post(
                "/auth/register",
                json!({"email": email, "password": weak, "name": "Anna"}),
                None,
            )
            .await;
        assert_eq!((a.status, a.code()), (422, "weak_password"), "{weak:?}");
    }
    let (token, _) = app.driver("strong@example.se").await;
    let a = app
        .post(
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": "Summer2024!"}),
            Some(&token),
        )
        .await;
    assert_eq!((a.status, a.code()), (422, "weak_password"));
}

/// Finding 9: a price of 1e18 was accepted, and the session lists answered 500 while a
/// session ran on it.
#[actix_rt::test]
async fn prices_are_bounded_and_money_never_answers_500() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-HUGE").await;
    let huge = |price: Value| {
        json!({"name": "Huge", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
            {"price_components": [{"type": "ENERGY", "price": price, "step_size": 1},
                {"type": "TIME", "price": price, "step_size": 1}, {"type": "FLAT", "price": price, "step_size": 1}]},
            {"price_components": [{"type": "PARKING_TIME", "price": price, "step_size": 1}]}]}})
    };
    let refused = app
        .post("/admin/tariffs", huge(json!(1e18)), Some(&site.operator))
        .await;
    assert_eq!((refused.status, refused.code()), (422, "invalid_tariff"));
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("price"));
    // The largest accepted price, on a session with the largest register a charger can send.
    let max = app
        .post(
            "/admin/tariffs",
            huge(json!(1_000_000)),
            Some(&site.operator),
        )
        .await;
    assert_eq!(max.status, 201, "{}", max.body);
    let set = app
        .send(
            app.client
                .put(app.api("/admin/charge-points/CP-HUGE/tariff"))
                .bearer_auth(&site.operator)
                .json(&json!({"tariff_id": max.body["id"]})),
        )
        .await;
    assert_eq!(set.status, 204);
    let (anna, _) = app.driver("anna@example.se").await;
    let card = app
        .post(
            "/me/rfid-cards",
            json!({"uid": "C0FFEE01", "label": "card"}),
            Some(&anna),
        )
        .await;
    assert_eq!(card.status, 201);
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "C0FFEE01", 1, "2026-11-01T00:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(
        1,
        Some(tx),
        "2026-11-02T00:00:00Z",
        &i32::MAX.to_string(),
        "22000",
        "50",
    )
    .await;
    for path in ["/sessions", &format!("/sessions/{tx}")] {
        let a = app.get(path, Some(&anna)).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }
    let ops = app.get("/admin/sessions", Some(&site.operator)).await;
    assert_eq!(ops.status, 200, "{}", ops.body);
    c.stop(tx, i64::from(i32::MAX), "2026-11-03T00:00:00Z")
        .await;
    let done = app.get(&format!("/sessions/{tx}"), Some(&anna)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body["cost"]["total"].as_i64().unwrap() > 0);
}

/// Finding 10: bidi controls and look-alike letters were accepted in emails and names.
#[actix_rt::test]
async fn bidi_controls_and_look_alikes_are_refused_in_emails_and_names() {
    let app = spawn_app().await;
    let register = |email: &str, name: &str| {
        app.post(
            "/auth/register",
            json!({"email": email, "password": PASSWORD, "name": name}),
            None,
        )
    };
    for (email, name, code) in [
        ("\u{0430}nna@example.se", "Anna", "invalid_email"),
        ("anna@ex\u{0430}mple.se", "Anna", "invalid_email"),
        ("anna\u{202e}@example.se", "Anna", "invalid_email"),
        ("anna@example.se", "Anna \u{202e}nosrednA", "invalid_name"),
        ("anna@example.se", "\u{0410}nna Andersson", "invalid_name"),
        ("anna@example.se", "An\u{200b}na", "invalid_name"),
    ] {
        let a = register(email, name).await;
        assert_eq!((a.status, a.code()), (422, code), "{email:?} {name:?}");
    }
    for (i, name) in ["Åsa Öberg", "Анна Петрова", "李小龍", "O'Brien-Smith"]
        .iter()
        .enumerate()
    {
        let a = register(&format!("ok{i}@example.se"), name).await;
        assert_eq!(a.status, 201, "{name}: {}", a.body);
    }
    let (token, _) = app.driver("patch@example.se").await;
    let a = app
        .send(
            app.client
                .patch(app.api("/me"))
                .bearer_auth(&token)
                .json(&json!({"name": "P\u{0430}tch"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (422, "invalid_name"));
}

/// Finding 11: authenticated JSON had neither `Cache-Control: no-store` nor `nosniff`.
#[actix_rt::test]
async fn authenticated_answers_are_not_cached_nor_sniffed() {
    let app = spawn_app().await;
    let (token, _) = app.driver("cache@example.se").await;
    let me = app.get("/me", Some(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.headers["cache-control"], "no-store");
    assert_eq!(me.headers["x-content-type-options"], "nosniff");
    let login = app.login("cache@example.se", PASSWORD).await;
    assert_eq!(
        login.headers["cache-control"], "no-store",
        "tokens are never cached"
    );
    let missing = app.get("/invoices/999999/pdf", Some(&token)).await;
    assert_eq!(missing.headers["cache-control"], "no-store");
}

/// Finding 12: cookie-mode logout worked without the CSRF header.
#[actix_rt::test]
async fn cookie_logout_needs_the_csrf_token() {
    let app = spawn_app().await;
    app.register("portal@example.se").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let login: Value = browser
        .post(app.api("/auth/login?mode=cookie"))
        .json(&json!({"email": "portal@example.se", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_string();
    for forged in [None, Some("forged")] {
        let mut req = browser.post(app.api("/auth/logout"));
        if let Some(f) = forged {
            req = req.header("x-csrf-token", f);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "logout with CSRF header {forged:?}");
        assert!(res.headers().get("set-cookie").is_none(), "cookies kept");
    }
    // Still signed in: the refresh family was not revoked.
    let refreshed = browser
        .post(app.api("/auth/refresh"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let out = browser
        .post(app.api("/auth/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
}

async fn card_driver(app: &TestApp, email: &str, uid: &str) -> String {
    let (token, _) = app.driver(email).await;
    let a = app
        .post(
            "/me/rfid-cards",
            json!({"uid": uid, "label": "card"}),
            Some(&token),
        )
        .await;
    assert_eq!(a.status, 201);
    token
}

fn flags(session: &Value) -> Vec<String> {
    session["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flag"].as_str().unwrap().to_string())
        .collect()
}

/// Finding 13: a transaction on a connector that does not exist was priced without a flag.
#[actix_rt::test]
async fn a_transaction_on_an_unknown_connector_is_flagged_and_held() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-CONN").await;
    let anna = card_driver(&app, "anna@example.se", "D1D1D1D1").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(7, "D1D1D1D1", 1000, "2026-11-05T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(tx, 5000, "2026-11-05T10:00:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert!(flags(&s).contains(&"unknown_connector".to_string()), "{s}");
    assert_eq!(s["cost"]["state"], "held");
    assert!(s["cost"]["hold_reason"]
        .as_str()
        .unwrap()
        .contains("unknown_connector"));
}

/// Zero `meterStart`: a per-transaction register (0, then readings a 22 kW connector can
/// deliver) is billed as sent, without a flag and without operator work.
#[actix_rt::test]
async fn a_per_transaction_register_starting_at_zero_is_billed_normally() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-ZERO").await;
    let anna = card_driver(&app, "anna@example.se", "E1E1E1E1").await;
    let mut c = app.charger(&site).await;
    // Two sessions in a row, each from 0: the second starts below the first's stop.
    for day in [6, 7] {
        let at = |h: u32, m: u32| format!("2026-11-{day:02}T{h:02}:{m:02}:00Z");
        c.status(1, "Charging", &at(9, 0)).await;
        let tx = c.start(1, "E1E1E1E1", 0, &at(9, 0)).await["transactionId"]
            .as_i64()
            .unwrap();
        c.meter(1, Some(tx), &at(9, 0), "0", "11000", "20").await;
        c.meter(1, Some(tx), &at(9, 30), "5500", "11000", "50")
            .await;
        c.meter(1, Some(tx), &at(10, 0), "11000", "11000", "80")
            .await;
        c.stop(tx, 11_000, &at(10, 0)).await;
        c.status(1, "Available", &at(10, 1)).await;
        let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
        assert!(flags(&s).is_empty(), "{s}");
        assert_eq!(s["cost"]["state"], "priced", "{s}");
        assert_eq!(s["energy_wh"], 11_000);
        assert_eq!(s["meter_start_wh"], 0);
    }
}

/// Zero `meterStart` with an absolute register: the first reading (910 kWh a minute after the
/// start) is far above what the connector could deliver, so the baseline is corrected to it,
/// flagged with the reason, and the session is billed for what was charged — not 910 kWh.
#[actix_rt::test]
async fn a_zero_start_on_an_absolute_register_is_corrected_to_the_first_reading() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-ABS").await;
    let anna = card_driver(&app, "anna@example.se", "F1F1F1F1").await;
    let mut c = app.charger(&site).await;
    c.status(1, "Charging", "2026-11-08T09:00:00Z").await;
    let tx = c.start(1, "F1F1F1F1", 0, "2026-11-08T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-08T09:01:00Z", "910000", "11000", "20")
        .await;
    c.meter(1, Some(tx), "2026-11-08T09:31:00Z", "915500", "11000", "50")
        .await;
    c.stop(tx, 921_000, "2026-11-08T10:01:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(flags(&s), vec!["zero_start_corrected".to_string()], "{s}");
    let detail = s["flags"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("910000 Wh") && detail.contains("22 kW"),
        "{detail}"
    );
    assert_eq!(s["meter_start_wh"], 910_000);
    assert_eq!(s["energy_wh"], 11_000);
    // Annotated, not held: 11 kWh × 2,00 + 61 min × 6,00 kr/h + 5,00 = 33,10 kr excl. VAT.
    assert_eq!(s["cost"]["state"], "priced", "{s}");
    assert_eq!(s["cost"]["excl_vat"], 3310);
}

/// Zero `meterStart`, no reading, and a stop register no connector could reach in the time:
/// nothing to take a baseline from, so the session is held with the reason.
#[actix_rt::test]
async fn a_zero_start_without_readings_and_an_implausible_stop_is_held() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-NOREAD").await;
    let anna = card_driver(&app, "anna@example.se", "A2A2A2A2").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "A2A2A2A2", 0, "2026-11-09T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(tx, 910_000, "2026-11-09T10:00:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert!(
        flags(&s).contains(&"zero_start_baseline".to_string()),
        "{s}"
    );
    assert_eq!(s["cost"]["state"], "held");
    // And a plausible zero start without readings is billed.
    let tx = c.start(1, "A2A2A2A2", 0, "2026-11-10T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(tx, 20_000, "2026-11-10T10:00:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert!(flags(&s).is_empty(), "{s}");
    assert_eq!(s["cost"]["state"], "priced");
}

/// A gap between readings only annotates: the energy is the register difference.
#[actix_rt::test]
async fn a_meter_gap_annotates_without_holding() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-GAP").await;
    let anna = card_driver(&app, "anna@example.se", "B3B3B3B3").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "B3B3B3B3", 1000, "2026-11-11T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-11T09:05:00Z", "2000", "11000", "20")
        .await;
    c.meter(1, Some(tx), "2026-11-11T10:05:00Z", "12000", "11000", "80")
        .await;
    c.stop(tx, 12_000, "2026-11-11T10:10:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(flags(&s), vec!["meter_gap".to_string()]);
    assert_eq!(s["cost"]["state"], "priced");
}
