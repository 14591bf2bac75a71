//! Login throughput against the raw argon2 verification rate, and `/healthz` latency while
//! logins saturate the CPU.
//!
//! Run: `cargo run --release --example login_bench [seconds]` (default 10 s per phase).
//! It measures, on this machine and with the service's own argon2 parameters:
//! 1. the raw rate: argon2id verifications per second on all cores, no HTTP, no database;
//! 2. the service rate: successful `POST /api/v1/auth/login` per second over real HTTP against
//!    a real SQLite file, with enough concurrent clients to saturate the cores;
//! 3. `/healthz` latency (p50, p99, max) sampled every 20 ms during phase 2.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use laddkoll::config::Config;
use laddkoll::db::Db;
use laddkoll::AppState;

const PASSWORD: &str = "correct horse battery staple";

fn raw_rate(config: &Config, seconds: u64) -> f64 {
    let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, 1, None).unwrap();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"benchmark-salt!!").unwrap();
    let hash = argon
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|s| {
        for _ in 0..cores {
            let done = done.clone();
            let hash = hash.clone();
            let argon = argon.clone();
            s.spawn(move || {
                let parsed = PasswordHash::new(&hash).unwrap();
                while Instant::now() < deadline {
                    argon.verify_password(PASSWORD.as_bytes(), &parsed).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut config = Config::for_database(&url);
    config.auth_rate_per_minute = u32::MAX / 2;
    config.db_pool_size = 8;

    println!(
        "argon2id m={} KiB t={} p=1, {} cores",
        config.argon2_memory_kib,
        config.argon2_iterations,
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    let raw = raw_rate(&config, seconds);
    println!("raw argon2 verifications/s: {raw:.1}");

    let db = Db::connect(&url, config.db_pool_size).unwrap();
    db.migrate().unwrap();
    let state = AppState::new(config, db);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_state = state.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || laddkoll::build_app(server_state.clone()))
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
        });
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let base = format!("http://{addr}/api/v1");
        let client = reqwest::Client::new();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let users = 16;
        for i in 0..users {
            let r = client.post(format!("{base}/auth/register"))
                .json(&serde_json::json!({"email": format!("bench{i}@example.se"), "password": PASSWORD, "name": "Bench"}))
                .send().await.unwrap();
            assert_eq!(r.status(), 201);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..users {
            let (client, base, stop, ok, failed) = (client.clone(), base.clone(), stop.clone(), ok.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let r = client.post(format!("{base}/auth/login"))
                        .json(&serde_json::json!({"email": format!("bench{i}@example.se"), "password": PASSWORD}))
                        .send().await;
                    match r {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        let health = {
            let (client, stop) = (client.clone(), stop.clone());
            let url = format!("http://{addr}/healthz");
            tokio::spawn(async move {
                let mut samples = Vec::new();
                tokio::time::sleep(Duration::from_secs(1)).await;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = client.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    samples.push(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                samples
            })
        };
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        for t in tasks { t.await.unwrap(); }
        let mut samples = health.await.unwrap();
        samples.sort();
        let rate = ok.load(Ordering::Relaxed) as f64 / elapsed;
        println!("service logins/s: {rate:.1} ({} failed)", failed.load(Ordering::Relaxed));
        println!("ratio to raw: {:.2}", rate / raw);
        println!("/healthz under login load: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
            percentile(&samples, 0.5).as_secs_f64() * 1e3,
            percentile(&samples, 0.99).as_secs_f64() * 1e3,
            samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            samples.len());
    });
}
