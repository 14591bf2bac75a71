//! Settings, read from environment variables (and `.env`). Every setting is listed in `.env.example`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;
use secrecy::SecretString;

/// Whether the service runs for a developer (zero set-up) or in production (explicit secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// Everything the service needs to know at start.
#[derive(Clone)]
pub struct Config {
    pub mode: Mode,
    pub database_url: String,
    pub bind: SocketAddr,
    pub jwt_secret: SecretString,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Whether auth cookies carry the `Secure` attribute (on by default in production).
    pub cookie_secure: bool,
    /// Requests per minute per client address on the auth endpoints.
    pub auth_rate_per_minute: u32,
    /// Registrations per hour per client address (`POST /auth/register`, whatever its answer).
    pub register_rate_per_hour: u32,
    /// Refused OCPP upgrades per minute per client address that are audited; past it they
    /// answer 429 and write nothing.
    pub ocpp_refusals_per_minute: u32,
    /// Serve `/metrics` on this address instead of the API's (`None`: on the API's address).
    pub metrics_bind: Option<SocketAddr>,
    /// Failed logins an account may have before it is locked.
    pub lockout_threshold: u32,
    /// First lock duration; doubles with every further failure.
    pub lockout_base: Duration,
    /// Longest lock.
    pub lockout_max: Duration,
    /// Largest accepted JSON body in bytes.
    pub max_body_bytes: usize,
    /// Database pool size.
    pub db_pool_size: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    /// Argon2 memory cost in KiB (OWASP minimum: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2 iterations (OWASP minimum with 19 MiB: 2).
    pub argon2_iterations: u32,
    /// Heartbeat interval told to chargers at BootNotification, seconds.
    pub ocpp_heartbeat_secs: u32,
    /// How long a call to a charger may wait for its answer.
    pub ocpp_call_timeout: Duration,
    /// How long an app-started session waits for the charger's StartTransaction.
    pub app_start_timeout: Duration,
    /// This instance's id among several on one PostgreSQL (random per process by default).
    pub instance_id: String,
    /// How long an instance's heartbeat lease lasts; its chargers count as offline after it.
    pub instance_lease: Duration,
    /// An active session is stale when its charger is offline and has sent nothing for this
    /// long: it is listed for operators and no longer counts as the driver's running session.
    pub stale_session_after: Duration,
    /// Largest accepted OCPP frame in bytes.
    pub ocpp_max_frame_bytes: usize,
    /// How long the charger-message writer gathers messages into one transaction.
    pub charger_batch_window: Duration,
    /// The most charger messages in one transaction.
    pub charger_batch_max: usize,
    /// Charger-message writers (connections) on PostgreSQL; SQLite always has one.
    pub charger_writers: usize,
    /// Invoice number series (one unbroken sequence per series).
    pub invoice_series: String,
    /// Time zone of invoice months.
    pub billing_timezone: chrono_tz::Tz,
    /// Seller details printed on invoices.
    pub seller_name: String,
    pub seller_org_number: String,
    pub seller_vat_number: String,
    pub seller_address: String,
}

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set when LADDKOLL_ENV=production")]
    MissingInProduction(&'static str),
    #[error("{name} has an invalid value {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot keep the development JWT secret at {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Default SQLite file used in development.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/laddkoll.db";
const DEV_SECRET_FILE: &str = "data/jwt-secret";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
                value,
            }),
    }
}

/// A fresh instance id: `i-` and 12 random hex digits, new for every process.
fn random_instance_id() -> String {
    let mut bytes = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("i-{hex}")
}

fn seconds(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    parse(name, default).map(Duration::from_secs)
}

impl Config {
    /// Reads `.env` (if present) and the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by the variables it fails to set.
        let _ = dotenvy::dotenv();
        let mode = match var("LADDKOLL_ENV").as_deref() {
            None | Some("development") => Mode::Development,
            Some("production") => Mode::Production,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "LADDKOLL_ENV",
                    value: other.to_string(),
                    reason: "expected development or production".into(),
                })
            }
        };
        let database_url = match var("DATABASE_URL") {
            Some(url) => url,
            None if mode == Mode::Production => {
                return Err(ConfigError::MissingInProduction("DATABASE_URL"))
            }
            None => DEFAULT_DATABASE_URL.to_string(),
        };
        let jwt_secret = match var("LADDKOLL_JWT_SECRET") {
            Some(s) if s.len() < 32 => {
                return Err(ConfigError::Invalid {
                    name: "LADDKOLL_JWT_SECRET",
                    value: "<hidden>".into(),
                    reason: "must be at least 32 characters".into(),
                })
            }
            Some(s) => SecretString::from(s),
            None if mode == Mode::Production => {
                return Err(ConfigError::MissingInProduction("LADDKOLL_JWT_SECRET"))
            }
            None => development_secret(Path::new(DEV_SECRET_FILE))?,
        };
        Ok(Config {
            mode,
            database_url,
            bind: parse("LADDKOLL_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            jwt_secret,
            jwt_issuer: var("LADDKOLL_JWT_ISSUER").unwrap_or_else(|| "laddkoll".into()),
            jwt_audience: var("LADDKOLL_JWT_AUDIENCE").unwrap_or_else(|| "laddkoll-api".into()),
            access_token_ttl: seconds("LADDKOLL_ACCESS_TOKEN_TTL_SECS", 15 * 60)?,
            refresh_token_ttl: seconds("LADDKOLL_REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            cookie_secure: parse("LADDKOLL_COOKIE_SECURE", mode == Mode::Production)?,
            auth_rate_per_minute: parse("LADDKOLL_AUTH_RATE_PER_MINUTE", 60)?,
            register_rate_per_hour: parse("LADDKOLL_REGISTER_RATE_PER_HOUR", 20)?,
            ocpp_refusals_per_minute: parse("LADDKOLL_OCPP_REFUSALS_PER_MINUTE", 20)?,
            metrics_bind: var("LADDKOLL_METRICS_BIND")
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                            name: "LADDKOLL_METRICS_BIND",
                            reason: e.to_string(),
                            value: v,
                        })
                })
                .transpose()?,
            lockout_threshold: parse("LADDKOLL_LOCKOUT_THRESHOLD", 5)?,
            lockout_base: seconds("LADDKOLL_LOCKOUT_BASE_SECS", 30)?,
            lockout_max: seconds("LADDKOLL_LOCKOUT_MAX_SECS", 3600)?,
            max_body_bytes: parse("LADDKOLL_MAX_BODY_BYTES", 256 * 1024)?,
            db_pool_size: parse("LADDKOLL_DB_POOL_SIZE", 8)?,
            trust_proxy: parse("LADDKOLL_TRUST_PROXY", false)?,
            argon2_memory_kib: parse("LADDKOLL_ARGON2_MEMORY_KIB", 19_456)?.max(19_456),
            argon2_iterations: parse("LADDKOLL_ARGON2_ITERATIONS", 2)?.max(2),
            ocpp_heartbeat_secs: parse("LADDKOLL_OCPP_HEARTBEAT_SECS", 300)?,
            ocpp_call_timeout: seconds("LADDKOLL_OCPP_CALL_TIMEOUT_SECS", 30)?,
            app_start_timeout: seconds("LADDKOLL_APP_START_TIMEOUT_SECS", 90)?,
            stale_session_after: seconds("LADDKOLL_STALE_SESSION_AFTER_SECS", 6 * 3600)?,
            instance_id: var("LADDKOLL_INSTANCE_ID").unwrap_or_else(random_instance_id),
            instance_lease: seconds("LADDKOLL_INSTANCE_LEASE_SECS", 15)?,
            ocpp_max_frame_bytes: parse("LADDKOLL_OCPP_MAX_FRAME_BYTES", 256 * 1024)?,
            charger_batch_window: Duration::from_micros(parse(
                "LADDKOLL_CHARGER_BATCH_WINDOW_US",
                2000,
            )?),
            charger_batch_max: parse("LADDKOLL_CHARGER_BATCH_MAX", 256)?.max(1),
            charger_writers: parse("LADDKOLL_CHARGER_WRITERS", 4)?.clamp(1, 32),
            invoice_series: var("LADDKOLL_INVOICE_SERIES").unwrap_or_else(|| "LK".into()),
            billing_timezone: parse("LADDKOLL_BILLING_TIMEZONE", chrono_tz::Europe::Stockholm)?,
            seller_name: var("LADDKOLL_SELLER_NAME").unwrap_or_else(|| "Laddkoll AB".into()),
            seller_org_number: var("LADDKOLL_SELLER_ORG_NUMBER")
                .unwrap_or_else(|| "559000-0000".into()),
            seller_vat_number: var("LADDKOLL_SELLER_VAT_NUMBER")
                .unwrap_or_else(|| "SE559000000001".into()),
            seller_address: var("LADDKOLL_SELLER_ADDRESS")
                .unwrap_or_else(|| "Götgatan 1, 118 46 Stockholm".into()),
        })
    }

    /// A configuration for tests and tools: development defaults with the given database.
    pub fn for_database(database_url: &str) -> Self {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Config {
            mode: Mode::Development,
            database_url: database_url.to_string(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: SecretString::from(hex(&secret)),
            jwt_issuer: "laddkoll".into(),
            jwt_audience: "laddkoll-api".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            cookie_secure: false,
            auth_rate_per_minute: 600,
            register_rate_per_hour: 1000,
            ocpp_refusals_per_minute: 1000,
            metrics_bind: None,
            lockout_threshold: 5,
            lockout_base: Duration::from_secs(30),
            lockout_max: Duration::from_secs(3600),
            max_body_bytes: 256 * 1024,
            db_pool_size: 4,
            trust_proxy: false,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            ocpp_heartbeat_secs: 300,
            ocpp_call_timeout: Duration::from_secs(30),
            app_start_timeout: Duration::from_secs(90),
            stale_session_after: Duration::from_secs(6 * 3600),
            instance_id: random_instance_id(),
            instance_lease: Duration::from_secs(15),
            ocpp_max_frame_bytes: 256 * 1024,
            charger_batch_window: Duration::from_millis(2),
            charger_batch_max: 256,
            charger_writers: 4,
            invoice_series: "LK".into(),
            billing_timezone: chrono_tz::Europe::Stockholm,
            seller_name: "Laddkoll AB".into(),
            seller_org_number: "559000-0000".into(),
            seller_vat_number: "SE559000000001".into(),
            seller_address: "Götgatan 1, 118 46 Stockholm".into(),
        }
    }
}

impl Config {
    /// The seller printed on invoices.
    pub fn seller(&self) -> crate::billing::invoicing::Seller {
        crate::billing::invoicing::Seller {
            name: self.seller_name.clone(),
            org_number: self.seller_org_number.clone(),
            vat_number: self.seller_vat_number.clone(),
            address: self.seller_address.clone(),
        }
    }
}

/// Hex-encodes bytes (used for secrets and token hashes).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Loads the development JWT secret, generating and keeping it on first use.
fn development_secret(path: &Path) -> Result<SecretString, ConfigError> {
    let err = |source| ConfigError::SecretFile {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 32 {
            return Ok(SecretString::from(existing));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex(&bytes);
    write_private(path, &secret).map_err(err)?;
    tracing::warn!(
        path = %path.display(),
        "development mode: generated a random JWT secret and kept it; set LADDKOLL_JWT_SECRET in production"
    );
    Ok(SecretString::from(secret))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}
