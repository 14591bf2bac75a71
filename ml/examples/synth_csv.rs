//! Writes a synthetic history with planted habits as an import CSV, so `laddkoll evaluate` and
//! `laddkoll import-sessions` can be tried on data where places really fill up.
//!
//! ```sh
//! cargo run --release -p laddkoll-ml --example synth_csv -- OUT.csv \
//!     [--scenario plain|drift|weekday-specific|one-offs|stations|workplace-like] \
//!     [--sessions N] [--drivers N] [--locations N] [--weeks N] [--seed N]
//! ```
//!
//! Each location gets `connectors` distinct `charge_point_ref`s (so the import and the replay
//! count its capacity), a name, and the Europe/Stockholm zone.

use std::io::Write;
use std::process::ExitCode;

use laddkoll_ml::synth::{generate_scenario, Scenario};
use laddkoll_ml::SynthConfig;

fn run(args: &[String]) -> Result<String, String> {
    let mut cfg = SynthConfig {
        sessions: 20_000,
        drivers: 500,
        locations: 10,
        weeks: 26,
        seed: 1,
    };
    let mut scenario = Scenario::default();
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--sessions" => cfg.sessions = num(a)? as usize,
            "--drivers" => cfg.drivers = num(a)? as usize,
            "--locations" => cfg.locations = num(a)? as usize,
            "--weeks" => cfg.weeks = num(a)? as u32,
            "--seed" => cfg.seed = num(a)?,
            "--scenario" => {
                let name = it.next().ok_or("--scenario needs a name")?;
                scenario = Scenario::all()
                    .into_iter()
                    .find(|s| &s.name == name)
                    .ok_or(format!("no scenario {name:?}"))?;
            }
            _ => out = Some(a.clone()),
        }
    }
    let out = out.ok_or("usage: synth_csv OUT.csv [options]")?;
    let data = generate_scenario(&cfg, &scenario);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).map_err(|e| e.to_string())?);
    let io = |e: std::io::Error| e.to_string();
    writeln!(
        w,
        "driver_ref,location_ref,location_name,charge_point_ref,started_at,ended_at,energy_kwh,timezone"
    )
    .map_err(io)?;
    let mut used = vec![0u32; data.input.locations.len() + 1];
    for s in &data.input.sessions {
        let loc = &data.input.locations[(s.location - 1) as usize];
        // spread sessions over the place's charge points so its capacity is known
        let cp = used[s.location as usize] % loc.connectors.max(1);
        used[s.location as usize] += 1;
        writeln!(
            w,
            "D{},L{},{},L{}-{},{},{},{},Europe/Stockholm",
            s.driver,
            s.location,
            loc.name,
            s.location,
            cp + 1,
            s.start_utc.to_rfc3339(),
            s.end_utc.to_rfc3339(),
            s.energy_kwh
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(format!(
        "wrote {} sessions of {} drivers at {} locations ({} scenario) to {out}",
        data.input.sessions.len(),
        cfg.drivers,
        cfg.locations,
        scenario.name
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(m) => {
            eprintln!("{m}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
