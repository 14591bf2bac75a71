//! Timestamps are stored as UTC `NaiveDateTime` and shown as RFC 3339 with `Z`.

use chrono::NaiveDateTime;
use serde::Serializer;

/// Serialises a UTC `NaiveDateTime` as RFC 3339 (`2026-11-24T10:00:00Z`).
pub fn as_utc<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(
        &t.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// Like [`as_utc`] for optional timestamps.
pub fn as_utc_opt<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => as_utc(t, s),
        None => s.serialize_none(),
    }
}

/// The current time, UTC, truncated to microseconds so both databases store it exactly.
pub fn now() -> NaiveDateTime {
    let n = chrono::Utc::now().naive_utc();
    n.with_nanosecond((n.nanosecond() / 1_000) * 1_000)
        .unwrap_or(n)
}

use chrono::Timelike;
