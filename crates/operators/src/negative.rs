//! Negative multiplicities where an operator's contract rules them out.
//!
//! A top-k over counts, a neighbour ranking or a set of records means nothing when an
//! accumulation goes below zero: upstream retracted what it never inserted, a bug. Such an
//! operator does not hand the accumulation to its logic; it leaves the record out and
//! reports it here, per operator name, for the process (as Materialize routes such rows to
//! an error stream instead of computing with them). A driver checks [`seen`] as times
//! complete and fails the run, naming the operator.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A difference that can say whether it is negative: for a tuple, any component is.
pub trait Signed {
    fn is_negative(&self) -> bool;
}

macro_rules! signed_int {
    ($($t:ty),*) => { $(impl Signed for $t { fn is_negative(&self) -> bool { *self < 0 } })* };
}
signed_int!(i8, i16, i32, i64, i128, isize);

impl<A: Signed, B: Signed> Signed for (A, B) {
    fn is_negative(&self) -> bool {
        self.0.is_negative() || self.1.is_negative()
    }
}

/// Per operator name, how many negative accumulations it met in this process.
static SEEN: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Records that operator `name` met `count` negative accumulations.
pub fn report(name: &str, count: u64) {
    if count > 0 {
        *SEEN.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default() += count;
    }
}

/// The operators that met negative accumulations in this process so far, with how many.
pub fn seen() -> Vec<(String, u64)> {
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(n, c)| (n.clone(), *c)).collect()
}
