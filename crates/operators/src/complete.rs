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
pub fn by_complete_time<'s, T, D, R, D2, R2, P, F, W>(
    input: VecCollection<'s, T, D, R>,
    name: &str,
    pact: P,
    mut apply: F,
) -> VecCollection<'s, T, D2, R2>
where
    T: TotalTime,
    D: Clone + 'static,
    R: Clone + 'static,
    D2: Clone + 'static,
    R2: Clone + 'static,
    P: ParallelizationContract<T, Vec<(D, T, R)>>,
    F: FnMut(&T, &mut Vec<(D, R)>, &mut Vec<(D2, R2)>) -> W + 'static,
    W: Wake<T>,
{
    let scope = input.inner.scope();
    input
        .inner
        .unary_frontier(pact, name, move |_, info| {
            let activator = scope.activator_for(info.address);
            let mut pending: BTreeMap<T, Vec<(D, R)>> = BTreeMap::new();
            let mut held: Option<Capability<T>> = None;
            let mut out: Vec<(D2, R2)> = Vec::new();
            let mut buffer: Vec<(D, R)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        if held.as_ref().is_none_or(|h| cap.time() < h.time()) {
                            held = Some(cap);
                        }
                    }
                    // Messages mostly hold one time: one map probe per run of equal times.
                    let mut run: Option<T> = None;
                    for (d, t, r) in data.drain(..) {
                        if run.as_ref() != Some(&t) {
                            if let Some(rt) = run.take() {
                                pending.entry(rt).or_default().append(&mut buffer);
                            }
                            run = Some(t);
                        }
                        buffer.push((d, r));
                    }
                    if let Some(rt) = run {
                        pending.entry(rt).or_default().append(&mut buffer);
                    }
                });
                let Some(cap) = held.as_mut() else { return };
                // All complete times' output leaves in one session at the held capability
                // (no later than any of them; each record carries its own time), not in a
                // message per time: a replay with thousands of times per step would
                // otherwise queue a mostly empty buffer per time between operators.
                let mut session = output.session(&*cap);
                let mut emitted = 0;
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    if emitted >= STEP_OUTPUT {
                        activator.activate();
                        break;
                    }
                    let (time, mut batch) = entry.remove_entry();
                    if let Some(wake) = apply(&time, &mut batch, &mut out).wake().filter(|wake| *wake > time) {
                        pending.entry(wake).or_default();
                    }
                    emitted += out.len();
                    session.give_iterator(out.drain(..).map(|(d, r)| (d, time.clone(), r)));
                }
                drop(session);
                // Hold no earlier time than the pending updates need, or the output
                // frontier would lag behind the input's.
                match pending.keys().next() {
                    Some(t) => cap.downgrade(t),
                    None => held = None,
                }
            }
        })
        .as_collection()
}
