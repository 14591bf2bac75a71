//! The whole pure pipeline on the benchmark-size synthetic data set: 1,000,000 sessions,
//! 20,000 drivers, 500 locations (habits for every driver in parallel, occupancy, ranking,
//! spreading).
//!
//! `CARGO_TARGET_DIR=/work/target-ml cargo bench -p laddkoll-ml --bench recommend`
//!
//! Before criterion's samples it prints one timed run and the process's peak resident memory
//! (`VmHWM`), data generation included.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use laddkoll_ml::{count_drivers, recommend_all, synthetic_input, SynthConfig};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(c: &mut Criterion) {
    let t = Instant::now();
    let input = synthetic_input(&SynthConfig::benchmark(1));
    let generated = t.elapsed();
    let t = Instant::now();
    let out = recommend_all(&input, 7);
    let run = t.elapsed();
    println!(
        "synthetic data: {} sessions, {} drivers, {} locations, generated in {:.1} s",
        input.sessions.len(),
        count_drivers(&input.sessions),
        input.locations.len(),
        generated.as_secs_f64()
    );
    println!(
        "one run: {:.1} s on {} threads; {} habits, {} candidates, {} recommendations; peak RSS {:.0} MiB",
        run.as_secs_f64(),
        rayon::current_num_threads(),
        out.drivers.iter().map(|d| d.habits.len()).sum::<usize>(),
        out.candidates,
        out.recommendations,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    drop(out);

    let mut group = c.benchmark_group("recommend_all");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("1M sessions, 20k drivers, 500 locations", |b| {
        b.iter(|| recommend_all(&input, 7))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
