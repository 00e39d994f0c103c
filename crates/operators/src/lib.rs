//! Custom differential operators for totally ordered time, as extension traits on
//! `VecCollection` (as differential's own `CountTotal`): import the trait, call the method.
//! Nothing here knows the shop domain; the platform and the dataflows build on them.
//!
//! Each operator applies updates only once their time is complete (the input frontier has
//! passed it), so arrival order and the worker that read them never change the result.
//!
//! | trait | module | what it keeps |
//! |---|---|---|
//! | [`MapDiff`], [`SumLocally`] | [`diff`] | nothing (a rewrite of differences; a per-worker pre-sum) |
//! | [`LatestByPriority`] | [`latest`] | the current value per key of a prioritised change log |
//! | [`ReduceTotal`] | [`reduce`] | per key its accumulation and last output (small groups: top-k) |
//! | [`TopCounts`] | [`top_counts`] | per key its counts and a short ranked list (neighbour lists) |
//! | [`CountTotalHashed`], [`ThresholdTotalHashed`] | [`count`] | per key its accumulation in a hash map |
//! | [`PairsWithin`] | [`pairs`] | per key its latest records in a window, and a queue of their expiry times (co-occurrence pairs) |
//! | [`Windowed`] | [`windows`] | nothing (a sliding window as retractions; period boundaries) |
//! | [`Route`] | [`route`] | nothing (each record to one of several streams) |
//!
//! All but the first two and the last two are built on [`complete::by_complete_time`], which buffers
//! updates until their time is complete and hands them over one time at a time, in order,
//! or (`TopCounts`) on [`complete::by_complete_time_absorbing`], which hands the updates
//! of the earliest open time over as they arrive and asks for that time's output once it
//! is complete.
//! [`rank`] is the one ranking rule (score desc, key asc) the top-k logics share;
//! [`arrange`] arranges with its size accounted; [`small_map`] holds the many small
//! per-key tables of a large state; [`negative`] is where an operator that
//! requires non-negative multiplicities reports one it met.
//!
//! Every operator has randomized unit tests against a plain computation or differential's
//! own operator on the same input, at every time.

pub mod arrange;
pub mod complete;
pub mod count;
pub mod diff;
mod keyed;
pub mod latest;
pub mod negative;
pub mod pairs;
pub mod rank;
pub mod reduce;
pub mod route;
pub mod small_map;
pub mod top_counts;
pub mod windows;

#[cfg(test)]
mod testing;

pub use count::{CountTotalHashed, ThresholdTotalHashed};
pub use diff::{MapDiff, SumLocally};
pub use latest::LatestByPriority;
pub use negative::Signed;
pub use pairs::PairsWithin;
pub use reduce::ReduceTotal;
pub use route::Route;
pub use top_counts::TopCounts;
pub use windows::Windowed;

/// What every time type of these operators is: totally ordered, so a time is complete once
/// the frontier has passed it.
pub trait TotalTime:
    timely::progress::Timestamp + timely::order::TotalOrder + differential_dataflow::lattice::Lattice
{
}

impl<T: timely::progress::Timestamp + timely::order::TotalOrder + differential_dataflow::lattice::Lattice> TotalTime
    for T
{
}
