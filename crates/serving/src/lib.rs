//! shopflow's read side: results a reader derives from the change streams of a run,
//! as of one time, instead of the dataflow rewriting them whenever a part moves.
//!
//! | module | concern |
//! |---|---|
//! | [`recall`] | `recall_user` merged from its parts (files, or the store) |
//! | [`store`] | every output of a running job as tables, consistent as of one time |
//! | [`http`] | the HTTP API of `--serve` over the store |
//! | [`metrics`] | `/metrics` and `/v1/status` |
//! | [`dashboard`] | the live dashboard at `/` (its assets are in `assets/`) |

pub mod dashboard;
pub mod http;
pub mod metrics;
pub mod recall;
pub mod store;
