//! Business dataflows: one file per output, each a function of the platform layer
//! (`platform`) built with the operators (`operators`); neither knows a sink.
//!
//! [`outputs!`] below is the one list of outputs: each entry declares the module (the
//! file, whose doc comment is the output's contract), whether it needs catalog rows, and
//! how its change stream is built. From it come the module list, [`ALL`] (the `--outputs`
//! values and their order), [`needs_catalog`], [`columns`] (the sink schema of each
//! output) and [`attach`]; a test checks the README's tables against it.
//!
//! The outputs by case: platform outputs `item_stats` … `untagged`; case 1 (product
//! statistics) `item_display_stats` … `scene_traffic`; case 2 (recall configured by
//! operators) `rules` … `recall_user_signals` (the users' lists are merged by the reader,
//! `serving::recall`); case 3 (the ad set) `ads_curated`.

#[cfg(test)]
mod example;

use platform::output::{Attach, Field};
use platform::stats::Stats;
use platform::Platform;

/// Declares the outputs: `name, needs catalog, |platform| change stream;` per output, in
/// the order they are built and listed. `name` is the module and the file `name.rs`; its
/// `schema()` names the columns.
macro_rules! outputs {
    ($($name:ident, $catalog:literal, |$p:ident| $build:expr;)*) => {
        $(pub mod $name;)*

        /// Every output, in the order they are built and listed.
        pub const ALL: &[&str] = &[$(stringify!($name)),*];

        /// Whether output `name` is empty without catalog rows (native events without
        /// `--catalog`): it needs an item's category, online status or ad fields.
        pub fn needs_catalog(name: &str) -> bool {
            match name {
                $(stringify!($name) => $catalog,)*
                _ => false,
            }
        }

        /// The columns of output `name` (after `time,diff`), `None` for an unknown name.
        pub fn columns(name: &str) -> Option<&'static [&'static str]> {
            match name {
                $(stringify!($name) => Some($name::schema().columns),)*
                _ => None,
            }
        }

        /// The number of key columns of output `name` (its first columns), `None` for an
        /// unknown name.
        pub fn key(name: &str) -> Option<usize> {
            match name {
                $(stringify!($name) => Some($name::schema().key),)*
                _ => None,
            }
        }

        /// Builds the named output on the platform layer and attaches its sink.
        /// Panics on an unknown name: names are validated against [`ALL`] when flags are parsed.
        pub fn attach<'s>(name: &str, p: &Platform<'s>, sinks: &impl Attach) {
            match name {
                $(stringify!($name) => {
                    let $p = p;
                    sinks.attach($build, $name::schema())
                })*
                other => unreachable!("unknown output {other}"),
            }
        }
    };
}

outputs! {
    item_stats, false, |p| item_stats::item_stats(p);
    category_stats, true, |p| category_stats::category_stats(p);
    scene_stats, false, |p| scene_stats::scene_stats(p);
    user_stats, false, |p| user_stats::user_stats(p);
    category_top_items, true, |p| category_top_items::category_top_items(p);
    user_top_categories, true, |p| user_top_categories::user_top_categories(p);
    hourly_stats, false, |p| hourly_stats::hourly_stats(p);
    untagged, false, |p| untagged::untagged(p);
    item_display_stats, false, |p| item_display_stats::item_display_stats(p);
    item_rank_features, true, |p| item_rank_features::item_rank_features(p);
    category_hot_items, true, |p| category_hot_items::category_hot_items(p);
    ctr_cvr_prior, false, |p| ctr_cvr_prior::ctr_cvr_prior(p);
    scene_category_ctr_cvr, true, |p| scene_category_ctr_cvr::scene_category_ctr_cvr(p);
    scene_traffic, false, |p| scene_traffic::scene_traffic(p);
    rules, false, |p| rules::rules(p);
    recall_hot, true, |p| recall_hot::recall_hot(p).map(recall_hot::as_row);
    recall_i2i, true, |p| recall_i2i::recall_i2i(p).map(recall_i2i::as_row);
    recall_user_signals, true, |p| recall_user_signals::recall_user_signals(p).map(recall_user_signals::as_row);
    ads_curated, true, |p| ads_curated::ads_curated(p).map(ads_curated::as_row);
}

/// The column names `[key, impressions, clicks, favs, carts, buys, units, gmv_cents, extra…]`
/// of a grouped-counter output.
macro_rules! counter_columns {
    ($key:literal $(, $extra:literal)*) => {
        &[$key, "impressions", "clicks", "favs", "carts", "buys", "units", "gmv_cents" $(, $extra)*]
    };
}
pub(crate) use counter_columns;

/// `key, impressions, clicks, favs, carts, buys, units, gmv_cents, uv, buyers`.
fn stats_fields(key: Field, s: &Stats) -> Vec<Field> {
    let mut v = Vec::with_capacity(10);
    push_counter_fields(&mut v, key, s);
    v.extend([Field::I(s.uv), Field::I(s.buyers)]);
    v
}

/// Appends `key, impressions, clicks, favs, carts, buys, units, gmv_cents` to `v` (the
/// caller sizes `v` for its whole row: one allocation a row, and these rows are the
/// largest outputs).
fn push_counter_fields(v: &mut Vec<Field>, key: Field, s: &Stats) {
    v.push(key);
    v.extend(behavior_fields(s));
    v.extend([Field::I(s.units), Field::Wide(s.gmv_cents)]);
}

/// `impressions, clicks, favs, carts, buys`.
fn behavior_fields(s: &Stats) -> [Field; 5] {
    [Field::I(s.impressions), Field::I(s.clicks), Field::I(s.favs), Field::I(s.carts), Field::I(s.buys)]
}

/// The counters behind a CTR/CVR: `(impressions, clicks, buys)`.
pub type Funnel = (i64, i64, i64);

/// `impressions, clicks, buys`.
fn funnel_fields(f: &Funnel) -> [Field; 3] {
    [Field::I(f.0), Field::I(f.1), Field::I(f.2)]
}
