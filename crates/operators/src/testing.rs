//! The harness of the operators' randomized tests: feed a sequence of times' updates to an
//! operator on 1 and 3 workers and compare the accumulated output at every time with what
//! a plain computation (or differential's own operator) says.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use differential_dataflow::{ExchangeData, VecCollection};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Exchange, Inspect, Probe};
use timely::dataflow::ProbeHandle;

type Accumulated<O> = BTreeMap<O, isize>;

/// Feeds `times[t]` at time `t` (on worker 0), builds `build(input)` on every worker and
/// checks, once each time is complete, the output accumulated so far against `want(t)`;
/// with 1 and with 3 workers.
pub fn check_each_time<D, O, B, W>(times: &[Vec<(D, isize)>], build: B, want: W)
where
    D: ExchangeData + Sync,
    O: ExchangeData,
    B: for<'s> Fn(VecCollection<'s, u64, D>) -> VecCollection<'s, u64, O> + Send + Sync + 'static,
    W: Fn(usize) -> Accumulated<O>,
{
    let build = Arc::new(build);
    for workers in [1, 3] {
        let got = run(times, workers, build.clone());
        for (t, have) in got.iter().enumerate() {
            assert_eq!(have, &want(t), "{workers} workers, time {t}");
        }
    }
}

/// As [`check_each_time`], against another dataflow on the same input (differential's own
/// operator) instead of a plain computation.
pub fn check_against<D, O, B, R>(times: &[Vec<(D, isize)>], build: B, reference: R)
where
    D: ExchangeData + Sync,
    O: ExchangeData,
    B: for<'s> Fn(VecCollection<'s, u64, D>) -> VecCollection<'s, u64, O> + Send + Sync + 'static,
    R: for<'s> Fn(VecCollection<'s, u64, D>) -> VecCollection<'s, u64, O> + Send + Sync + 'static,
{
    let want = run(times, 1, Arc::new(reference));
    assert!(want.iter().any(|w| !w.is_empty()), "the reference output is never non-empty: a vacuous test");
    check_each_time(times, build, |t| want[t].clone());
}

/// The output accumulated up to each time.
fn run<D, O, B>(times: &[Vec<(D, isize)>], workers: usize, build: Arc<B>) -> Vec<Accumulated<O>>
where
    D: ExchangeData + Sync,
    O: ExchangeData,
    B: for<'s> Fn(VecCollection<'s, u64, D>) -> VecCollection<'s, u64, O> + Send + Sync + 'static,
{
    let expected = times.len();
    let times = Arc::new(times.to_vec());
    let result: Arc<Mutex<Vec<Accumulated<O>>>> = Arc::default();
    let out = result.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let probe = ProbeHandle::new();
        let updates: Arc<Mutex<Vec<(O, u64, isize)>>> = Arc::default();
        let seen = updates.clone();
        let mut input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, collection) = scope.new_collection::<D, isize>();
            build(collection)
                .inner
                .exchange(|_| 0)
                .inspect(move |update| seen.lock().unwrap().push(update.clone()))
                .map(|_| ())
                .probe_with(&probe);
            input
        });
        let mut acc: Accumulated<O> = BTreeMap::new();
        for (t, batch) in times.iter().enumerate() {
            if worker.index() == 0 {
                for (d, r) in batch {
                    input.update(d.clone(), *r);
                }
            }
            input.advance_to(t as u64 + 1);
            input.flush();
            worker.step_while(|| probe.less_than(&(t as u64 + 1)));
            if worker.index() == 0 {
                for (o, time, r) in updates.lock().unwrap().drain(..) {
                    assert!(time <= t as u64, "an update at {time} seen while completing {t}");
                    *acc.entry(o).or_default() += r;
                }
                acc.retain(|_, r| *r != 0);
                out.lock().unwrap().push(acc.clone());
            }
        }
    })
    .expect("timely runs");
    let got = std::mem::take(&mut *result.lock().unwrap());
    assert_eq!(got.len(), expected);
    got
}
