//! Independent reference for the `shopflow` contract (README, section "Semantics").
//!
//! Three parts, all plain sequential Rust (no timely, no differential, nothing from `src/`):
//!
//! * a seeded random input generator (native events + catalog, or UserBehavior rows)
//!   that deliberately exercises the corner cases of the contract;
//! * a literal, from-scratch reference: for every logical time `t` of any valid input
//!   row it recomputes the complete state of each of the eight outputs;
//! * a checker that parses the binary's change streams, checks their basic contract and
//!   compares the accumulated state with the reference at every `t`.
#![allow(dead_code)]

pub use crate::support::BIN;

mod gen;
mod minimize;
mod outputs;
mod reference;
mod scenario;

// Each test file uses some of these.
#[allow(unused_imports)]
pub use {gen::*, minimize::*, outputs::*, reference::*, scenario::*};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

/// The production-case outputs (docs/cases-contract.md): their reference and checker.
pub mod cases;

/// The eight outputs and their columns (after `time,diff`), in README order.
pub const OUTPUTS: [(&str, &str); 8] = [
    ("item_stats", "item_id,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers"),
    ("category_stats", "category_id,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers"),
    ("scene_stats", "scene,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers"),
    ("user_stats", "user_id,impressions,clicks,favs,carts,buys,units,gmv_cents,items"),
    ("category_top_items", "category_id,rank,item_id,buys,gmv_cents"),
    ("user_top_categories", "user_id,rank,category_id,score"),
    ("hourly_stats", "window_start_ms,scene,impressions,clicks,favs,carts,buys,gmv_cents"),
    ("untagged", "item_id,events"),
];

pub const NATIVE_HEADER: &str = "ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents";
pub const CATALOG_HEADER: &str = "ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents";
pub const REJECTED_HEADER: &str = "file,line,reason,raw";

const HOUR_MS: u64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Native,
    UserBehavior,
}

impl Format {
    pub fn arg(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::UserBehavior => "userbehavior",
        }
    }
}
