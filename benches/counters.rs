//! Question: how fast are the grouped counters — `operators::CountTotalHashed::count_total_hashed`
//! (a hash map per key, updates applied once their time is complete) against differential's
//! `count_total` (an arrangement) on the same input — with few keys and with many?
//!
//! Command: `cargo bench --bench counters -- --warm-up-time 1 --measurement-time 3`
//!
//! Input: 100 000 synthetic events (fixed seed) over 10 hourly epochs, counted per item
//! with `Stats` differences (as `Platform::item_totals` does), for 1 000 and for 100 000
//! items. One worker on this thread (`timely::execute_directly`); each iteration builds the
//! dataflow, feeds the epochs one by one, and steps until the output has passed each epoch.
//! Before timing, both operators' outputs are checked to be equal.

mod micro;

use criterion::{Criterion, Throughput};
use differential_dataflow::operators::CountTotal;
use differential_dataflow::VecCollection;
use micro::compare;
use operators::CountTotalHashed;
use platform::model::{Event, ItemId, Time};
use platform::stats::Stats;

const EPOCHS: usize = 10;
const PER_EPOCH: usize = 10_000;

fn per_item(events: VecCollection<'_, Time, Event>) -> VecCollection<'_, Time, ItemId, Stats> {
    events.explode(|e| Some((e.item, Stats::of(&e))))
}

fn hashed(events: VecCollection<'_, Time, Event>) -> VecCollection<'_, Time, (ItemId, Stats)> {
    per_item(events).count_total_hashed("ItemCounts")
}

fn differential(events: VecCollection<'_, Time, Event>) -> VecCollection<'_, Time, (ItemId, Stats)> {
    per_item(events).count_total()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("counters");
    group.throughput(Throughput::Elements((EPOCHS * PER_EPOCH) as u64));
    for items in [1_000u64, 100_000] {
        let input = micro::events(5, EPOCHS, PER_EPOCH, 10_000, items);
        compare(
            &mut group,
            &format!("{items}_items"),
            input,
            &[("count_total_hashed", hashed), ("dd_count_total", differential)],
        );
    }
    group.finish();
}

fn main() {
    micro::main(bench);
}
