//! Question: what does a sink spend per row of a complete time — sorting and consolidating
//! the time's rows, and formatting and writing them as CSV — on the largest output's rows
//! (`item_stats`: an item id and ten counters)?
//!
//! Command: `cargo bench --bench sink -- --warm-up-time 1 --measurement-time 3`
//!
//! Input: 40 000 rows (about one hourly epoch of `item_stats` at 10 M events), each row's
//! retraction and its new value, in a fixed pseudo-random order. `consolidate` is
//! differential's, as the sink calls it; `write_csv` writes the consolidated rows through
//! `item_stats`' schema to a CSV file under `bench-data/` (page cache), emptied before
//! each iteration.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use differential_dataflow::consolidation::consolidate;
use platform::stats::Stats;
use sinks::{write_changes, Envelope, SinkKind};

const ROWS: u64 = 40_000;

/// Each item's old row retracted and its new row inserted, in a scrambled order.
fn rows() -> Vec<((u64, Stats), isize)> {
    let mut rows = Vec::new();
    for i in 0..ROWS / 2 {
        let item = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 4_000_000;
        let old =
            Stats { impressions: (i % 97) as i64, clicks: (i % 13) as i64, uv: (i % 89) as i64, ..Stats::default() };
        let new = Stats { impressions: old.impressions + 1, uv: old.uv + 1, ..old };
        rows.push(((item, old), -1));
        rows.push(((item, new), 1));
    }
    let n = rows.len();
    for i in 0..n {
        rows.swap(i, (i.wrapping_mul(7919) + 13) % n);
    }
    rows
}

fn bench(c: &mut Criterion) {
    let input = rows();
    let mut group = c.benchmark_group("sink");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.bench_function("consolidate", |b| {
        b.iter_batched(|| input.clone(), |mut rows| consolidate(black_box(&mut rows)), BatchSize::LargeInput)
    });
    let mut sorted = input.clone();
    consolidate(&mut sorted);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data").join("micro-sink");
    std::fs::create_dir_all(&dir).expect("bench-data/micro-sink");
    let schema = dataflows::item_stats::schema();
    group.throughput(Throughput::Elements(sorted.len() as u64));
    // Each iteration writes into the file opened afresh (emptied) outside the timing, and
    // flushes it inside: the file holds one epoch, not every iteration's.
    group.bench_function("write_csv", |b| {
        b.iter_batched(
            || sinks::open(SinkKind::Csv, Envelope::Diff, &dir, schema.name, schema.columns).expect("open"),
            |mut writer| {
                write_changes(writer.as_mut(), Envelope::Diff, 1, black_box(&sorted), &schema).expect("write");
                writer.flush().expect("flush");
                writer
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
