//! The base of the stateful operators: updates handed over one complete time at a time.

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::ParallelizationContract;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::TotalTime;

/// What `apply` of [`by_complete_time`] returns: `()`, or the next time to be called at.
pub trait Wake<T> {
    fn wake(self) -> Option<T>;
}

impl<T> Wake<T> for () {
    fn wake(self) -> Option<T> {
        None
    }
}

impl<T> Wake<T> for Option<T> {
    fn wake(self) -> Option<T> {
        self
    }
}

/// What the operators below hold and move: owned, clonable values (the data and difference
/// types of their input and output, as one tuple).
pub trait Owned: Clone + 'static {}
impl<X: Clone + 'static> Owned for X {}

/// Updates one activation of [`by_complete_time`] emits before it yields (it finishes
/// the time it is in).
pub const STEP_OUTPUT: usize = 1 << 20;

/// Buffers updates (delivered by `pact`) until their time is complete, and calls
/// `apply(time, updates, output)` for each complete time in increasing order, with all of
/// that time's updates (in no particular order). What `apply` pushes is emitted at that
/// time. Pending updates are kept by time, so updates far in the future (a window's
/// retractions) cost nothing until their time comes.
///
/// One activation applies complete times until it has emitted [`STEP_OUTPUT`] updates,
/// then asks to be scheduled again: when many times complete at once (the end of a
/// finite input releases a window's whole future of retractions), downstream operators
/// consume one step's output before the next is made, instead of all of it queueing.
///
/// An operator whose state changes by itself at a later time (a record it holds expires)
/// returns `Some` of the next time it must be called at even if no update arrives for it
/// (a time not after the current one is ignored); it holds that time like a pending
/// update's. The others return `()`.
pub fn by_complete_time<'s, T: TotalTime, D, R, D2, R2, W: Wake<T>>(
    input: VecCollection<'s, T, D, R>,
    name: &str,
    pact: impl ParallelizationContract<T, Vec<(D, T, R)>>,
    mut apply: impl FnMut(&T, &mut Vec<(D, R)>, &mut Vec<(D2, R2)>) -> W + 'static,
) -> VecCollection<'s, T, D2, R2>
where
    (D, R, D2, R2): Owned,
{
    // The updates of the next time to finish, gathered until it is complete.
    let mut gathered: Vec<(D, R)> = Vec::new();
    by_complete_time_absorbing(input, name, pact, move |step| match step {
        Step::Absorb(_, updates) => {
            gathered.append(updates);
            None
        }
        Step::Finish(time, out) => {
            let wake = apply(time, &mut gathered, out).wake();
            gathered.clear();
            wake
        }
    })
}

/// What [`by_complete_time_absorbing`] asks of its operator.
pub enum Step<'a, T, D, R, D2, R2> {
    /// Updates at `time`, the next time to be finished (in any number of calls, each
    /// before that time is finished); the operator takes them out of the vector.
    Absorb(&'a T, &'a mut Vec<(D, R)>),
    /// Every update at `time` was absorbed: push its output, and return `Some` of a later
    /// time to be finished at even if no update arrives for it.
    Finish(&'a T, &'a mut Vec<(D2, R2)>),
}

/// [`by_complete_time`] for an operator that folds a time's updates into its state as
/// they arrive, so they are not buffered until the time is complete: updates at the
/// earliest time still open (the input frontier), when every earlier time is finished,
/// go to `step(Absorb)` at once; updates at later times wait by time, as in
/// `by_complete_time`, and are absorbed when their time comes. Once the frontier passes a
/// time, `step(Finish)` makes its output. The state the operator reads when finishing a
/// time is exactly that of the updates at it and before.
pub fn by_complete_time_absorbing<'s, T, D, R, D2, R2, P, F>(
    input: VecCollection<'s, T, D, R>,
    name: &str,
    pact: P,
    mut step: F,
) -> VecCollection<'s, T, D2, R2>
where
    T: TotalTime,
    (D, R, D2, R2): Owned,
    P: ParallelizationContract<T, Vec<(D, T, R)>>,
    F: FnMut(Step<'_, T, D, R, D2, R2>) -> Option<T> + 'static,
{
    let scope = input.inner.scope();
    input
        .inner
        .unary_frontier(pact, name, move |_, info| {
            let activator = scope.activator_for(info.address);
            // Updates at times after `open` (or all of them, while earlier times wait to
            // be finished), by time; a time may be present with no updates (a wake).
            let mut pending: BTreeMap<T, Vec<(D, R)>> = BTreeMap::new();
            // The time whose updates are (partly) absorbed and not yet finished: before
            // every pending time.
            let mut open: Option<T> = None;
            let mut held: Option<Capability<T>> = None;
            let mut out: Vec<(D2, R2)> = Vec::new();
            let mut buffer: Vec<(D, R)> = Vec::new();
            move |(input, frontier), output| {
                // Every update still to arrive is at or after the frontier (those in
                // flight included), so the times before it are complete.
                let least = frontier.frontier().first().cloned();
                let complete = |t: &T| least.as_ref().is_none_or(|least| t < least);
                let mut yielded = false;
                if let Some(cap) = held.as_mut() {
                    // All complete times' output leaves in one session at the held
                    // capability (no later than any of them; each record carries its own
                    // time), not in a message per time: a replay with thousands of times
                    // per step would otherwise queue a mostly empty buffer per time.
                    let mut session = output.session(&*cap);
                    let mut emitted = 0;
                    loop {
                        let Some(time) = open.clone().or_else(|| pending.keys().next().cloned()) else { break };
                        if !complete(&time) {
                            break;
                        }
                        if emitted >= STEP_OUTPUT {
                            activator.activate();
                            yielded = true;
                            break;
                        }
                        if let Some(mut updates) = pending.remove(&time) {
                            step(Step::Absorb(&time, &mut updates));
                        }
                        open = None;
                        if let Some(wake) = step(Step::Finish(&time, &mut out)).filter(|wake| *wake > time) {
                            pending.entry(wake).or_default();
                        }
                        emitted += out.len();
                        session.give_iterator(out.drain(..).map(|(d, r)| (d, time.clone(), r)));
                    }
                }
                // The frontier's time is absorbed as it arrives once every time before it
                // is finished (its earlier arrivals first).
                let absorbing = least.clone().filter(|least| {
                    !yielded
                        && open.as_ref().is_none_or(|o| o == least)
                        && pending.keys().next().is_none_or(|p| p >= least)
                });
                if let Some(least) = absorbing.as_ref() {
                    if let Some(mut updates) = pending.remove(least) {
                        step(Step::Absorb(least, &mut updates));
                        open = Some(least.clone());
                    }
                }
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if held.as_ref().is_none_or(|h| cap.time() < h.time()) {
                            held = Some(cap);
                        }
                    }
                    // Messages mostly hold one time: one decision per run of equal times.
                    let mut run: Option<T> = None;
                    for (d, t, r) in data.drain(..) {
                        if run.as_ref() != Some(&t) {
                            if let Some(rt) = run.take() {
                                place(rt, &mut buffer, &absorbing, &mut open, &mut pending, &mut step);
                            }
                            run = Some(t);
                        }
                        buffer.push((d, r));
                    }
                    if let Some(rt) = run {
                        place(rt, &mut buffer, &absorbing, &mut open, &mut pending, &mut step);
                    }
                });
                // Hold no earlier time than the open and pending updates need, or the
                // output frontier would lag behind the input's.
                if let Some(cap) = held.as_mut() {
                    match open.as_ref().or_else(|| pending.keys().next()) {
                        Some(t) => cap.downgrade(t),
                        None => held = None,
                    }
                }
            }
        })
        .as_collection()
}

/// Hands `buffer` (updates at `time`) to `step` when `time` is being absorbed, else keeps
/// it pending.
fn place<T, D, R, D2, R2, F>(
    time: T,
    buffer: &mut Vec<(D, R)>,
    absorbing: &Option<T>,
    open: &mut Option<T>,
    pending: &mut BTreeMap<T, Vec<(D, R)>>,
    step: &mut F,
) where
    T: TotalTime,
    F: FnMut(Step<'_, T, D, R, D2, R2>) -> Option<T>,
{
    if absorbing.as_ref() == Some(&time) {
        step(Step::Absorb(&time, buffer));
        buffer.clear();
        *open = Some(time);
    } else {
        pending.entry(time).or_default().append(buffer);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use differential_dataflow::input::Input;
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;
    use timely::dataflow::channels::pact::Exchange;
    use timely::dataflow::ProbeHandle;

    use super::{by_complete_time_absorbing, Step};

    /// On three workers, with updates sent at the current time and at later ones: every
    /// update is absorbed at its own time, a time is absorbed only while it is the open
    /// one (every earlier time finished), and its output is made once, after all of its
    /// updates were absorbed.
    #[test]
    fn absorbs_each_time_whole_before_finishing_it() {
        for seed in 0..4u64 {
            let finished: Arc<Mutex<BTreeMap<u64, i64>>> = Arc::default();
            let sent: Arc<Mutex<BTreeMap<u64, i64>>> = Arc::default();
            let (finished_w, sent_w) = (finished.clone(), sent.clone());
            timely::execute(timely::Config::process(3), move |worker| {
                let index = worker.index() as u64;
                let mut rng = Pcg64Mcg::seed_from_u64(seed * 10 + index);
                let probe = ProbeHandle::new();
                let finished = finished_w.clone();
                let mut input = worker.dataflow::<u64, _, _>(|scope| {
                    let (input, updates) = scope.new_collection::<u64, isize>();
                    // Per operator: the open time, what it absorbed of it, the last finished.
                    let mut open: Option<u64> = None;
                    let mut absorbed = 0i64;
                    let mut last: Option<u64> = None;
                    by_complete_time_absorbing(
                        updates,
                        "Absorbing",
                        Exchange::new(|(d, _, _): &(u64, u64, isize)| *d),
                        move |step| {
                            match step {
                                Step::Absorb(time, updates) => {
                                    assert!(last.is_none_or(|l| *time > l), "absorbed {time} after finishing {last:?}");
                                    assert!(open.is_none_or(|o| o == *time), "absorbed {time} while {open:?} was open");
                                    open = Some(*time);
                                    absorbed += updates.drain(..).map(|(_, r)| r as i64).sum::<i64>();
                                }
                                Step::Finish(time, out) => {
                                    assert!(open.is_none_or(|o| o == *time), "finished {time} while {open:?} was open");
                                    assert!(last.is_none_or(|l| *time > l), "finished {time} after {last:?}");
                                    out.push((*time, std::mem::take(&mut absorbed) as isize));
                                    open = None;
                                    last = Some(*time);
                                }
                            }
                            None
                        },
                    )
                    .inspect(move |(t, time, n): &(u64, u64, isize)| {
                        assert_eq!(t, time);
                        *finished.lock().unwrap().entry(*t).or_default() += *n as i64;
                    })
                    .probe_with(&probe);
                    input
                });
                for t in 0..40u64 {
                    for _ in 0..rng.random_range(0..30) {
                        let at = t + if rng.random_bool(0.3) { rng.random_range(1..5) } else { 0 };
                        let d = rng.random_range(0..50u64);
                        input.update_at(d, at, 1);
                        *sent_w.lock().unwrap().entry(at).or_default() += 1;
                    }
                    input.advance_to(t + 1);
                    input.flush();
                    if rng.random_bool(0.5) {
                        worker.step_while(|| probe.less_than(&(t + 1)));
                    }
                }
                drop(input);
                worker.step_while(|| !probe.done());
            })
            .expect("timely runs");
            let finished = finished.lock().unwrap().clone();
            let sent = sent.lock().unwrap().clone();
            assert_eq!(finished.into_iter().filter(|(_, n)| *n != 0).collect::<BTreeMap<_, _>>(), sent, "seed {seed}");
        }
    }
}
