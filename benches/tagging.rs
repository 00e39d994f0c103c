//! Question: what does tagging cost — attributing each item's activity to its current
//! category, including re-attributing an item's history when it moves category — both as
//! the whole platform layer builds it (`platform::build`: the keyed
//! `tag_by_item` stage, probed at `Platform::tagged_items`) and as the bare `join_core` of
//! per-(item, user) activity arranged by item with the arranged item → category?
//!
//! Command: `cargo bench --bench tagging -- --warm-up-time 1 --measurement-time 3`
//!
//! Input (fixed seed): 50 000 synthetic events over 10 hourly epochs (5 000 users, items
//! skewed over 10 000), a catalog of all 10 000 items in 100 categories in the first epoch,
//! and 100 category moves of skewed (mostly popular) items in each later epoch. "platform"
//! is everything `platform::build` makes: the catalog (`latest_by_priority`), its
//! arrangements and the tagging stage (with item reach and per-user tags). "join_core" is only: events → ((item, user),
//! Stats) arranged by item, (item, category) arranged by item, `join_core`. One worker on
//! this thread; each iteration builds the dataflow, feeds the epochs one by one, and steps
//! until the output has passed each epoch. Before timing, both outputs are checked equal.

mod micro;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput};
use differential_dataflow::input::{Input, InputSession};
use micro::{epoch, observe, settle, skewed, EPOCH_MS};
use platform::model::{CatalogRow, CategoryId, Event, ItemId, Time};
use platform::stats::Stats;
use platform::{self, AdParams, InputHandles, Params};
use rand::RngExt;
use timely::dataflow::ProbeHandle;

const EPOCHS: usize = 10;
const PER_EPOCH: usize = 5_000;
const USERS: u64 = 5_000;
const ITEMS: u64 = 10_000;
const CATEGORIES: u64 = 100;
const MOVES_PER_EPOCH: usize = 100;

type Tagged = (CategoryId, ItemId);

/// One epoch's input: events, and catalog changes `(item, old category, new category)`.
struct Epoch {
    events: Vec<Event>,
    catalog: Vec<(ItemId, Option<CategoryId>, CategoryId)>,
}

fn input() -> Vec<Epoch> {
    let events = micro::events(11, EPOCHS, PER_EPOCH, USERS, ITEMS);
    let mut rng = micro::rng(13);
    let mut category: Vec<CategoryId> = (0..=ITEMS).map(|item| 1 + item % CATEGORIES).collect();
    events
        .into_iter()
        .enumerate()
        .map(|(i, events)| {
            let catalog = if i == 0 {
                (1..=ITEMS).map(|item| (item, None, category[item as usize])).collect()
            } else {
                (0..MOVES_PER_EPOCH)
                    .map(|_| {
                        let item = skewed(&mut rng, ITEMS);
                        let old = category[item as usize];
                        category[item as usize] = 1 + (old + rng.random_range(0..CATEGORIES - 1)) % CATEGORIES;
                        (item, Some(old), category[item as usize])
                    })
                    .collect()
            };
            Epoch { events, catalog }
        })
        .collect()
}

/// The inputs of one variant.
trait Feed {
    fn feed(&mut self, i: usize, epoch: &Epoch);
}

impl Feed for InputHandles {
    fn feed(&mut self, i: usize, data: &Epoch) {
        self.advance_to(epoch(i));
        for e in &data.events {
            self.events.insert(*e);
        }
        for (n, &(item, _old, category)) in data.catalog.iter().enumerate() {
            let row = CatalogRow { category, seller: 1, price_cents: 100, online: true, is_ad: false, ad_bid_cents: 0 };
            // Priority: later changes win.
            self.catalog.insert((item, (i * ITEMS as usize + n) as u64, Some(row)));
        }
        self.advance_to(epoch(i + 1));
        self.flush();
    }
}

struct JoinInputs {
    events: InputSession<Time, Event, isize>,
    item_category: InputSession<Time, (ItemId, CategoryId), isize>,
}

impl Feed for JoinInputs {
    fn feed(&mut self, i: usize, data: &Epoch) {
        self.events.advance_to(epoch(i));
        self.item_category.advance_to(epoch(i));
        for e in &data.events {
            self.events.insert(*e);
        }
        for &(item, old, new) in &data.catalog {
            if let Some(old) = old {
                self.item_category.update((item, old), -1);
            }
            self.item_category.insert((item, new));
        }
        self.events.advance_to(epoch(i + 1));
        self.item_category.advance_to(epoch(i + 1));
        self.events.flush();
        self.item_category.flush();
    }
}

#[derive(Clone, Copy)]
enum Variant {
    Platform,
    JoinCore,
}

/// Runs one variant over `input`: the number of tagged updates and, if `keep`, the tagged
/// collection's updates (`Stats` differences) consolidated.
fn run(variant: Variant, input: Arc<Vec<Epoch>>, keep: bool) -> (usize, Vec<(Tagged, Time, Stats)>) {
    timely::execute_directly(move |worker| {
        let probe = ProbeHandle::new();
        let (mut inputs, seen) = worker.dataflow::<Time, _, _>(|scope| match variant {
            Variant::Platform => {
                let ads = AdParams { refresh_ms: EPOCH_MS, min_impressions: 0, min_pctr: 0, set_size: 10 };
                let (inputs, platform) = platform::build(scope, Params { epoch_ms: EPOCH_MS, ads });
                (Box::new(inputs) as Box<dyn Feed>, observe(platform.tagged_items, &probe, keep))
            }
            Variant::JoinCore => {
                let (events_in, events) = scope.new_collection::<Event, isize>();
                let (item_category_in, item_category) = scope.new_collection::<(ItemId, CategoryId), isize>();
                let activity =
                    events.explode(|e| Some(((e.item, e.user), Stats::of(&e)))).arrange_by_key_named("Activity");
                let tagged = activity
                    .join_core(item_category.arrange_by_key_named("ItemCategory"), |item, _user, c| Some((*c, *item)));
                let inputs = JoinInputs { events: events_in, item_category: item_category_in };
                (Box::new(inputs) as Box<dyn Feed>, observe(tagged, &probe, keep))
            }
        });
        for (i, data) in input.iter().enumerate() {
            inputs.feed(i, data);
            settle(worker, &probe, i);
        }
        seen.take()
    })
}

fn bench(c: &mut Criterion) {
    let input = Arc::new(input());
    let (rows, expected) = run(Variant::JoinCore, input.clone(), true);
    assert!(run(Variant::Platform, input.clone(), true).1 == expected, "platform tagging differs from join_core");
    println!("tagged: {rows} updates, {} after consolidation", expected.len());

    let mut group = c.benchmark_group("tagging");
    group.throughput(Throughput::Elements((EPOCHS * PER_EPOCH) as u64));
    for (name, variant) in [("platform", Variant::Platform), ("join_core", Variant::JoinCore)] {
        group.bench_function(name, |b| b.iter(|| black_box(run(variant, input.clone(), false).0)));
    }
    group.finish();
}

fn main() {
    micro::main(bench);
}
