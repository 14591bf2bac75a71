//! The web portal's HTML routes through the real app, without a browser: sign-in and sign-out
//! in cookie mode, CSRF refusal, escaping, cache and CSP headers, Swedish money format. The
//! browser run (headless Chromium, axe-core, screenshots) is `tests/portal/run.sh`.

mod common;

use common::{spawn_app, TestApp, PASSWORD};
use serde_json::json;

/// A browser-like client: a cookie jar and no redirects followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first hidden input named `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn page(client: &reqwest::Client, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

/// Registers a driver through the API and signs in through the portal's form.
async fn signed_in_driver(app: &TestApp, email: &str) -> reqwest::Client {
    app.register(email).await;
    sign_in(app, email).await
}

/// Signs in through the portal's form (landing on the history page).
async fn sign_in(app: &TestApp, email: &str) -> reqwest::Client {
    let client = browser();
    let (_, _, login) = page(&client, &format!("{}/login", app.base)).await;
    let res = client
        .post(format!("{}/login", app.base))
        .form(&[
            ("form_token", hidden(&login, "form_token").as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("next", "/history"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert_eq!(res.headers()["location"], "/history");
    let cookies: Vec<_> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let access = cookies
        .iter()
        .find(|c| c.starts_with("laddkoll_access="))
        .expect("access cookie");
    assert!(
        access.contains("HttpOnly") && access.contains("SameSite=Strict"),
        "{access}"
    );
    client
}

#[actix_rt::test]
async fn a_driver_signs_in_and_out_through_the_portal() {
    let app = spawn_app().await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    let (status, _, home) = page(&client, &format!("{}/", app.base)).await;
    assert_eq!(status, 200);
    assert!(home.contains("action=\"/logout\""), "{home}");
    let res = client
        .post(format!("{}/logout", app.base))
        .form(&[("csrf", hidden(&home, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/login?done=signed_out");
    let (status, headers, _) = page(&client, &format!("{}/", app.base)).await;
    assert_eq!(status, 303, "signed out: the home page asks to sign in");
    assert_eq!(headers["location"], "/login?next=/");
    let actions = app.audit_actions(1).await;
    assert!(actions.contains(&"logout".to_string()), "{actions:?}");
}

#[actix_rt::test]
async fn a_wrong_password_shows_the_form_again_with_the_reason() {
    let app = spawn_app().await;
    app.register("anna@example.se").await;
    let client = browser();
    let (_, _, login) = page(&client, &format!("{}/login", app.base)).await;
    let res = client
        .post(format!("{}/login", app.base))
        .header("accept-language", "sv-SE,sv;q=0.9")
        .form(&[
            ("form_token", hidden(&login, "form_token").as_str()),
            ("email", "anna@example.se"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let body = res.text().await.unwrap();
    assert!(body.contains("Fel e-post eller lösenord."), "{body}");
    assert!(
        body.contains("value=\"anna@example.se\""),
        "the email is kept"
    );
}

#[actix_rt::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = spawn_app().await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    for csrf in ["", "forged"] {
        let res = client
            .post(format!("{}/cards", app.base))
            .form(&[("csrf", csrf), ("uid", "04A1B2C3"), ("label", "Work")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 403);
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("data-code=\"csrf_failed\""));
    }
    let (_, _, cards) = page(&client, &format!("{}/cards", app.base)).await;
    assert!(!cards.contains("04A1B2C3"), "no card was added");
    // Before sign-in the login form needs its form token too.
    let res = browser()
        .post(format!("{}/login", app.base))
        .form(&[
            ("form_token", "x"),
            ("email", "anna@example.se"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // With the token the same form works.
    let res = client
        .post(format!("{}/cards", app.base))
        .form(&[
            ("csrf", hidden(&cards, "csrf").as_str()),
            ("uid", "04A1B2C3"),
            ("label", "Work"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let (_, _, cards) = page(&client, &format!("{}/cards", app.base)).await;
    assert!(cards.contains("04A1B2C3"), "{cards}");
}

#[actix_rt::test]
async fn what_users_typed_is_escaped_on_every_page() {
    let app = spawn_app().await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    let token = app.login("anna@example.se", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let added = app
        .post(
            "/me/rfid-cards",
            json!({"uid": "AABBCCDD", "label": "<script>alert(1)</script>\"'"}),
            Some(&token),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let (_, _, cards) = page(&client, &format!("{}/cards", app.base)).await;
    assert!(!cards.contains("<script>alert(1)"), "{cards}");
    assert!(
        cards.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;"),
        "{cards}"
    );
}

#[actix_rt::test]
async fn personal_pages_are_not_cached_and_carry_a_csp_without_inline_script() {
    let app = spawn_app().await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    for path in [
        "/",
        "/history",
        "/invoices",
        "/cards",
        "/preferences",
        "/recommendations",
        "/activity",
        "/account",
        "/locations",
    ] {
        let (status, headers, body) = page(&client, &format!("{}{path}", app.base)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(
            !body.contains("<script>") && !body.contains(" style="),
            "{path}: inline script or style"
        );
    }
    let (status, headers, _) = page(&client, &format!("{}/assets/portal.css", app.base)).await;
    assert_eq!(status, 200);
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));
}

#[actix_rt::test]
async fn the_qr_link_sends_a_signed_out_driver_to_sign_in_and_back() {
    let app = spawn_app().await;
    let (status, headers, _) = page(&browser(), &format!("{}/c/CP-QR/1", app.base)).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/login?next=/c/CP-QR/1");
}

#[actix_rt::test]
async fn operator_pages_refuse_drivers() {
    let app = spawn_app().await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    let (status, _, body) = page(&client, &format!("{}/operator/held", app.base)).await;
    assert_eq!(status, 403);
    assert!(body.contains("operator_only"));
}

#[actix_rt::test]
async fn costs_read_in_the_visitors_language_with_swedish_money_format() {
    let app = spawn_app().await;
    let site = app.site("CP-PORTAL").await;
    let tariff = app
        .post(
            "/admin/tariffs",
            json!({"name": "Energi", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
                {"price_components": [{"type": "ENERGY", "price": 2.00, "step_size": 1}]}]}}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(tariff.status, 201, "{}", tariff.body);
    let set = app
        .send(
            app.client
                .put(app.api("/admin/charge-points/CP-PORTAL/tariff"))
                .bearer_auth(&site.operator)
                .json(&json!({"tariff_id": tariff.body["id"]})),
        )
        .await;
    assert!(set.status < 300, "{}", set.body);
    let client = signed_in_driver(&app, "anna@example.se").await;
    let token = app.login("anna@example.se", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let card = app
        .post(
            "/me/rfid-cards",
            json!({"uid": "AABBCCDD", "label": "Car"}),
            Some(&token),
        )
        .await;
    assert_eq!(card.status, 201);
    let mut c = app.charger(&site).await;
    c.status(1, "Charging", "2026-11-24T10:00:00Z").await;
    let tx = c.start(1, "AABBCCDD", 12_000, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-24T10:30:00Z", "17000", "11000", "50")
        .await;
    c.stop(tx, 22_000, "2026-11-24T11:00:00Z").await;
    // 10 kWh at 2,00 kr + 25 % VAT.
    let sv = client
        .get(format!("{}/history", app.base))
        .header("accept-language", "sv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sv.contains("25,00\u{a0}kr"), "{sv}");
    assert!(sv.contains("10,00\u{a0}kWh"), "{sv}");
    assert!(sv.contains("<html lang=\"sv\">"));
    let en = client
        .get(format!("{}/history", app.base))
        .header("accept-language", "en-GB")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("SEK\u{a0}25.00"), "{en}");
    // The switch wins over Accept-Language.
    let res = client
        .get(format!("{}/lang/sv?back=/history", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/history");
    let switched = client
        .get(format!("{}/history", app.base))
        .header("accept-language", "en-GB")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(switched.contains("25,00\u{a0}kr"));
    let (status, headers, csv) = page(&client, &format!("{}/history.csv", app.base)).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().starts_with(&format!("{tx},")),
        "{csv}"
    );
}

#[actix_rt::test]
async fn an_expired_sign_in_is_renewed_through_the_api_refresh() {
    let app = spawn_app().await;
    app.register("anna@example.se").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (_, _, login) = page(&client, &format!("{}/login", app.base)).await;
    let res = client
        .post(format!("{}/login", app.base))
        .form(&[
            ("form_token", hidden(&login, "form_token").as_str()),
            ("email", "anna@example.se"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let csrf = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find_map(|c| c.strip_prefix("laddkoll_csrf="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("csrf cookie");
    // The access token is no longer good (as after its 15 minutes).
    let url: reqwest::Url = app.base.parse().unwrap();
    jar.add_cookie_str("laddkoll_access=expired; Path=/", &url);
    let (status, _, body) = page(&client, &format!("{}/history?cursor=5", app.base)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("data-refresh=\"/api/v1/auth/refresh\""),
        "{body}"
    );
    assert!(
        body.contains("data-next=\"&#x2f;history?cursor=5\""),
        "{body}"
    );
    // What the page's script does: the API's cookie-mode refresh with the CSRF header.
    let renewed = client
        .post(app.api("/auth/refresh"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status().as_u16(), 200);
    let (status, _, _) = page(&client, &format!("{}/history", app.base)).await;
    assert_eq!(status, 200, "signed in again");
}

#[actix_rt::test]
async fn starting_at_an_offline_charger_says_so_in_the_visitors_language() {
    let app = spawn_app().await;
    app.site("CP-OFF").await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    let (status, _, start) = page(&client, &format!("{}/c/CP-OFF/1", app.base)).await;
    assert_eq!(status, 200, "{start}");
    assert!(
        start.contains("Offline"),
        "the start page shows the charger offline"
    );
    let res = client
        .post(format!("{}/start", app.base))
        .header("accept-language", "sv")
        .form(&[
            ("csrf", hidden(&start, "csrf").as_str()),
            ("charge_point_id", "CP-OFF"),
            ("connector_id", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body = res.text().await.unwrap();
    assert!(body.contains("Laddaren är frånkopplad"), "{body}");
    assert!(
        body.contains("href=\"&#x2f;c&#x2f;CP-OFF&#x2f;1\""),
        "a way back: {body}"
    );
    let (status, _, missing) = page(&client, &format!("{}/c/NO-SUCH/1", app.base)).await;
    assert_eq!(status, 404);
    assert!(missing.contains("Not found."));
}

/// The browser run needs Chromium, chromedriver, Python and npm; CI runs it through
/// `.ci/run`. Here it runs only when asked, so `cargo test` stays fast and browser-free.
#[test]
fn the_portal_in_a_real_browser() {
    if std::env::var_os("PORTAL_BROWSER_TESTS").is_none() {
        eprintln!(
            "skipped: the browser tests run with `bash tests/portal/run.sh` (headless Chromium, \
             CI runs it); set PORTAL_BROWSER_TESTS=1 to run them from cargo test"
        );
        return;
    }
    let status = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/portal/run.sh"))
        .status()
        .expect("run tests/portal/run.sh");
    assert!(status.success(), "tests/portal/run.sh failed");
}

#[actix_rt::test]
async fn an_operator_releases_a_held_session_and_the_next_run_invoices_it() {
    let app = spawn_app().await;
    let site = app.site("CP-HOLD").await;
    let tariff = app
        .post(
            "/admin/tariffs",
            json!({"name": "Energi", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
                {"price_components": [{"type": "ENERGY", "price": 2.00, "step_size": 1}]}]}}),
            Some(&site.operator),
        )
        .await;
    let set = app
        .send(
            app.client
                .put(app.api("/admin/charge-points/CP-HOLD/tariff"))
                .bearer_auth(&site.operator)
                .json(&json!({"tariff_id": tariff.body["id"]})),
        )
        .await;
    assert!(set.status < 300, "{}", set.body);
    let driver = signed_in_driver(&app, "anna@example.se").await;
    let token = app.login("anna@example.se", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/me/rfid-cards",
        json!({"uid": "AABBCCDD", "label": "Car"}),
        Some(&token),
    )
    .await;
    let mut c = app.charger(&site).await;
    let first = c.start(1, "AABBCCDD", 12_000, "2026-11-24T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(first, 22_000, "2026-11-24T11:00:00Z").await;
    // The next session's meter starts below the last stop: flagged and held for review.
    let held = c.start(1, "AABBCCDD", 1_000, "2026-11-25T10:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(held, 6_000, "2026-11-25T11:00:00Z").await;

    let ops = sign_in(&app, "ops-cp-hold@example.se").await;
    let (status, _, page_html) = page(&ops, &format!("{}/operator/held", app.base)).await;
    assert_eq!(status, 200, "{page_html}");
    assert!(
        page_html.contains(&format!("data-held=\"{held}\"")),
        "{page_html}"
    );
    assert!(
        page_html.contains("implausible_start_baseline"),
        "the reason is shown"
    );
    assert!(!page_html.contains(&format!("data-held=\"{first}\"")));
    let csrf = hidden(&page_html, "csrf");
    let run = |ops: reqwest::Client, csrf: String, base: String| async move {
        let res = ops
            .post(format!("{base}/operator/invoices"))
            .form(&[("csrf", csrf.as_str()), ("period", "2026-11")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.text().await.unwrap()
    };
    let report = run(ops.clone(), csrf.clone(), app.base.clone()).await;
    assert!(report.contains("data-report=\"2026-11\""), "{report}");
    let res = ops
        .post(format!("{}/operator/held/{held}/release", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let (_, _, after) = page(&ops, &format!("{}/operator/held", app.base)).await;
    assert!(
        !after.contains(&format!("data-held=\"{held}\"")),
        "released"
    );
    run(ops.clone(), csrf.clone(), app.base.clone()).await;
    // The driver finds both sessions on invoices now, the released one on the second.
    let (_, _, invoices) = page(&driver, &format!("{}/invoices", app.base)).await;
    assert_eq!(invoices.matches("data-invoice=").count(), 2, "{invoices}");
    assert!(
        invoices.contains(&format!("data-line-session=\"{held}\"")),
        "{invoices}"
    );
    let pdf = driver
        .get(format!("{}/invoices/1/pdf", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
}

#[actix_rt::test]
async fn the_session_page_follows_an_unlock_from_pending_to_refused_with_the_reason() {
    let app = spawn_app().await;
    let site = app.site("CP-UNLOCK").await;
    let mut c = app.charger(&site).await;
    let client = signed_in_driver(&app, "anna@example.se").await;
    let (_, _, start) = page(&client, &format!("{}/c/CP-UNLOCK/1", app.base)).await;
    let res = client
        .post(format!("{}/start", app.base))
        .form(&[
            ("csrf", hidden(&start, "csrf").as_str()),
            ("charge_point_id", "CP-UNLOCK"),
            ("connector_id", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let session = res.headers()["location"].to_str().unwrap().to_string();
    assert!(session.starts_with("/sessions/"), "{session}");
    let (_, _, pending) = page(&client, &format!("{}{session}", app.base)).await;
    assert!(pending.contains("data-status=\"pending\""), "{pending}");
    assert!(
        pending.contains("Waiting for the charger to start"),
        "{pending}"
    );
    let (_, _, live) = page(&client, &format!("{}{session}/live", app.base)).await;
    assert!(live.contains("\"status\":\"pending\""), "{live}");

    let (id, action, _) = c.server_call().await;
    assert_eq!(action, "RemoteStartTransaction");
    c.respond(&id, json!({"status": "Rejected"})).await;
    let mut failed = String::new();
    for _ in 0..200 {
        let (_, _, body) = page(&client, &format!("{}{session}", app.base)).await;
        if body.contains("data-status=\"failed\"") {
            failed = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        failed.contains("Could not start: the charger refused to start"),
        "{failed}"
    );
}
