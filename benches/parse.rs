//! Question: how many rows per second does one core parse, per input format — native
//! events, catalog changes, UserBehavior rows (`platform::source::parse`) — and how many
//! does a worker's `SourceReader` get through a whole file (line scan, watermark, parse),
//! reading all of it (1 worker) or its share of it (worker 0 of 2)?
//!
//! Command: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`
//!
//! Input: `shopflow gen` data with a fixed seed (`generator::generate`, 100 000 events,
//! no malformed rows), written once under `bench-data/` (git-ignored) and reused. Lines
//! are parsed from memory; the reader reads the file (from the page cache after the
//! first iteration) with 1 hour epochs and 5 s lateness. Throughput is in rows: every
//! line of the file, parsed or not.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use generator::{generate, GenConfig, GenFormat};
use platform::source::{parse, Format, Line, SourceKind, SourceReader, SourceSpec};

const EVENTS: u64 = 100_000;
const SEED: u64 = 1;

/// The dataset of `format`, generated on first use: the directory holding its files.
fn dataset(format: GenFormat, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data").join(format!("micro-{name}-{EVENTS}"));
    if !dir.join(".done").exists() {
        let cfg = GenConfig { format, ..GenConfig::default_with(EVENTS, SEED, dir.clone()) };
        generate(&cfg).expect("generate the dataset");
        std::fs::write(dir.join(".done"), b"").expect("mark the dataset complete");
    }
    dir
}

/// The data lines of `path` (without a header, if `kind` has one).
fn data_lines(path: &Path, kind: SourceKind) -> Vec<Vec<u8>> {
    let text = std::fs::read(path).expect("read the dataset");
    let skip = usize::from(kind != SourceKind::Events(Format::UserBehavior));
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).skip(skip).map(<[u8]>::to_vec).collect()
}

/// Reads the whole file as worker `worker` of `peers`; returns the valid rows handed over.
fn read_all(spec: &SourceSpec, worker: usize, peers: usize) -> u64 {
    let mut reader = SourceReader::open(0, spec).expect("open the dataset");
    let mut valid = 0;
    while !reader.exhausted {
        reader
            .read_chunk(
                4096,
                worker,
                peers,
                3_600_000,
                5_000,
                |_| true,
                |line| valid += matches!(line, Line::Valid { .. }) as u64,
            )
            .expect("read the dataset");
    }
    valid
}

fn bench(c: &mut Criterion) {
    let native = dataset(GenFormat::Native, "native");
    let userbehavior = dataset(GenFormat::UserBehavior, "userbehavior");
    let files = [
        ("native_event", native.join("events.csv"), SourceKind::Events(Format::Native)),
        ("catalog", native.join("catalog.csv"), SourceKind::Catalog),
        ("userbehavior", userbehavior.join("UserBehavior.csv"), SourceKind::Events(Format::UserBehavior)),
    ];

    let mut group = c.benchmark_group("parse");
    for (name, path, kind) in &files {
        let lines = data_lines(path, *kind);
        assert!(lines.iter().all(|l| parse(l, *kind).is_ok()), "{name}: every generated row parses");
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                for line in &lines {
                    let _ = black_box(parse(black_box(line), *kind));
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("read_chunk");
    for (name, path, kind) in &files {
        let rows = data_lines(path, *kind).len() as u64;
        let spec = SourceSpec::new(path.clone(), *kind);
        assert_eq!(read_all(&spec, 0, 1), rows, "{name}: the reader hands over every row");
        group.throughput(Throughput::Elements(rows));
        for (worker, peers) in [(0, 1), (0, 2)] {
            group.bench_function(format!("{name}/worker_{worker}_of_{peers}"), |b| {
                b.iter(|| black_box(read_all(&spec, worker, peers)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
