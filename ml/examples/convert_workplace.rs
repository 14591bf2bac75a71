//! Converts the public workplace-charging data set to laddkoll's import CSV.
//!
//! `cargo run -p laddkoll-ml --example convert_workplace -- IN OUT`
//!
//! `userId` becomes the driver, `stationId` the location; times are the file's local times
//! (years `0014`/`0015` read as 2014/2015) tagged with the assumed zone America/Los_Angeles.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: convert_workplace IN OUT");
        return ExitCode::from(2);
    };
    let result = File::open(input)
        .map_err(|e| format!("{input}: {e}"))
        .and_then(|i| {
            let o = File::create(output).map_err(|e| format!("{output}: {e}"))?;
            laddkoll_ml::import::convert_workplace_csv(BufReader::new(i), BufWriter::new(o))
                .map_err(|e| format!("{input}: {e}"))
        });
    match result {
        Ok(n) => {
            eprintln!(
                "wrote {n} sessions to {output} (timezone {})",
                laddkoll_ml::import::WORKPLACE_TZ
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
