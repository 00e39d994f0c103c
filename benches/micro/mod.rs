//! Shared by the dataflow micro-benchmarks (`counters`, `topk`, `tagging`): fixed-seed
//! synthetic inputs and a one-worker driver that feeds them epoch by epoch.
#![allow(dead_code)] // each bench uses a part

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use differential_dataflow::difference::Semigroup;
use differential_dataflow::input::InputSession;
use differential_dataflow::{ExchangeData, VecCollection};
use platform::model::{Behavior, Event, Scene, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

/// One epoch of logical time (hourly, as the throughput bench runs).
pub const EPOCH_MS: u64 = 3_600_000;

/// The start of epoch `i`.
pub fn epoch(i: usize) -> Time {
    i as Time * EPOCH_MS
}

pub fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed)
}

/// An id in `1..=n`, skewed towards small ids (density ∝ 1/√id), like popular items.
pub fn skewed(rng: &mut Pcg64Mcg, n: u64) -> u64 {
    let u: f64 = rng.random();
    1 + ((u * u) * n as f64) as u64 % n
}

/// `per_epoch × epochs` events: skewed items in `1..=items`, uniform users in
/// `1..=users`, behaviours in roughly the generator's mix (70 % impressions).
pub fn events(seed: u64, epochs: usize, per_epoch: usize, users: u64, items: u64) -> Vec<Vec<Event>> {
    let mut rng = rng(seed);
    let scene = Scene::new(b"search").expect("valid scene");
    (0..epochs)
        .map(|i| {
            (0..per_epoch)
                .map(|_| {
                    let behavior = match rng.random_range(0..100u32) {
                        0..70 => Behavior::Impression,
                        70..90 => Behavior::Click,
                        90..93 => Behavior::Fav,
                        93..97 => Behavior::Cart,
                        _ => Behavior::Buy,
                    };
                    let buy = behavior == Behavior::Buy;
                    Event {
                        ts_ms: epoch(i) + rng.random_range(0..EPOCH_MS),
                        user: rng.random_range(1..=users),
                        item: skewed(&mut rng, items),
                        scene,
                        behavior,
                        quantity: buy as u32,
                        amount_cents: if buy { rng.random_range(100..100_000) } else { 0 },
                    }
                })
                .collect()
        })
        .collect()
}

/// A dataflow under test: its output, made of its one input collection.
pub type Build<D, O> = for<'s> fn(VecCollection<'s, Time, D>) -> VecCollection<'s, Time, O>;

/// Steps `worker` until `probe` has passed the end of epoch `i`.
pub fn settle(worker: &mut Worker, probe: &ProbeHandle<Time>, i: usize) {
    worker.step_while(|| probe.less_than(&epoch(i + 1)));
}

/// What an observed output saw: the number of updates, and the updates if kept.
pub struct Seen<O, R> {
    count: Cell<usize>,
    kept: RefCell<Vec<(O, Time, R)>>,
}

impl<O: ExchangeData, R: ExchangeData + Semigroup> Seen<O, R> {
    /// The number of updates, and the kept updates consolidated.
    pub fn take(&self) -> (usize, Vec<(O, Time, R)>) {
        let mut kept = self.kept.take();
        differential_dataflow::consolidation::consolidate_updates(&mut kept);
        (self.count.get(), kept)
    }
}

/// Probes `output` with `probe` and counts (and, if `keep`, keeps) its updates.
pub fn observe<O, R>(output: VecCollection<'_, Time, O, R>, probe: &ProbeHandle<Time>, keep: bool) -> Rc<Seen<O, R>>
where
    O: ExchangeData,
    R: ExchangeData + Semigroup,
{
    let seen = Rc::new(Seen { count: Cell::new(0), kept: RefCell::default() });
    let sink = seen.clone();
    output.inner.probe_with(probe).sink(Pipeline, "Observe", move |(input, _)| {
        input.for_each(|_, data| {
            sink.count.set(sink.count.get() + data.len());
            if keep {
                sink.kept.borrow_mut().append(data);
            }
        })
    });
    seen
}

/// Runs a one-worker dataflow that `build` makes of one input collection. Epoch `i`'s
/// records enter at time `epoch(i)` with difference +1, and the worker steps until the
/// output has passed that epoch before the next is fed (as `shopflow run` syncs on its
/// probe). Returns the number of output updates and, if `keep`, the output consolidated
/// (for checking that two implementations agree).
pub fn run_epochs<D, O>(input: Arc<Vec<Vec<D>>>, keep: bool, build: Build<D, O>) -> (usize, Vec<(O, Time, isize)>)
where
    D: ExchangeData + Send + Sync,
    O: ExchangeData + Send,
{
    timely::execute_directly(move |worker| {
        let mut session = InputSession::<Time, D, isize>::new();
        let probe = ProbeHandle::new();
        let seen = worker.dataflow::<Time, _, _>(|scope| observe(build(session.to_collection(scope)), &probe, keep));
        for (i, records) in input.iter().enumerate() {
            session.advance_to(epoch(i));
            for d in records {
                session.insert(d.clone());
            }
            session.advance_to(epoch(i + 1));
            session.flush();
            settle(worker, &probe, i);
        }
        seen.take()
    })
}

/// Checks that every variant's output on `input` equals the first's, then benches each
/// variant as `group/name/param`.
pub fn compare<D, O>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    param: &str,
    input: Vec<Vec<D>>,
    variants: &[(&str, Build<D, O>)],
) where
    D: ExchangeData + Send + Sync,
    O: ExchangeData + Send,
{
    let input = Arc::new(input);
    let expected = run_epochs(input.clone(), true, variants[0].1).1;
    for &(name, build) in &variants[1..] {
        assert!(run_epochs(input.clone(), true, build).1 == expected, "{name} differs from {}", variants[0].0);
    }
    for &(name, build) in variants {
        group.bench_with_input(BenchmarkId::new(name, param), &input, |b, input| {
            b.iter(|| black_box(run_epochs(input.clone(), false, build).0))
        });
    }
}

/// A bench's `main`: runs `bench` with 10 samples (an iteration is a whole dataflow run)
/// and the command line's settings, as `criterion_group!` / `criterion_main!` would.
pub fn main(bench: fn(&mut Criterion)) {
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
