//! What a simulation counts: messages, answers, errors, connections and answer latency per
//! phase (ramp, steady, storm), kept in HDR histograms so percentiles stay exact to 0.1 %.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The phases a run goes through; latencies are kept apart per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Chargers connecting and booting.
    Ramp = 0,
    /// Everything connected, traffic flowing.
    Steady = 1,
    /// From the moment every charger lost its connection until the queues are drained.
    Storm = 2,
    /// Every session stopping at once at the end of a run.
    Finish = 3,
}

const PHASES: [&str; 4] = ["ramp", "steady", "storm", "finish"];

/// Counters shared by every simulated charger.
pub struct Stats {
    pub start: Instant,
    phase: AtomicU8,
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub call_errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub disconnects: AtomicU64,
    pub connected: AtomicI64,
    pub queued: AtomicI64,
    pub replayed: AtomicU64,
    pub sessions_started: AtomicU64,
    pub sessions_stopped: AtomicU64,
    pub app_starts: AtomicU64,
    pub rfid_starts: AtomicU64,
    pub refused_starts: AtomicU64,
    pub rest_errors: AtomicU64,
    pub server_calls: AtomicU64,
    inner: Mutex<Inner>,
}

struct Inner {
    latency: [Histogram<u64>; 4],
    phase_time: [Duration; 4],
    phase_since: Instant,
    actions: BTreeMap<&'static str, u64>,
    by_action: BTreeMap<&'static str, Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        let now = Instant::now();
        Stats {
            start: now,
            phase: AtomicU8::new(Phase::Ramp as u8),
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            call_errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            connected: AtomicI64::new(0),
            queued: AtomicI64::new(0),
            replayed: AtomicU64::new(0),
            sessions_started: AtomicU64::new(0),
            sessions_stopped: AtomicU64::new(0),
            app_starts: AtomicU64::new(0),
            rfid_starts: AtomicU64::new(0),
            refused_starts: AtomicU64::new(0),
            rest_errors: AtomicU64::new(0),
            server_calls: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                latency: [histogram(), histogram(), histogram(), histogram()],
                phase_time: [Duration::ZERO; 4],
                phase_since: now,
                actions: BTreeMap::new(),
                by_action: BTreeMap::new(),
                errors: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            0 => Phase::Ramp,
            1 => Phase::Steady,
            2 => Phase::Storm,
            _ => Phase::Finish,
        }
    }

    /// Enters a phase (the time spent in each is reported).
    pub fn set_phase(&self, phase: Phase) {
        let mut inner = self.lock();
        let old = self.phase.swap(phase as u8, Relaxed) as usize;
        let now = Instant::now();
        let spent = now - inner.phase_since;
        inner.phase_time[old] += spent;
        inner.phase_since = now;
    }

    /// A call was sent.
    pub fn on_sent(&self, action: &'static str) {
        self.sent.fetch_add(1, Relaxed);
        *self.lock().actions.entry(action).or_default() += 1;
    }

    /// A call was answered (result or error) after `latency`, in the phase it was sent in.
    pub fn on_answer(
        &self,
        action: &'static str,
        phase: Phase,
        latency: Duration,
        error: Option<&str>,
    ) {
        self.answered.fetch_add(1, Relaxed);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 600_000_000);
        let mut inner = self.lock();
        let _ = inner.latency[phase as usize].record(micros);
        if phase != Phase::Finish {
            let _ = inner
                .by_action
                .entry(action)
                .or_insert_with(histogram)
                .record(micros);
        }
        if let Some(code) = error {
            self.call_errors.fetch_add(1, Relaxed);
            *inner.errors.entry(code.to_string()).or_default() += 1;
        }
    }

    /// Latency percentiles of the calls answered so far in a phase.
    pub fn latency(&self, phase: Phase) -> Latency {
        Latency::of(&self.lock().latency[phase as usize])
    }

    /// The final report.
    pub fn report(&self, chargers: usize) -> Report {
        self.set_phase(self.phase());
        let inner = self.lock();
        let phases = PHASES
            .iter()
            .enumerate()
            .filter(|(i, _)| !inner.latency[*i].is_empty())
            .map(|(i, name)| {
                let secs = inner.phase_time[i].as_secs_f64();
                let n = inner.latency[i].len();
                (
                    (*name).to_string(),
                    PhaseReport {
                        seconds: round(secs, 1),
                        answered: n,
                        per_second: round(if secs > 0.0 { n as f64 / secs } else { 0.0 }, 1),
                        latency_ms: Latency::of(&inner.latency[i]),
                    },
                )
            })
            .collect();
        let g = |a: &AtomicU64| a.load(Relaxed);
        Report {
            chargers,
            seconds: round(self.start.elapsed().as_secs_f64(), 1),
            connections: Connections {
                connects: g(&self.connects),
                reconnects: g(&self.reconnects),
                failures: g(&self.connect_failures),
                disconnects: g(&self.disconnects),
                connected_at_end: self.connected.load(Relaxed),
            },
            messages: Messages {
                sent: g(&self.sent),
                answered: g(&self.answered),
                call_errors: g(&self.call_errors),
                timeouts: g(&self.timeouts),
                replayed: g(&self.replayed),
                queued_at_end: self.queued.load(Relaxed),
                server_calls: g(&self.server_calls),
                by_action: inner
                    .actions
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect(),
                errors_by_code: inner.errors.clone(),
                latency_ms_by_action: inner
                    .by_action
                    .iter()
                    .map(|(k, h)| ((*k).to_string(), Latency::of(h)))
                    .collect(),
            },
            sessions: Sessions {
                started: g(&self.sessions_started),
                stopped: g(&self.sessions_stopped),
                by_rfid: g(&self.rfid_starts),
                by_app: g(&self.app_starts),
                refused: g(&self.refused_starts),
                rest_errors: g(&self.rest_errors),
            },
            phases,
            storm: None,
        }
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Answer latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |v: u64| round(v as f64 / 1000.0, 2);
        if h.is_empty() {
            return Latency {
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// What a run reports at the end (`--report`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub chargers: usize,
    pub seconds: f64,
    pub connections: Connections,
    pub messages: Messages,
    pub sessions: Sessions,
    pub phases: BTreeMap<String, PhaseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormReport>,
}

#[derive(Debug, Serialize)]
pub struct Connections {
    pub connects: u64,
    pub reconnects: u64,
    pub failures: u64,
    pub disconnects: u64,
    pub connected_at_end: i64,
}

#[derive(Debug, Serialize)]
pub struct Messages {
    pub sent: u64,
    pub answered: u64,
    pub call_errors: u64,
    pub timeouts: u64,
    pub replayed: u64,
    pub queued_at_end: i64,
    /// Calls the central system sent to the chargers (RemoteStart, RemoteStop, …).
    pub server_calls: u64,
    pub by_action: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<String, u64>,
    /// Answer latency per action, outside the finish phase.
    pub latency_ms_by_action: BTreeMap<String, Latency>,
}

#[derive(Debug, Serialize)]
pub struct Sessions {
    pub started: u64,
    pub stopped: u64,
    pub by_rfid: u64,
    pub by_app: u64,
    pub refused: u64,
    pub rest_errors: u64,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub seconds: f64,
    pub answered: u64,
    pub per_second: f64,
    pub latency_ms: Latency,
}

/// How the reconnect storm went.
#[derive(Debug, Serialize)]
pub struct StormReport {
    /// Seconds from the outage's end until every charger was connected again.
    pub all_reconnected_secs: Option<f64>,
    /// Seconds from the outage's end until every queued message was answered.
    pub drained_secs: Option<f64>,
    /// Messages queued during the outage and replayed.
    pub replayed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_phase_the_call_was_sent_in() {
        let stats = Stats::new();
        for ms in 1..=100 {
            stats.on_answer(
                "MeterValues",
                Phase::Steady,
                Duration::from_millis(ms),
                None,
            );
        }
        stats.on_answer(
            "StopTransaction",
            Phase::Storm,
            Duration::from_millis(900),
            Some("InternalError"),
        );
        let steady = stats.latency(Phase::Steady);
        assert!((steady.p50 - 50.0).abs() < 0.1, "{steady:?}");
        assert!((steady.p99 - 99.0).abs() < 0.1, "{steady:?}");
        assert!((steady.max - 100.0).abs() < 0.1, "{steady:?}");
        assert!((stats.latency(Phase::Storm).max - 900.0).abs() < 1.0);
        let report = stats.report(1);
        assert_eq!(report.messages.call_errors, 1);
        assert_eq!(report.messages.errors_by_code["InternalError"], 1);
        assert_eq!(report.phases["steady"].answered, 100);
        assert!(!report.phases.contains_key("ramp"));
        let by_action = &report.messages.latency_ms_by_action;
        assert!((by_action["MeterValues"].max - 100.0).abs() < 0.1);
        assert!((by_action["StopTransaction"].p50 - 900.0).abs() < 1.0);
    }
}
