//! shopflow: a real-time e-commerce data platform on timely and differential dataflow.
//!
//! Layers, in the order data flows through them:
//! - [`source`]: files → rows, each worker parsing its own share, with watermarks;
//! - [`platform`]: inputs, the current catalog, tagging ([`tagging`]), shared arrangements
//!   (built with [`arranged::arrange`], which accounts for their size);
//! - [`operators`]: custom operators for totally ordered time;
//! - [`dataflows`]: one business dataflow per output (the top-level `dataflows/` folder);
//! - [`sink`]: change streams `time,diff,<columns>` to files or stdout.
//!
//! [`run`] drives a worker; [`cli`] is the command line; [`generator`] makes datasets.

pub mod arranged;
pub mod base;
pub mod changelog;
pub mod cli;
pub mod config_inputs;
#[path = "../dataflows/mod.rs"]
pub mod dataflows;
pub mod generator;
pub mod latency;
pub mod manifest;
pub mod model;
pub mod operators;
pub mod platform;
pub mod rates;
pub mod recall;
pub mod rules;
pub mod run;
pub mod sink;
pub mod sort;
pub mod source;
pub mod spool;
pub mod stats;
pub mod tagging;
pub mod user_stage;
pub mod utc;
pub mod windows;
