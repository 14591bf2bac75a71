//! Converts the public workplace-charging data set to laddkoll's import CSV.
//!
//! `cargo run -p laddkoll-ml --example convert_workplace -- IN OUT [--sites] [--move-to DATE]`
//!
//! `userId` becomes the driver, `stationId` the location (with `--sites`: the site is the
//! location and its stations are charge points); times are the file's local times (years
//! `0014`/`0015` read as 2014/2015) tagged with the assumed zone America/Los_Angeles. With
//! `--move-to YYYY-MM-DD` (or `--move-to today`) every session moves forward by the same whole
//! number of weeks so the newest falls in the week before that date's week: weekdays and local
//! clock times stay, and `laddkoll recommend`'s window (which ends now) holds the history.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::process::ExitCode;

use laddkoll_ml::import::{
    convert_workplace_csv_with, weeks_to_move, workplace_newest_start, WorkplaceOptions,
    WORKPLACE_TZ,
};

fn run(args: &[String]) -> Result<String, String> {
    let mut positional = Vec::new();
    let mut opts = WorkplaceOptions::default();
    let mut move_to: Option<chrono::NaiveDate> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sites" => opts.sites = true,
            "--move-to" => {
                let v = it.next().ok_or("--move-to needs a date")?;
                move_to = Some(if v == "today" {
                    let secs = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_err(|e| e.to_string())?
                        .as_secs();
                    chrono::DateTime::from_timestamp(secs as i64, 0)
                        .ok_or("clock out of range")?
                        .date_naive()
                } else {
                    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .map_err(|_| format!("--move-to {v:?}: not a YYYY-MM-DD date"))?
                });
            }
            _ => positional.push(a.clone()),
        }
    }
    let [input, output] = positional.as_slice() else {
        return Err(
            "usage: convert_workplace IN OUT [--sites] [--move-to YYYY-MM-DD|today]".into(),
        );
    };
    let open = || File::open(input).map_err(|e| format!("{input}: {e}"));
    if let Some(date) = move_to {
        let newest = workplace_newest_start(BufReader::new(open()?))
            .map_err(|e| format!("{input}: {e}"))?
            .ok_or_else(|| format!("{input}: no session"))?;
        opts.shift_weeks = weeks_to_move(newest, date);
    }
    let o = File::create(output).map_err(|e| format!("{output}: {e}"))?;
    let n = convert_workplace_csv_with(BufReader::new(open()?), BufWriter::new(o), opts)
        .map_err(|e| format!("{input}: {e}"))?;
    Ok(format!(
        "wrote {n} sessions to {output} (timezone {WORKPLACE_TZ}, locations: {}, moved {} weeks)",
        if opts.sites { "sites" } else { "stations" },
        opts.shift_weeks
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(msg) => {
            eprintln!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
