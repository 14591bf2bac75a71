//! Billing through the real app: tariffs, sessions priced live and final from a real OCPP
//! charger, held sessions, invoice runs (idempotent, gap-free numbering under concurrency),
//! credit notes and the invoice PDF (DESIGN §6).

mod common;

use common::{priced_site, spawn_app, tariff_body, TestApp};
use serde_json::{json, Value};

async fn driver_with_card(app: &TestApp, email: &str, uid: &str) -> String {
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

/// Runs a session from register `base`: 10 kWh over 60 min charging, then 20 min idle.
async fn charge(c: &mut common::charger::Charger, uid: &str, day: u32, base: i64) -> i64 {
    let at = |h: u32, m: u32| format!("2026-11-{day:02}T{h:02}:{m:02}:00Z");
    c.status(1, "Charging", &at(9, 0)).await;
    let tx = c.start(1, uid, base, &at(9, 0)).await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(
        1,
        Some(tx),
        &at(9, 30),
        &(base + 5000).to_string(),
        "10000",
        "50",
    )
    .await;
    c.meter(
        1,
        Some(tx),
        &at(10, 0),
        &(base + 10_000).to_string(),
        "10000",
        "80",
    )
    .await;
    c.status(1, "SuspendedEV", &at(10, 0)).await;
    c.stop(tx, base + 10_000, &at(10, 20)).await;
    c.status(1, "Available", &at(10, 21)).await;
    tx
}

fn invoice_cli(app: &TestApp, period: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_laddkoll"))
        .args(["invoice", "--period", period])
        .env("DATABASE_URL", &app.db.url)
        .env("LADDKOLL_JWT_SECRET", "x".repeat(40))
        .env("LADDKOLL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text shown by the PDF's content streams: the string operands of `Tj` — literal
/// strings (balanced or escaped parentheses) and hex strings — decoded from WinAnsi (Latin-1
/// for the letters used here).
fn pdf_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let (text, end) = match bytes[i] {
            b'(' => {
                let (mut text, mut depth, mut j) = (Vec::new(), 1, i + 1);
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' => {
                            j += 1;
                            text.push(bytes[j]);
                        }
                        b'(' => {
                            depth += 1;
                            text.push(b'(');
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(b')');
                        }
                        b => text.push(b),
                    }
                    j += 1;
                }
                (text, j)
            }
            b'<' if bytes.get(i + 1) != Some(&b'<') => {
                let end = i + bytes[i..].iter().position(|&b| b == b'>').unwrap();
                let hex = std::str::from_utf8(&bytes[i + 1..end]).unwrap_or("");
                let text = (0..hex.len() / 2)
                    .filter_map(|k| u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).ok())
                    .collect();
                (text, end)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if bytes[end + 1..].starts_with(b" Tj") {
            out.extend(text.iter().map(|&b| b as char));
            out.push('\n');
        }
        i = end + 1;
    }
    out
}

/// Compares an invoice with a committed golden file, ignoring what differs per run (issue
/// time, ids). `UPDATE_GOLDEN=1` rewrites the file.
fn assert_golden(name: &str, invoice: &Value) {
    let mut v = invoice.clone();
    v["issued_at"] = json!("<issued_at>");
    v["id"] = json!("<id>");
    v["buyer"]["user_id"] = json!("<user_id>");
    for line in v["lines"].as_array_mut().unwrap() {
        line["session_id"] = json!("<session_id>");
        let d = line["description"].as_str().unwrap().to_string();
        line["description"] = json!(d.split(" (session").next().unwrap());
    }
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        text, golden,
        "{path} differs; rerun with UPDATE_GOLDEN=1 if the change is intended"
    );
}

#[actix_rt::test]
async fn invalid_tariffs_get_422_naming_the_field_and_locations_show_the_tariff() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-T").await;
    let mut bad = tariff_body();
    bad["tariff"]["elements"][0]["price_components"][0]["step_size"] = json!(-1);
    let a = app.post("/admin/tariffs", bad, Some(&site.operator)).await;
    assert_eq!((a.status, a.code()), (422, "invalid_tariff"));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("elements[0].price_components[0].step_size"),
        "{}",
        a.body
    );
    let mut bad = tariff_body();
    bad["vat_rate"] = json!(250);
    assert_eq!(
        app.post("/admin/tariffs", bad, Some(&site.operator))
            .await
            .status,
        422
    );

    let (driver, _) = app.driver("d@example.se").await;
    let loc = app
        .get(&format!("/locations/{}", site.location_id), Some(&driver))
        .await;
    let tariff = &loc.body["charge_points"][0]["tariff"];
    assert_eq!(tariff["name"], "Standard");
    let text = tariff["summary"]["text"].as_str().unwrap();
    // 2,00 kr/kWh excl. VAT is 2,50 kr/kWh incl. 25 % VAT.
    assert!(
        text.contains("2,50 kr/kWh") && text.contains("25 % moms"),
        "{text}"
    );
}

#[actix_rt::test]
async fn a_real_session_is_priced_live_and_final_and_invoiced_once_with_a_pdf() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-BILL").await;
    let anna = driver_with_card(&app, "anna@example.se", "A1A1A1A1").await;
    let (bo, _) = app.driver("bo@example.se").await;
    let mut c = app.charger(&site).await;

    c.status(1, "Charging", "2026-11-10T09:00:00Z").await;
    let tx = c.start(1, "A1A1A1A1", 50_000, "2026-11-10T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-10T09:30:00Z", "55000", "10000", "50")
        .await;
    c.meter(1, Some(tx), "2026-11-10T10:00:00Z", "60000", "10000", "80")
        .await;
    c.status(1, "SuspendedEV", "2026-11-10T10:00:00Z").await;
    c.stop(tx, 60_000, "2026-11-10T10:20:00Z").await;

    // Final: 10 kWh × 2,00 = 20,00; 1 h charging × 6,00 = 6,00; flat 5,00; 20 min idle × 60 kr/h
    // = 20,00 → 51,00 kr excl. VAT = 5 100 öre; VAT 25 % = 1 275; total 6 375.
    let done = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    let cost = &done["cost"];
    assert_eq!(cost["state"], "priced");
    assert_eq!(
        (
            cost["excl_vat"].as_i64(),
            cost["vat"].as_i64(),
            cost["total"].as_i64()
        ),
        (Some(5100), Some(1275), Some(6375)),
        "{cost}"
    );
    let details = &cost["details"];
    assert_eq!(details["meter_start_wh"], 50_000);
    assert_eq!(details["meter_stop_wh"], 60_000);
    assert_eq!(
        (
            details["charging_seconds"].as_i64(),
            details["idle_seconds"].as_i64()
        ),
        (Some(3600), Some(1200))
    );
    let lines: i64 = details["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount_excl_vat"].as_i64().unwrap())
        .sum();
    assert_eq!(lines, 5100, "the lines add up to the total");

    let report = invoice_cli(&app, "2026-11");
    assert!(
        report.contains("1 invoices issued for 1 sessions"),
        "{report}"
    );
    let again = invoice_cli(&app, "2026-11");
    assert!(
        again.contains("0 invoices issued for 0 sessions"),
        "a second run bills nothing twice: {again}"
    );

    let list = app.get("/invoices", Some(&anna)).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let invoice = &items[0];
    assert_eq!(invoice["number"], "LK-000001");
    assert_eq!(invoice["period"], "2026-11");
    assert_eq!(
        invoice["amount"],
        json!({"currency": "SEK", "excl_vat": 5100, "vat": 1275, "total": 6375})
    );
    assert_eq!(invoice["lines"][0]["session_id"].as_i64(), Some(tx));
    assert_eq!(
        app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body["cost"]["state"],
        "billed"
    );
    let id = invoice["id"].as_i64().unwrap();
    assert_golden("invoice_basic.json", invoice);
    assert_eq!(
        app.get(&format!("/invoices/{id}"), Some(&bo)).await.status,
        404,
        "another driver's invoice"
    );
    assert_eq!(
        app.get("/invoices", Some(&bo)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let pdf = app
        .client
        .get(app.api(&format!("/invoices/{id}/pdf")))
        .bearer_auth(&anna)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    // An invoice is personal data: no cache keeps it, no browser sniffs it into something else.
    assert_eq!(pdf.headers()["cache-control"], "no-store");
    assert_eq!(pdf.headers()["x-content-type-options"], "nosniff");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdf_text(&bytes);
    for expected in [
        "Faktura LK-000001",
        "Fakturadatum: ",
        "Period: 2026-11",
        "Laddkoll AB",
        "Org.nr 559000-0000",
        "Test Driver",
        "anna@example.se",
        &format!("(session {tx})"),
        "10.000 kWh",
        "Moms: 12,75 kr",
        "Att betala: 63,75 kr",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the PDF text:\n{text}"
        );
    }
    assert!(
        text.contains("Säljare") && text.contains("Köpare"),
        "Swedish letters survive: {text}"
    );
    let other = app
        .client
        .get(app.api(&format!("/invoices/{id}/pdf")))
        .bearer_auth(&bo)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // A correction is a credit note; the invoice never changes.
    let credit = app
        .post(
            &format!("/admin/invoices/{id}/credit-note"),
            json!({"reason": "Fel pris"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(credit.status, 201, "{}", credit.body);
    assert_eq!(credit.body["kind"], "credit_note");
    assert_eq!(credit.body["number"], "LK-000002");
    assert_eq!(credit.body["credits_invoice_id"].as_i64(), Some(id));
    assert_eq!(credit.body["amount"]["total"], -6375);
    let twice = app
        .post(
            &format!("/admin/invoices/{id}/credit-note"),
            json!({"reason": "again"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!((twice.status, twice.code()), (409, "already_credited"));
    let original = app.get(&format!("/invoices/{id}"), Some(&anna)).await.body;
    assert_eq!(original["amount"]["total"], 6375);
}

#[actix_rt::test]
async fn the_live_cost_grows_with_energy_and_time_until_now() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-LIVE").await;
    let anna = driver_with_card(&app, "anna@example.se", "F0F0F0F0").await;
    let mut c = app.charger(&site).await;
    let at = |minutes_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    c.status(1, "Charging", &at(30)).await;
    let tx = c.start(1, "F0F0F0F0", 50_000, &at(30)).await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), &at(1), "55000", "10000", "50").await;
    // So far: 5 kWh × 2,00 + 30 min × 6,00 kr/h (per started minute) + 5,00 = 18,00 kr, or
    // 18,10 if the clock passed into the 31st minute while the test ran.
    let live = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(live["cost"]["state"], "live");
    let excl = live["cost"]["excl_vat"].as_i64().unwrap();
    assert!((1800..=1810).contains(&excl), "{}", live["cost"]);
    assert_eq!(live["cost"]["currency"], "SEK");
    assert_eq!(
        live["cost"]["total"].as_i64().unwrap(),
        live["cost"]["excl_vat"].as_i64().unwrap() + live["cost"]["vat"].as_i64().unwrap()
    );
}

#[actix_rt::test]
async fn flagged_sessions_are_held_until_an_operator_releases_them() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-HOLD").await;
    let anna = driver_with_card(&app, "anna@example.se", "B2B2B2B2").await;
    let mut c = app.charger(&site).await;
    // A register that goes backwards is suspect.
    let tx = c.start(1, "B2B2B2B2", 1000, "2026-11-12T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.meter(1, Some(tx), "2026-11-12T09:20:00Z", "3000", "7000", "30")
        .await;
    c.meter(1, Some(tx), "2026-11-12T09:40:00Z", "2500", "7000", "40")
        .await;
    c.stop(tx, 5000, "2026-11-12T10:00:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(s["cost"]["state"], "held");
    assert!(s["cost"]["hold_reason"]
        .as_str()
        .unwrap()
        .contains("register_backwards"));
    // 4 kWh × 2,00 + 1 h × 6,00 + 5,00 = 19,00 kr excl. VAT, still shown.
    assert_eq!(s["cost"]["excl_vat"], 1900);

    let run = app
        .post(
            "/admin/invoice-runs",
            json!({"period": "2026-11"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(run.status, 200);
    assert_eq!(
        (
            run.body["invoices_issued"].as_i64(),
            run.body["sessions_held"].as_i64()
        ),
        (Some(0), Some(1))
    );
    let (driver, _) = app.driver("d@example.se").await;
    assert_eq!(
        app.post(
            &format!("/admin/sessions/{tx}/release"),
            json!({}),
            Some(&driver)
        )
        .await
        .status,
        403
    );
    let released = app
        .post(
            &format!("/admin/sessions/{tx}/release"),
            json!({}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(released.status, 204);
    assert_eq!(
        app.post(
            &format!("/admin/sessions/{tx}/release"),
            json!({}),
            Some(&site.operator)
        )
        .await
        .status,
        409
    );
    let run = app
        .post(
            "/admin/invoice-runs",
            json!({"period": "2026-11"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!(run.body["invoices_issued"], 1);
    assert_eq!(
        app.get("/invoices", Some(&anna)).await.body["items"][0]["amount"]["total"],
        2375
    );
    let bad = app
        .post(
            "/admin/invoice-runs",
            json!({"period": "November"}),
            Some(&site.operator),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_period"));
}

#[actix_rt::test]
async fn a_session_keeps_the_tariff_it_started_under() {
    let app = spawn_app().await;
    let (site, tariff_id) = priced_site(&app, "CP-CHG").await;
    let anna = driver_with_card(&app, "anna@example.se", "C3C3C3C3").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "C3C3C3C3", 1000, "2026-11-13T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    // The operator doubles the energy price mid-session.
    let mut doubled = tariff_body();
    doubled["tariff"]["elements"][0]["price_components"][0]["price"] = json!(4.00);
    let v2 = app
        .send(
            app.client
                .put(app.api(&format!("/admin/tariffs/{tariff_id}")))
                .bearer_auth(&site.operator)
                .json(&doubled),
        )
        .await;
    assert_eq!((v2.status, v2.body["version"].as_i64()), (200, Some(2)));
    c.stop(tx, 3000, "2026-11-13T10:00:00Z").await;
    // 2 kWh × 2,00 (version 1) + 1 h × 6,00 + 5,00 = 15,00 kr excl. VAT.
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(s["cost"]["excl_vat"], 1500, "{}", s["cost"]);
    assert_eq!(s["cost"]["details"]["tariff"]["version"], 1);
    // A new session uses version 2: 2 kWh × 4,00 + 1 h × 6,00 + 5,00 = 19,00.
    let tx2 = c.start(1, "C3C3C3C3", 3000, "2026-11-13T11:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(tx2, 5000, "2026-11-13T12:00:00Z").await;
    assert_eq!(
        app.get(&format!("/sessions/{tx2}"), Some(&anna)).await.body["cost"]["excl_vat"],
        1900
    );
}

#[actix_rt::test]
async fn a_zero_energy_session_costs_only_its_fixed_parts_and_sessions_without_tariff_have_no_cost()
{
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-ZERO").await;
    let other = app.site_with(&site.operator, "CP-FREE").await;
    let anna = driver_with_card(&app, "anna@example.se", "D4D4D4D4").await;
    let mut c = app.charger(&site).await;
    let tx = c.start(1, "D4D4D4D4", 7000, "2026-11-14T09:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    c.stop(tx, 7000, "2026-11-14T09:01:00Z").await;
    let s = app.get(&format!("/sessions/{tx}"), Some(&anna)).await.body;
    assert_eq!(
        (s["cost"]["excl_vat"].as_i64(), s["cost"]["total"].as_i64()),
        (Some(510), Some(638))
    );
    let mut free = app.charger(&other).await;
    let tx2 = free.start(1, "D4D4D4D4", 10, "2026-11-14T11:00:00Z").await["transactionId"]
        .as_i64()
        .unwrap();
    free.stop(tx2, 20, "2026-11-14T11:30:00Z").await;
    assert!(app.get(&format!("/sessions/{tx2}"), Some(&anna)).await.body["cost"].is_null());
}

/// Invoice numbering under concurrent runs: every driver invoiced once, numbers 1..=N with no
/// gap and no duplicate, every session billed once. Meaningful on PostgreSQL (row locks);
/// on SQLite the runs serialise on the write lock.
#[actix_rt::test]
async fn concurrent_invoice_runs_number_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-RACE").await;
    let drivers = 12;
    let mut c = app.charger(&site).await;
    for i in 0..drivers {
        let uid = format!("E{i:07X}");
        driver_with_card(&app, &format!("race{i}@example.se"), &uid).await;
        charge(
            &mut c,
            &uid,
            1 + (i % 28) as u32,
            50_000 + 10_000 * i as i64,
        )
        .await;
    }
    let url = app.db.url.clone();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let db = laddkoll::db::Db::connect(&url, 1).unwrap();
                let mut conn = db.get().unwrap();
                let seller = laddkoll::config::Config::for_database(&url).seller();
                laddkoll::billing::invoicing::run(
                    &mut conn,
                    "2026-11",
                    chrono_tz::Europe::Stockholm,
                    "LK",
                    &seller,
                    laddkoll::http::time::now(),
                )
                .unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let issued: usize = reports.iter().map(|r| r.invoices_issued).sum();
    let billed: usize = reports.iter().map(|r| r.sessions_billed).sum();
    assert_eq!((issued, billed), (drivers, drivers));
    let mut numbers: Vec<String> = reports.iter().flat_map(|r| r.numbers.clone()).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=drivers).map(|n| format!("LK-{n:06}")).collect();
    assert_eq!(numbers, expected);
    let all = app
        .get("/admin/invoices?limit=100", Some(&site.operator))
        .await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), drivers);
}

#[actix_rt::test]
async fn invoices_and_credit_notes_match_their_documented_schema() {
    // Found by the API fuzzer: invoice lines carry `components` as an array of priced
    // components, while the document promised an object.
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-DOC").await;
    let anna = driver_with_card(&app, "anna@example.se", "D0C0D0C0").await;
    let mut c = app.charger(&site).await;
    charge(&mut c, "D0C0D0C0", 12, 1000).await;
    invoice_cli(&app, "2026-11");

    let list = app.get("/invoices", Some(&anna)).await;
    common::openapi::assert_conforms("GET", "/api/v1/invoices", 200, &list.body);
    let id = list.body["items"][0]["id"].as_i64().unwrap();
    let components = &list.body["items"][0]["lines"][0]["components"];
    assert!(
        components.as_array().is_some_and(|c| !c.is_empty()),
        "{components}"
    );
    let one = app.get(&format!("/invoices/{id}"), Some(&anna)).await;
    common::openapi::assert_conforms("GET", "/api/v1/invoices/{id}", 200, &one.body);
    let all = app.get("/admin/invoices", Some(&site.operator)).await;
    common::openapi::assert_conforms("GET", "/api/v1/admin/invoices", 200, &all.body);
    let credit = app
        .post(
            &format!("/admin/invoices/{id}/credit-note"),
            json!({"reason": "Fel pris"}),
            Some(&site.operator),
        )
        .await;
    common::openapi::assert_conforms(
        "POST",
        "/api/v1/admin/invoices/{id}/credit-note",
        201,
        &credit.body,
    );
}

#[actix_rt::test]
async fn a_finished_session_left_unpriced_by_a_crash_is_priced_by_the_sweep() {
    use diesel::prelude::*;
    use laddkoll::db::schema::session_billing;
    let app = spawn_app().await;
    let (site, _) = priced_site(&app, "CP-SWEEP").await;
    let token = driver_with_card(&app, "sweep@example.se", "5EE9AA01").await;
    let mut c = app.charger(&site).await;
    let tx = charge(&mut c, "5EE9AA01", 10, 2_000).await;
    let priced = app.get(&format!("/sessions/{tx}"), Some(&token)).await.body;
    assert_eq!(priced["cost"]["state"], "priced");
    // As a crash between the stop's commit and its pricing leaves it: the record still open.
    let mut conn = app.state.db.get().unwrap();
    diesel::update(session_billing::table.find(tx))
        .set((
            session_billing::status.eq("open"),
            session_billing::total.eq(None::<i64>),
            session_billing::priced.eq(None::<String>),
        ))
        .execute(&mut conn)
        .unwrap();
    let pending = app.get(&format!("/sessions/{tx}"), Some(&token)).await.body;
    assert_eq!(
        pending["cost"]["state"], "pricing",
        "the final price shown meanwhile"
    );
    assert_eq!(pending["cost"]["total"], priced["cost"]["total"]);
    let n =
        laddkoll::billing::records::price_unpriced(&mut conn, None, laddkoll::http::time::now())
            .unwrap();
    assert_eq!(n, 1);
    let again = app.get(&format!("/sessions/{tx}"), Some(&token)).await.body;
    assert_eq!(again["cost"]["state"], "priced");
    assert_eq!(again["cost"]["total"], priced["cost"]["total"]);
    assert_eq!(
        laddkoll::billing::records::price_unpriced(&mut conn, None, laddkoll::http::time::now())
            .unwrap(),
        0,
        "nothing is priced twice"
    );
}
