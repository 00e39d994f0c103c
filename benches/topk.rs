//! Question: how fast is top-K maintenance — `operators::ReduceTotal::reduce_total` keeping the
//! top 10 per key (hash maps, only touched keys recomputed) against differential's `reduce`
//! (arrangements in and out) with the same logic — for a few large groups and for many
//! small ones?
//!
//! Command: `cargo bench --bench topk -- --warm-up-time 1 --measurement-time 3`
//!
//! Input: 100 000 `(key, value)` records (fixed seed) over 10 hourly epochs, each +1; a
//! key's values are ranked by accumulated count (descending, then value), and the output
//! is `(key, (rank, value, count))` for ranks 1..=10. Shapes: "categories" is 200 keys
//! × values skewed over 20 000 items (as `category_top_items`); "users" is 20 000 keys ×
//! values skewed over 200 categories (as `user_top_categories`). One worker on this thread;
//! each iteration builds the dataflow, feeds the epochs one by one, and steps until the
//! output has passed each epoch. Before timing, both outputs are checked to be equal.

mod micro;

use criterion::{Criterion, Throughput};
use differential_dataflow::VecCollection;
use micro::{compare, skewed};
use operators::ReduceTotal;
use platform::model::Time;
use rand::RngExt;

const EPOCHS: usize = 10;
const PER_EPOCH: usize = 10_000;
const K: usize = 10;

type Ranked = (u32, u64, isize);

/// The top `K` of `values` by count (descending), then value (ascending).
fn top(values: impl Iterator<Item = (u64, isize)>, out: &mut Vec<Ranked>) {
    let mut ranked: Vec<(u64, isize)> = values.filter(|(_, n)| *n > 0).collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out.extend(ranked.into_iter().take(K).enumerate().map(|(i, (v, n))| (i as u32 + 1, v, n)));
}

fn hashed(input: VecCollection<'_, Time, (u64, u64)>) -> VecCollection<'_, Time, (u64, Ranked)> {
    input.reduce_total("TopK", |_k, values: &[(u64, isize)], out: &mut Vec<Ranked>| top(values.iter().copied(), out))
}

fn differential(input: VecCollection<'_, Time, (u64, u64)>) -> VecCollection<'_, Time, (u64, Ranked)> {
    input.reduce(|_k, values: &[(&u64, isize)], out: &mut Vec<(Ranked, isize)>| {
        let mut ranked = Vec::with_capacity(K);
        top(values.iter().map(|(v, n)| (**v, *n)), &mut ranked);
        out.extend(ranked.into_iter().map(|r| (r, 1)));
    })
}

/// `(key, value)` records: keys uniform in `1..=keys`, values skewed over `1..=values`.
fn records(seed: u64, keys: u64, values: u64) -> Vec<Vec<(u64, u64)>> {
    let mut rng = micro::rng(seed);
    (0..EPOCHS)
        .map(|_| (0..PER_EPOCH).map(|_| (rng.random_range(1..=keys), skewed(&mut rng, values))).collect())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("topk");
    group.throughput(Throughput::Elements((EPOCHS * PER_EPOCH) as u64));
    for (shape, keys, values) in [("categories", 200, 20_000), ("users", 20_000, 200)] {
        compare(&mut group, shape, records(7, keys, values), &[("reduce_total", hashed), ("dd_reduce", differential)]);
    }
    group.finish();
}

fn main() {
    micro::main(bench);
}
