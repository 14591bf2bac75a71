//! Health, metrics, docs, OpenAPI drift, schema drift, migrations and configuration.

mod common;

use common::{spawn_app, TestDb};
use laddkoll::db::{introspect::render_schema, revert_all_migrations, run_migrations, Db};

#[actix_rt::test]
async fn health_readiness_metrics_and_docs_answer() {
    let app = spawn_app().await;
    let health = app
        .send(app.client.get(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    assert!(health.headers.contains_key("x-request-id"));
    let ready = app
        .send(app.client.get(format!("{}/readyz", app.base)))
        .await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (200, Some("ready"))
    );
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "laddkoll_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    // The charger writer's counters (no charger has written yet).
    assert!(
        metrics.contains("laddkoll_charger_write_batches_total 0\n"),
        "{metrics}"
    );
    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let spec = app
        .send(
            app.client
                .get(format!("{}/api-docs/openapi.json", app.base)),
        )
        .await;
    assert_eq!(spec.status, 200);
    assert!(spec.body["paths"]["/api/v1/auth/login"]["post"].is_object());
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let generated = laddkoll::cli::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `cargo run -- openapi` (or this test with UPDATE_OPENAPI=1)"
    );
}

#[test]
fn schema_rs_matches_the_migrations() {
    let db = TestDb::new();
    let pool = Db::connect(&db.url, 1).unwrap();
    pool.migrate().unwrap();
    let rendered = render_schema(&mut pool.get().unwrap()).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs");
    if std::env::var_os("UPDATE_SCHEMA").is_some() && !db.is_postgres() {
        std::fs::write(path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == rendered,
        "src/db/schema.rs differs from the migrations on {}:\n{rendered}",
        if db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
}

#[test]
fn every_migration_reverts_cleanly_and_reapplies() {
    let db = TestDb::new();
    let pool = Db::connect(&db.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let applied = run_migrations(&mut conn).unwrap();
    assert!(applied >= 1);
    let before = render_schema(&mut conn).unwrap();
    assert_eq!(revert_all_migrations(&mut conn).unwrap(), applied);
    let empty = render_schema(&mut conn).unwrap();
    assert!(
        !empty.contains("diesel::table!"),
        "tables left after revert:\n{empty}"
    );
    assert_eq!(run_migrations(&mut conn).unwrap(), applied);
    assert_eq!(render_schema(&mut conn).unwrap(), before);
}

fn laddkoll(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_laddkoll"));
    cmd.args(args)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("LADDKOLL_JWT_SECRET")
        .env_remove("LADDKOLL_ENV");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn production_mode_refuses_to_start_without_a_jwt_secret() {
    let out = laddkoll(
        &["migrate"],
        &[
            ("LADDKOLL_ENV", "production"),
            ("DATABASE_URL", "sqlite://x.db"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LADDKOLL_JWT_SECRET must be set"), "{err}");
    let out = laddkoll(
        &["migrate"],
        &[
            ("LADDKOLL_ENV", "production"),
            ("LADDKOLL_JWT_SECRET", &"s".repeat(40)),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL must be set"));
}

#[test]
fn development_mode_needs_no_setup_and_keeps_its_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_laddkoll"))
            .arg("migrate")
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("LADDKOLL_JWT_SECRET")
            .env_remove("LADDKOLL_ENV")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("generated a random JWT secret"));
    assert!(dir.path().join("data/laddkoll.db").exists());
    let secret = std::fs::read_to_string(dir.path().join("data/jwt-secret")).unwrap();
    assert!(secret.trim().len() >= 64);
    let second = run();
    assert!(second.status.success());
    assert!(!String::from_utf8_lossy(&second.stderr).contains("generated a random JWT secret"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/jwt-secret")).unwrap(),
        secret
    );
}

#[test]
fn an_unknown_database_scheme_is_a_clear_error() {
    let out = laddkoll(&["migrate"], &[("DATABASE_URL", "mysql://localhost/x")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("DATABASE_URL must start with sqlite:// or postgres://"));
}

/// Every operation lists the error codes it can answer, each of its error responses the codes
/// of its status, and every code is one of the enum's (issue 14: codes a client can switch on).
#[test]
fn every_operation_lists_its_error_codes() {
    use laddkoll::http::codes::ErrorCode;
    let doc = serde_json::to_value(laddkoll::openapi()).unwrap();
    let mut used = std::collections::BTreeSet::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(
                laddkoll::http::error_docs::specific(id).is_some(),
                "{method} {path} ({id}) has no entry in http::error_docs::specific"
            );
            let all = op["x-error-codes"]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: no x-error-codes"));
            assert!(all.iter().any(|c| c == "internal_error"), "{id}");
            for (status, response) in op["responses"].as_object().unwrap() {
                let status: u16 = status.parse().unwrap();
                if status < 400 {
                    continue;
                }
                let codes = response["x-error-codes"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{id} {status}: no x-error-codes"));
                assert!(!codes.is_empty(), "{id} {status}: no codes");
                for code in codes {
                    let code = ErrorCode::parse(code.as_str().unwrap())
                        .unwrap_or_else(|| panic!("{id} {status}: {code} is not an ErrorCode"));
                    assert!(
                        code.statuses().contains(&status),
                        "{id}: {code} under {status}"
                    );
                    assert!(all.contains(&code.as_str().into()), "{id}: {code}");
                    used.insert(code);
                }
            }
        }
    }
    assert!(operations > 50, "{operations} operations");
    // The codes no operation lists are answered outside /api/v1 or by the HTTP layer itself.
    let elsewhere = [
        ErrorCode::BadRequest,
        ErrorCode::SubprotocolRequired,
        ErrorCode::WebsocketRequired,
        ErrorCode::InvalidChargePointId,
        ErrorCode::ChargerUnauthorized,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::HeadersTooLarge,
        ErrorCode::RequestFailed,
    ];
    for code in ErrorCode::ALL {
        assert!(
            used.contains(code) || elsewhere.contains(code),
            "{code} is listed by no operation"
        );
    }
    // The ErrorBody's code is the enum.
    let enumerated = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"].to_string();
    for code in ErrorCode::ALL {
        assert!(
            enumerated.contains(&format!("\"{code}\"")),
            "{code} not in the ErrorDetail schema"
        );
    }
}

/// The README documents every error code with its statuses.
#[test]
fn the_readme_documents_every_error_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in laddkoll::http::codes::ErrorCode::ALL {
        let statuses = code
            .statuses()
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let row = format!("| `{code}` | {statuses} |");
        assert!(
            readme.contains(&row),
            "README misses the row starting {row}"
        );
    }
}

/// The OpenAPI lists exactly the names each state, flag and kind is stored under.
#[test]
fn the_openapi_lists_the_stored_names_of_every_state_and_flag() {
    use laddkoll::billing::records::{BillingStatus, CostState};
    use laddkoll::charging::queries::{CardStatus, SessionOrigin, SessionStatus};
    use laddkoll::charging::SessionFlag;
    let doc: serde_json::Value = serde_json::from_str(&laddkoll::cli::openapi_json()).unwrap();
    let listed = |name: &str| -> Vec<String> {
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enum in the OpenAPI"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    fn stored<T: ToString>(all: &[T]) -> Vec<String> {
        all.iter().map(T::to_string).collect()
    }
    assert_eq!(listed("SessionStatus"), stored(SessionStatus::ALL));
    assert_eq!(listed("SessionOrigin"), stored(SessionOrigin::ALL));
    assert_eq!(listed("SessionFlag"), stored(SessionFlag::ALL));
    assert_eq!(listed("CardStatus"), stored(CardStatus::ALL));
    assert_eq!(listed("CostState"), stored(CostState::ALL));
    // Not in the API, but stored: each name parses back.
    for s in BillingStatus::ALL {
        assert_eq!(s.as_str().parse::<BillingStatus>(), Ok(*s));
    }
}
