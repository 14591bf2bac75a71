//! Test harness: `spawn_app()` runs the real application on a random port over a fresh
//! database: a temporary SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL`
//! points at a server.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::net::TcpListener;
use std::sync::Arc;

use diesel::{Connection, PgConnection, RunQueryDsl};
use laddkoll::config::Config;
use laddkoll::db::Db;
use laddkoll::AppState;
use serde_json::{json, Value};

/// A fresh, empty database that is removed when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// Creates a database of the backend the environment asks for.
    pub fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
        {
            Some(admin_url) => {
                let name = format!("laddkoll_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin =
                    PgConnection::establish(&admin_url).expect("connect to TEST_DATABASE_URL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                TestDb {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg: Some((admin_url.clone(), name)),
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
        }
    }

    /// Whether this database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// A running application.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: Arc<AppState>,
    pub db: TestDb,
}

/// Starts the app with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app after `adjust` has changed the configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    // Server logs go to the test output (shown for failing tests); LADDKOLL_LOG tunes them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LADDKOLL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let db = TestDb::new();
    let (base, client, state) = start_instance(&db.url, adjust).await;
    TestApp {
        base,
        client,
        state,
        db,
    }
}

/// Starts one more instance of the app on an existing database (several instances on one
/// PostgreSQL): its base URL, an HTTP client and its state.
pub async fn start_instance(
    url: &str,
    adjust: impl FnOnce(&mut Config),
) -> (String, reqwest::Client, Arc<AppState>) {
    let mut config = Config::for_database(url);
    adjust(&mut config);
    let pool = Db::connect(&config.database_url, config.db_pool_size).expect("open database");
    pool.migrate().expect("migrate");
    let state = AppState::new(config, pool);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let server_state = state.clone();
    let server = actix_web::HttpServer::new(move || laddkoll::build_app(server_state.clone()))
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
    actix_rt::spawn(server);
    (
        format!("http://127.0.0.1:{port}"),
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
    )
}

/// A response's status and JSON body (Null when the body is empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// The full URL of an API path (`/auth/login` → `http://…/api/v1/auth/login`).
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// Sends a request and reads the answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        let mut req = self.client.post(self.api(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.client.get(self.api(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// Registers a driver and returns its id.
    pub async fn register(&self, email: &str) -> i64 {
        let a = self
            .post(
                "/auth/register",
                json!({"email": email, "password": PASSWORD, "name": "Test Driver"}),
                None,
            )
            .await;
        assert_eq!(a.status, 201, "register {email}: {}", a.body);
        a.body["id"].as_i64().unwrap()
    }

    /// Logs in and returns the token answer.
    pub async fn login(&self, email: &str, password: &str) -> Answer {
        self.post(
            "/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Registers and logs in a driver; returns (access token, refresh token).
    pub async fn driver(&self, email: &str) -> (String, String) {
        self.register(email).await;
        let a = self.login(email, PASSWORD).await;
        assert_eq!(a.status, 200, "login: {}", a.body);
        (
            a.body["access_token"].as_str().unwrap().to_string(),
            a.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates an operator with the real CLI and logs in; returns the access token.
    pub async fn operator(&self, email: &str) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_laddkoll"))
            .args(["create-operator", "--email", email])
            .env("DATABASE_URL", &self.db.url)
            .env("LADDKOLL_OPERATOR_PASSWORD", PASSWORD)
            .env("LADDKOLL_JWT_SECRET", "x".repeat(40))
            .env("LADDKOLL_LOG", "warn")
            .output()
            .expect("run laddkoll create-operator");
        assert!(
            out.status.success(),
            "create-operator: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let a = self.login(email, PASSWORD).await;
        assert_eq!(a.status, 200, "operator login: {}", a.body);
        a.body["access_token"].as_str().unwrap().to_string()
    }

    /// The audit actions recorded for a user, oldest first.
    pub async fn audit_actions(&self, user_id: i64) -> Vec<String> {
        let db = self.state.db.clone();
        let mut events = db
            .run(move |conn| {
                let filter = laddkoll::audit::EventFilter {
                    user_id: Some(user_id),
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
            .unwrap();
        events.reverse();
        events.into_iter().map(|e| e.action).collect()
    }
}

pub mod charger;
pub mod openapi;

/// A registered charge point: its id, key and location.
pub struct Site {
    pub operator: String,
    pub location_id: i64,
    pub cp: String,
    pub key: String,
}

impl TestApp {
    /// Creates an operator, a location in Stockholm and a two-connector charge point.
    pub async fn site(&self, cp: &str) -> Site {
        let operator = self
            .operator(&format!("ops-{}@example.se", cp.to_lowercase()))
            .await;
        self.site_with(&operator, cp).await
    }

    /// Adds a location and a charge point using an existing operator token.
    pub async fn site_with(&self, operator: &str, cp: &str) -> Site {
        let loc = self
            .post(
                "/admin/locations",
                json!({"name": format!("Garage {cp}"), "address": "Götgatan 1", "city": "Stockholm",
                "country": "SE", "lat": 59.3165, "lon": 18.0717, "timezone": "Europe/Stockholm"}),
                Some(operator),
            )
            .await;
        assert_eq!(loc.status, 201, "location: {}", loc.body);
        let location_id = loc.body["id"].as_i64().unwrap();
        let created = self
            .post("/admin/charge-points", json!({"id": cp, "location_id": location_id, "connectors": [
                {"connector_id": 1, "standard": "IEC_62196_T2", "power_kw": 22.0, "current_type": "AC"},
                {"connector_id": 2, "standard": "IEC_62196_T2_COMBO", "power_kw": 150.0, "current_type": "DC"}]}), Some(operator))
            .await;
        assert_eq!(created.status, 201, "charge point: {}", created.body);
        Site {
            operator: operator.to_string(),
            location_id,
            cp: cp.to_string(),
            key: created.body["password"].as_str().unwrap().to_string(),
        }
    }

    /// Connects a charger with its key and boots it.
    pub async fn charger(&self, site: &Site) -> charger::Charger {
        let mut c = charger::connect(&self.base, &site.cp, Some(&site.key), true)
            .await
            .expect("charger connects");
        c.boot().await;
        c
    }

    /// Polls a session until its status is `want` (or panics after 10 s).
    pub async fn wait_session(&self, token: &str, id: i64, want: &str) -> Value {
        for _ in 0..200 {
            let s = self.get(&format!("/sessions/{id}"), Some(token)).await;
            if s.body["status"] == want {
                return s.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("session {id} never became {want}");
    }
}

/// 2,00 kr/kWh, 6,00 kr/h charging time, a 5,00 kr start fee, and 60 kr/h parking (idle) —
/// excl. VAT, 25 % VAT.
pub fn tariff_body() -> Value {
    json!({"name": "Standard", "vat_rate": 25, "tariff": {"currency": "SEK", "elements": [
        {"price_components": [{"type": "ENERGY", "price": 2.00, "step_size": 1}, {"type": "TIME", "price": 6.00, "step_size": 60},
            {"type": "FLAT", "price": 5.00, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 60.00, "step_size": 60}]}
    ]}})
}

pub async fn priced_site(app: &TestApp, cp: &str) -> (Site, i64) {
    let site = app.site(cp).await;
    let t = app
        .post("/admin/tariffs", tariff_body(), Some(&site.operator))
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    let tariff_id = t.body["id"].as_i64().unwrap();
    let set = app
        .send(
            app.client
                .put(app.api(&format!("/admin/charge-points/{cp}/tariff")))
                .bearer_auth(&site.operator)
                .json(&json!({"tariff_id": tariff_id})),
        )
        .await;
    assert_eq!(set.status, 204);
    (site, tariff_id)
}
