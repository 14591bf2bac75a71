//! Provisioning a simulated fleet through the operator API: locations around Stockholm,
//! charge points (their keys come back once, at creation), drivers with an RFID card each.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::fleet::{Fleet, FleetCharger, FleetDriver};

/// How many API requests provisioning keeps in flight.
const PARALLEL: usize = 8;

/// Sends a request, waiting out 429s (the auth endpoints are rate limited per address).
async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    for _ in 0..30 {
        let r = req
            .try_clone()
            .context("request cannot be retried")?
            .send()
            .await?;
        let status = r.status().as_u16();
        if status == 429 {
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait.clamp(1, 60))).await;
            continue;
        }
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        return Ok((status, body));
    }
    bail!("still rate limited after 30 attempts")
}

/// Logs in and returns the access token.
pub async fn login(
    http: &reqwest::Client,
    api: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let (status, body) = send(
        http.post(format!("{api}/auth/login"))
            .json(&json!({"email": email, "password": password})),
    )
    .await?;
    if status != 200 {
        bail!("login as {email} answered {status}: {body}");
    }
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("login answer without access_token")
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct Plan {
    pub prefix: String,
    pub chargers: usize,
    pub connectors: u32,
    pub locations: usize,
    pub drivers: usize,
    pub seed: u64,
}

fn connectors(n: u32) -> Vec<Value> {
    (1..=n.max(1))
        .map(|c| {
            if c % 2 == 1 {
                json!({"connector_id": c, "standard": "IEC_62196_T2", "power_kw": 22.0, "current_type": "AC"})
            } else {
                json!({"connector_id": c, "standard": "IEC_62196_T2_COMBO", "power_kw": 50.0, "current_type": "DC"})
            }
        })
        .collect()
}

/// Creates the fleet through the operator API.
pub async fn provision(
    http: &reqwest::Client,
    api: &str,
    operator_token: &str,
    plan: &Plan,
) -> anyhow::Result<Fleet> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let run: u32 = rng.gen();
    let mut location_ids = Vec::new();
    for n in 0..plan.locations.max(1) {
        // Spread within ~15 km of Stockholm's centre.
        let lat = 59.3293 + rng.gen_range(-0.12..0.12);
        let lon = 18.0686 + rng.gen_range(-0.25..0.25);
        let (status, body) = send(
            http.post(format!("{api}/admin/locations"))
                .bearer_auth(operator_token)
                .json(&json!({"name": format!("{} site {}", plan.prefix, n + 1),
                    "address": format!("Simulatorvägen {}", n + 1), "city": "Stockholm", "country": "SE",
                    "lat": lat, "lon": lon, "timezone": "Europe/Stockholm"})),
        )
        .await?;
        if status != 201 {
            bail!("creating a location answered {status}: {body}");
        }
        location_ids.push(body["id"].as_i64().context("location without id")?);
    }
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut jobs = JoinSet::new();
    for n in 0..plan.chargers {
        let (http, api, token, gate) = (
            http.clone(),
            api.to_string(),
            operator_token.to_string(),
            gate.clone(),
        );
        let id = format!("{}-{:05}", plan.prefix, n + 1);
        let location_id = location_ids[n % location_ids.len()];
        let connector_count = plan.connectors;
        jobs.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let (status, body) = send(
                http.post(format!("{api}/admin/charge-points"))
                    .bearer_auth(&token)
                    .json(&json!({"id": id, "location_id": location_id, "connectors": connectors(connector_count)})),
            )
            .await?;
            let (status, body) = if status == 409 {
                // Registered by an earlier run: a new key makes it ours.
                send(http.post(format!("{api}/admin/charge-points/{id}/rotate-key")).bearer_auth(&token)).await?
            } else {
                (status, body)
            };
            if !(200..300).contains(&status) {
                bail!("registering charge point {id} answered {status}: {body}");
            }
            Ok(FleetCharger {
                key: body["password"].as_str().context("no key in the answer")?.to_string(),
                id,
                connectors: connector_count,
                location_id,
            })
        });
    }
    let mut chargers = Vec::new();
    while let Some(joined) = jobs.join_next().await {
        chargers.push(joined??);
    }
    chargers.sort_by(|a, b| a.id.cmp(&b.id));
    let mut jobs = JoinSet::new();
    for n in 0..plan.drivers {
        let (http, api, gate) = (http.clone(), api.to_string(), gate.clone());
        let email = format!(
            "sim-{}-{run:08x}-{}@laddkoll.test",
            plan.prefix.to_lowercase(),
            n + 1
        );
        let password = format!("sim-{:032x}", rng.gen::<u128>());
        let id_tag = format!("{:014X}", rng.gen::<u64>() & 0x00FF_FFFF_FFFF_FFFF);
        jobs.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let (status, body) = send(http.post(format!("{api}/auth/register")).json(
                &json!({"email": email, "password": password, "name": format!("Simulated driver {}", n + 1)}),
            ))
            .await?;
            if status == 429 {
                bail!("registering driver {email} answered 429: the server rations registrations per address; start it with a higher LADDKOLL_REGISTER_RATE_PER_HOUR (and LADDKOLL_AUTH_RATE_PER_MINUTE) to provision many drivers");
            }
            if status != 201 {
                bail!("registering driver {email} answered {status}: {body}");
            }
            let token = login(&http, &api, &email, &password).await?;
            let (status, body) = send(
                http.post(format!("{api}/me/rfid-cards"))
                    .bearer_auth(&token)
                    .json(&json!({"uid": id_tag, "label": "Simulator card"})),
            )
            .await?;
            if status != 201 {
                bail!("registering the card of {email} answered {status}: {body}");
            }
            Ok(FleetDriver { email, password, id_tag })
        });
    }
    let mut drivers = Vec::new();
    while let Some(joined) = jobs.join_next().await {
        drivers.push(joined??);
    }
    drivers.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(Fleet { chargers, drivers })
}
