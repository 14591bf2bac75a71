//! The session history CSV an operator brings from a previous system.
//!
//! Columns, matched by header name (case and surrounding spaces ignored, any order):
//!
//! | column | required | content |
//! |---|---|---|
//! | `driver_ref` | yes | the driver's reference in the old system, not empty |
//! | `location_ref` | yes | the location's reference, not empty |
//! | `started_at` | yes | plug-in time |
//! | `ended_at` | yes | unplug time, not before `started_at` |
//! | `energy_kwh` | yes | energy delivered, a finite number ≥ 0 (`.` as decimal point) |
//! | `charge_point_ref` | no | the charge point at the location |
//! | `location_name` | no | the name a new location gets (sentences name places by it); empty → the reference |
//! | `timezone` | no | IANA zone of the location, e.g. `Europe/Stockholm`; empty → the default |
//!
//! Times are RFC 3339 (`2024-03-05T07:58:00+01:00`, `…Z`) or naive local wall-clock times
//! (`2024-03-05 07:58:00`, `2024-03-05T07:58:00`, optional fraction, seconds may be left out),
//! read in the row's `timezone`. A local time that happens twice when clocks go back is the
//! earlier instant; one that never happens when clocks go forward is an error for that row.
//! Parsing never stops at a bad row: every problem is reported with its line number so the
//! caller can refuse the file whole or skip the bad rows.

use std::io::{Read, Write};

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// A valid row of the import file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// Driver reference, trimmed.
    pub driver_ref: String,
    /// Location reference, trimmed.
    pub location_ref: String,
    /// The location's name, if given (not empty).
    pub location_name: Option<String>,
    /// Charge point reference, if given.
    pub charge_point_ref: Option<String>,
    /// Plug-in instant.
    pub started_at: DateTime<Utc>,
    /// Unplug instant.
    pub ended_at: DateTime<Utc>,
    /// Plug-in time on the wall clock of `timezone`.
    pub local_start: NaiveDateTime,
    /// IANA time zone name the row was read in.
    pub timezone: String,
    /// Energy delivered in kWh.
    pub energy_kwh: f64,
}

/// A row that could not be read, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Everything read from a file: the valid rows and one error per invalid row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ParseOutcome {
    /// Valid rows in file order.
    pub rows: Vec<ImportRow>,
    /// Invalid rows (and header problems, on line 1) in file order.
    pub errors: Vec<RowError>,
}

impl ParseOutcome {
    /// True when the file had no error at all.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

const REQUIRED: [&str; 5] = [
    "driver_ref",
    "location_ref",
    "started_at",
    "ended_at",
    "energy_kwh",
];

struct Columns {
    driver: usize,
    location: usize,
    started: usize,
    ended: usize,
    energy: usize,
    charge_point: Option<usize>,
    timezone: Option<usize>,
    location_name: Option<usize>,
}

/// Reads a session CSV (see the module docs). `default_tz` is used for rows without a
/// `timezone` value.
pub fn parse_sessions_csv<R: Read>(reader: R, default_tz: Tz) -> ParseOutcome {
    let mut out = ParseOutcome::default();
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(reader);
    let headers = match csv.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            out.errors.push(RowError {
                line: 1,
                message: format!("cannot read the header: {e}"),
            });
            return out;
        }
    };
    let find = |name: &str| {
        headers.iter().position(|h| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(name)
        })
    };
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| find(c).is_none())
        .collect();
    if !missing.is_empty() {
        out.errors.push(RowError {
            line: 1,
            message: format!("missing column(s): {}", missing.join(", ")),
        });
        return out;
    }
    let cols = Columns {
        driver: find("driver_ref").unwrap_or_default(),
        location: find("location_ref").unwrap_or_default(),
        started: find("started_at").unwrap_or_default(),
        ended: find("ended_at").unwrap_or_default(),
        energy: find("energy_kwh").unwrap_or_default(),
        charge_point: find("charge_point_ref"),
        timezone: find("timezone"),
        location_name: find("location_name"),
    };
    let mut record = csv::StringRecord::new();
    loop {
        let line_hint = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line_hint, |p| p.line());
                if record.iter().all(str::is_empty) {
                    continue; // tolerate blank lines, e.g. a trailing one
                }
                match parse_row(&record, &cols, default_tz, line) {
                    Ok(row) => out.rows.push(row),
                    Err(message) => out.errors.push(RowError { line, message }),
                }
            }
            Err(e) => {
                let line = e.position().map_or(line_hint, |p| p.line());
                out.errors.push(RowError {
                    line,
                    message: match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => format!("expected {expected_len} fields, found {len}"),
                        _ => e.to_string(),
                    },
                });
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break; // an I/O error: nothing more can be read
                }
            }
        }
    }
    out
}

fn parse_row(
    rec: &csv::StringRecord,
    cols: &Columns,
    default_tz: Tz,
    line: u64,
) -> Result<ImportRow, String> {
    let field = |i: usize| rec.get(i).unwrap_or("");
    let driver_ref = field(cols.driver);
    if driver_ref.is_empty() {
        return Err("driver_ref is empty".into());
    }
    let location_ref = field(cols.location);
    if location_ref.is_empty() {
        return Err("location_ref is empty".into());
    }
    let tz_name = cols.timezone.map(field).unwrap_or("");
    let tz: Tz = if tz_name.is_empty() {
        default_tz
    } else {
        tz_name
            .parse()
            .map_err(|_| format!("unknown time zone {tz_name:?}"))?
    };
    let started_at = parse_time(field(cols.started), tz).map_err(|e| format!("started_at: {e}"))?;
    let ended_at = parse_time(field(cols.ended), tz).map_err(|e| format!("ended_at: {e}"))?;
    if ended_at < started_at {
        return Err(format!(
            "ended_at {} is before started_at {}",
            ended_at.to_rfc3339(),
            started_at.to_rfc3339()
        ));
    }
    let energy_raw = field(cols.energy);
    let energy_kwh: f64 = energy_raw
        .parse()
        .map_err(|_| format!("energy_kwh {energy_raw:?} is not a number"))?;
    if !energy_kwh.is_finite() || energy_kwh < 0.0 {
        return Err(format!(
            "energy_kwh {energy_raw:?} must be a finite number ≥ 0"
        ));
    }
    let charge_point_ref = cols
        .charge_point
        .map(field)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let location_name = cols
        .location_name
        .map(field)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(ImportRow {
        line,
        driver_ref: driver_ref.to_owned(),
        location_ref: location_ref.to_owned(),
        location_name,
        charge_point_ref,
        started_at,
        ended_at,
        local_start: started_at.with_timezone(&tz).naive_local(),
        timezone: tz.name().to_owned(),
        energy_kwh,
    })
}

const NAIVE_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// Reads an RFC 3339 instant, or a naive wall-clock time in `tz`.
///
/// Ambiguous local times (clocks going back) resolve to the earlier instant; local times in
/// a spring-forward gap are an error.
pub fn parse_time(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            format!("{s:?} is neither RFC 3339 nor a local time like 2024-03-05 07:58:00")
        })?;
    local_to_utc(naive, tz)
}

/// Converts a wall-clock time in `tz` to UTC: ambiguous → earlier instant, gap → error.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<Utc>, String> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(a.with_timezone(&Utc).min(b.with_timezone(&Utc))),
        LocalResult::None => Err(format!(
            "local time {naive} does not exist in {} (clocks went forward)",
            tz.name()
        )),
    }
}

/// Error from [`convert_workplace_csv`].
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input is not the 24-column workplace file.
    #[error("line {line}: {message}")]
    Input {
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Csv(#[from] csv::Error),
}

/// Time zone assumed for the workplace-charging data set (its sites are in the USA and the
/// file gives no zone); Pacific time is a stated assumption, not a fact from the data.
pub const WORKPLACE_TZ: &str = "America/Los_Angeles";

/// How [`convert_workplace_csv_with`] maps the workplace data set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkplaceOptions {
    /// Move every session forward by this many whole weeks (weekday and local clock time
    /// unchanged), e.g. to bring the 2014–15 history into a recent window.
    pub shift_weeks: i64,
    /// Locations are the sites (`locationId`) with the stations as charge points, instead of
    /// one location per station.
    pub sites: bool,
}

/// The number of whole weeks that moves `newest` into the week before the week of `date`
/// (the last whole week before it): what `--move-to DATE` adds.
pub fn weeks_to_move(newest: NaiveDateTime, date: chrono::NaiveDate) -> i64 {
    use chrono::Datelike;
    let monday = date - chrono::TimeDelta::days(i64::from(date.weekday().num_days_from_monday()));
    let target = monday.and_hms_opt(0, 0, 0).unwrap_or_default();
    ((target - newest).num_seconds() - 1).div_euclid(7 * 86_400)
}

fn facility_name(code: &str) -> &'static str {
    match code {
        "1" => "Manufacturing",
        "2" => "Office",
        "3" => "R&D",
        _ => "Workplace",
    }
}

/// Converts the public workplace-charging data set (Asensio et al. 2021, 24 columns) to the
/// import format with [`WorkplaceOptions::default`]: see [`convert_workplace_csv_with`].
pub fn convert_workplace_csv<R: Read, W: Write>(
    input: R,
    output: W,
) -> Result<usize, ConvertError> {
    convert_workplace_csv_with(input, output, WorkplaceOptions::default())
}

/// Converts the workplace-charging data set to the import format: `userId` → `driver_ref`,
/// `stationId` → `location_ref` (or, with [`WorkplaceOptions::sites`], `locationId` →
/// `location_ref` and `stationId` → `charge_point_ref`), `created`/`ended` →
/// `started_at`/`ended_at` as local times (years written `0014`/`0015` read as 2014/2015, moved
/// by [`WorkplaceOptions::shift_weeks`]), `kwhTotal` → `energy_kwh`, and a `location_name` built
/// from the facility type and the ids (the file has no place names: "Office site 461655,
/// station 582873"); every row gets `timezone` [`WORKPLACE_TZ`]. Returns the number of rows
/// written.
pub fn convert_workplace_csv_with<R: Read, W: Write>(
    input: R,
    output: W,
    opts: WorkplaceOptions,
) -> Result<usize, ConvertError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ConvertError::Input {
                line: 1,
                message: format!("missing column {name}"),
            })
    };
    let (user, station, site, created, ended, kwh) = (
        col("userId")?,
        col("stationId")?,
        col("locationId")?,
        col("created")?,
        col("ended")?,
        col("kwhTotal")?,
    );
    let facility = headers.iter().position(|h| h == "facilityType");
    let mut wtr = csv::Writer::from_writer(output);
    wtr.write_record([
        "driver_ref",
        "location_ref",
        "location_name",
        "charge_point_ref",
        "started_at",
        "ended_at",
        "energy_kwh",
        "timezone",
    ])?;
    let mut n = 0;
    for rec in rdr.records() {
        let rec = rec?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |i: usize| rec.get(i).unwrap_or("");
        let time = |s: &str| -> Result<String, ConvertError> {
            // "0014-11-18 15:40:26" → "2014-11-18 15:40:26", then moved by whole weeks
            let fixed = match s.get(..2) {
                Some("00") => format!("20{}", &s[2..]),
                Some(_) => s.to_owned(),
                None => {
                    return Err(ConvertError::Input {
                        line,
                        message: format!("bad time {s:?}"),
                    })
                }
            };
            if opts.shift_weeks == 0 {
                return Ok(fixed);
            }
            let t = NaiveDateTime::parse_from_str(&fixed, "%Y-%m-%d %H:%M:%S").map_err(|_| {
                ConvertError::Input {
                    line,
                    message: format!("bad time {s:?}"),
                }
            })?;
            Ok((t + chrono::TimeDelta::weeks(opts.shift_weeks))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string())
        };
        let kind = facility_name(facility.map_or("", get));
        let (location_ref, name, charge_point) = if opts.sites {
            (
                get(site),
                format!("{kind} site {}", get(site)),
                get(station),
            )
        } else {
            (
                get(station),
                format!("{kind} site {}, station {}", get(site), get(station)),
                "",
            )
        };
        wtr.write_record([
            get(user),
            location_ref,
            &name,
            charge_point,
            &time(get(created))?,
            &time(get(ended))?,
            get(kwh),
            WORKPLACE_TZ,
        ])?;
        n += 1;
    }
    wtr.flush().map_err(csv::Error::from)?;
    Ok(n)
}

/// The newest `created` time of the workplace file, as a local time (years fixed).
pub fn workplace_newest_start<R: Read>(input: R) -> Result<Option<NaiveDateTime>, ConvertError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = rdr.headers()?.clone();
    let created =
        headers
            .iter()
            .position(|h| h == "created")
            .ok_or_else(|| ConvertError::Input {
                line: 1,
                message: "missing column created".into(),
            })?;
    let mut newest: Option<NaiveDateTime> = None;
    for rec in rdr.records() {
        let rec = rec?;
        let s = rec.get(created).unwrap_or("");
        let fixed = match s.get(..2) {
            Some("00") => format!("20{}", &s[2..]),
            _ => s.to_owned(),
        };
        if let Ok(t) = NaiveDateTime::parse_from_str(&fixed, "%Y-%m-%d %H:%M:%S") {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Stockholm;

    fn parse(s: &str) -> ParseOutcome {
        parse_sessions_csv(s.as_bytes(), Stockholm)
    }

    #[test]
    fn reads_rfc3339_and_naive_local_times() {
        let out = parse(
            "driver_ref,location_ref,started_at,ended_at,energy_kwh,charge_point_ref,timezone\n\
             d1,l1,2024-03-05T07:58:00+01:00,2024-03-05T09:00:00Z,12.5,cp1,\n\
             d1,l2,2024-06-01 18:00:00,2024-06-01T20:30:00,7,,America/New_York\n",
        );
        assert!(out.is_clean(), "{:?}", out.errors);
        let r = &out.rows[0];
        assert_eq!(r.started_at.to_rfc3339(), "2024-03-05T06:58:00+00:00");
        assert_eq!(r.local_start.to_string(), "2024-03-05 07:58:00");
        assert_eq!(r.timezone, "Europe/Stockholm");
        assert_eq!(r.charge_point_ref.as_deref(), Some("cp1"));
        assert_eq!(r.line, 2);
        let r = &out.rows[1];
        assert_eq!(r.started_at.to_rfc3339(), "2024-06-01T22:00:00+00:00");
        assert_eq!(r.ended_at.to_rfc3339(), "2024-06-02T00:30:00+00:00");
        assert_eq!(r.local_start.to_string(), "2024-06-01 18:00:00");
        assert_eq!(r.charge_point_ref, None);
        assert_eq!(r.line, 3);
    }

    #[test]
    fn columns_in_any_order_and_case() {
        let out = parse("Energy_kWh, ended_at,started_at,LOCATION_REF,driver_ref\n1.5,2024-01-01 10:00,2024-01-01 09:00,L,D\n");
        assert!(out.is_clean(), "{:?}", out.errors);
        assert_eq!(out.rows[0].energy_kwh, 1.5);
        assert_eq!(out.rows[0].location_ref, "L");
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let out = parse(
            "driver_ref,location_ref,started_at,ended_at,energy_kwh,timezone\n\
             d,l,2024-01-01 10:00:00,2024-01-01 09:00:00,1,\n\
             d,l,2024-01-01 10:00:00,2024-01-01 11:00:00,-1,\n\
             d,l,2024-01-01 10:00:00,2024-01-01 11:00:00,NaN,\n\
             ,l,2024-01-01 10:00:00,2024-01-01 11:00:00,1,\n\
             d,l,yesterday,2024-01-01 11:00:00,1,\n\
             d,l,2024-01-01 10:00:00,2024-01-01 11:00:00,1,Mars/Olympus\n\
             d,l,2024-01-01 10:00:00\n\
             d,l,2024-01-01 10:00:00,2024-01-01 11:00:00,1,\n",
        );
        let lines: Vec<u64> = out.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8], "{:?}", out.errors);
        assert!(out.errors[0].message.contains("before"));
        assert!(out.errors[5].message.contains("Mars/Olympus"));
        assert!(out.errors[6].message.contains("expected 6 fields"));
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].line, 9);
    }

    #[test]
    fn a_missing_column_refuses_the_file_at_line_1() {
        let out = parse("driver_ref,location_ref,started_at,energy_kwh\nd,l,2024-01-01 10:00,1\n");
        assert!(out.rows.is_empty());
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].line, 1);
        assert!(out.errors[0].message.contains("ended_at"));
    }

    #[test]
    fn dst_ambiguous_is_earliest_and_gap_is_an_error() {
        // Stockholm: clocks back 2024-10-27 03:00 CEST → 02:00 CET; forward 2024-03-31 02:00 → 03:00
        let out = parse(
            "driver_ref,location_ref,started_at,ended_at,energy_kwh\n\
             d,l,2024-10-27 02:30:00,2024-10-27 04:00:00,3\n\
             d,l,2024-03-31 02:30:00,2024-03-31 04:00:00,3\n",
        );
        assert_eq!(out.rows.len(), 1);
        let r = &out.rows[0];
        assert_eq!(r.started_at.to_rfc3339(), "2024-10-27T00:30:00+00:00");
        // 02:30 CEST to 04:00 CET is two and a half hours
        assert_eq!((r.ended_at - r.started_at).num_minutes(), 150);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].line, 3);
        assert!(out.errors[0].message.contains("does not exist"));
    }

    #[test]
    fn workplace_rows_convert_to_the_import_format() {
        let src = "sessionId,kwhTotal,dollars,created,ended,startTime,endTime,chargeTimeHrs,weekday,platform,distance,userId,stationId,locationId,managerVehicle,facilityType,Mon,Tues,Wed,Thurs,Fri,Sat,Sun,reportedZip\n\
                   1366563,7.78,0,0014-11-18 15:40:26,0014-11-18 17:11:04,15,17,1.51,Tue,android,NA,35897499,582873,461655,0,3,0,1,0,0,0,0,0,0\n";
        let mut out = Vec::new();
        assert_eq!(convert_workplace_csv(src.as_bytes(), &mut out).unwrap(), 1);
        let parsed = parse_sessions_csv(out.as_slice(), chrono_tz::UTC);
        assert!(parsed.is_clean(), "{:?}", parsed.errors);
        let r = &parsed.rows[0];
        assert_eq!(
            (r.driver_ref.as_str(), r.location_ref.as_str()),
            ("35897499", "582873")
        );
        assert_eq!(r.local_start.to_string(), "2014-11-18 15:40:26");
        assert_eq!(r.timezone, WORKPLACE_TZ);
        assert_eq!(r.started_at.to_rfc3339(), "2014-11-18T23:40:26+00:00");
        assert_eq!(r.energy_kwh, 7.78);
        assert_eq!(
            r.location_name.as_deref(),
            Some("R&D site 461655, station 582873")
        );
        assert_eq!(r.charge_point_ref, None);

        // by site, moved forward by 600 weeks: same weekday and local time
        let mut out = Vec::new();
        let opts = WorkplaceOptions {
            shift_weeks: 600,
            sites: true,
        };
        convert_workplace_csv_with(src.as_bytes(), &mut out, opts).unwrap();
        let r = &parse_sessions_csv(out.as_slice(), chrono_tz::UTC).rows[0];
        assert_eq!(r.location_ref, "461655");
        assert_eq!(r.charge_point_ref.as_deref(), Some("582873"));
        assert_eq!(r.location_name.as_deref(), Some("R&D site 461655"));
        assert_eq!(r.local_start.to_string(), "2026-05-19 15:40:26");
        assert_eq!(
            chrono::Datelike::weekday(&r.local_start),
            chrono::Weekday::Tue
        );
    }

    #[test]
    fn moving_to_a_date_lands_the_newest_session_in_the_week_before() {
        let newest =
            NaiveDateTime::parse_from_str("2015-10-04 12:44:59", "%Y-%m-%d %H:%M:%S").unwrap(); // a Sunday
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(); // a Wednesday
        let w = weeks_to_move(newest, date);
        let moved = newest + chrono::TimeDelta::weeks(w);
        assert_eq!(moved.to_string(), "2026-11-29 12:44:59"); // the Sunday before that week
        let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(weeks_to_move(newest, monday), w);
    }
}
