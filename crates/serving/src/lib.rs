//! shopflow's read side: results a reader derives from the change streams of a run,
//! as of one time, instead of the dataflow rewriting them whenever a part moves.

pub mod recall;
