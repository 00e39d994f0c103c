//! Business dataflows: one file per output, each a function of the platform layer.
//!
//! | output | file |
//! |---|---|
//! | `item_stats` | `item_stats.rs` |
//! | `category_stats` | `category_stats.rs` |
//! | `scene_stats` | `scene_stats.rs` |
//! | `user_stats` | `user_stats.rs` |
//! | `category_top_items` | `category_top_items.rs` |
//! | `user_top_categories` | `user_top_categories.rs` |
//! | `hourly_stats` | `hourly_stats.rs` |
//! | `untagged` | `untagged.rs` |
//! | **case 1: product statistics** | |
//! | `item_display_stats` | `item_display_stats.rs` |
//! | `item_rank_features` | `item_rank_features.rs` |
//! | `category_hot_items` | `category_hot_items.rs` |
//! | `item_ctr_cvr` | `item_ctr_cvr.rs` |
//! | `ctr_cvr_prior` | `ctr_cvr_prior.rs` |
//! | `scene_category_ctr_cvr` | `scene_category_ctr_cvr.rs` |
//! | `scene_traffic` | `scene_traffic.rs` |
//! | **case 2: recall configured by operators** | |
//! | `rules` | `rules.rs` |
//! | `recall_hot` | `recall_hot.rs` |
//! | `recall_i2i` | `recall_i2i.rs` |
//! | `recall_user_signals` | `recall_user_signals.rs` (the lists: merged by the reader, `crate::recall`) |
//! | **case 3: ad set** | |
//! | `ads_curated` | `ads_curated.rs` |

pub mod ads_curated;
pub mod category_hot_items;
pub mod category_stats;
pub mod category_top_items;
pub mod ctr_cvr_prior;
pub mod hourly_stats;
pub mod item_ctr_cvr;
pub mod item_display_stats;
pub mod item_rank_features;
pub mod item_stats;
pub mod recall_hot;
pub mod recall_i2i;
pub mod recall_user_signals;
pub mod rules;
pub mod scene_category_ctr_cvr;
pub mod scene_stats;
pub mod scene_traffic;
pub mod untagged;
pub mod user_stats;
pub mod user_top_categories;

use crate::platform::Platform;
use crate::sink::{Field, Sinks};
use crate::stats::Stats;

/// Every output, in the order they are built and listed.
pub const ALL: &[&str] = &[
    "item_stats",
    "category_stats",
    "scene_stats",
    "user_stats",
    "category_top_items",
    "user_top_categories",
    "hourly_stats",
    "untagged",
    "item_display_stats",
    "item_rank_features",
    "category_hot_items",
    "item_ctr_cvr",
    "ctr_cvr_prior",
    "scene_category_ctr_cvr",
    "scene_traffic",
    "rules",
    "recall_hot",
    "recall_i2i",
    "recall_user_signals",
    "ads_curated",
];

/// Outputs that are empty without catalog rows (native events without `--catalog`): they
/// need an item's category, its online status or its ad fields.
pub const NEED_CATALOG: &[&str] = &[
    "category_stats",
    "category_top_items",
    "user_top_categories",
    "item_rank_features",
    "category_hot_items",
    "scene_category_ctr_cvr",
    "recall_hot",
    "recall_i2i",
    "recall_user_signals",
    "ads_curated",
];

/// Builds the named output on the platform layer and attaches its sink.
/// Panics on an unknown name: names are validated against [`ALL`] when flags are parsed.
pub fn attach<'s>(name: &str, p: &Platform<'s>, sinks: &Sinks) {
    match name {
        "item_stats" => sinks.attach(item_stats::item_stats(p), item_stats::schema()),
        "category_stats" => sinks.attach(category_stats::category_stats(p), category_stats::schema()),
        "scene_stats" => sinks.attach(scene_stats::scene_stats(p), scene_stats::schema()),
        "user_stats" => sinks.attach(user_stats::user_stats(p), user_stats::schema()),
        "category_top_items" => sinks.attach(category_top_items::category_top_items(p), category_top_items::schema()),
        "user_top_categories" => {
            sinks.attach(user_top_categories::user_top_categories(p), user_top_categories::schema())
        }
        "hourly_stats" => sinks.attach(hourly_stats::hourly_stats(p), hourly_stats::schema()),
        "untagged" => sinks.attach(untagged::untagged(p), untagged::schema()),
        "item_display_stats" => sinks.attach(item_display_stats::item_display_stats(p), item_display_stats::schema()),
        "item_rank_features" => sinks.attach(item_rank_features::item_rank_features(p), item_rank_features::schema()),
        "category_hot_items" => sinks.attach(category_hot_items::category_hot_items(p), category_hot_items::schema()),
        "item_ctr_cvr" => sinks.attach(item_ctr_cvr::item_ctr_cvr(p), item_ctr_cvr::schema()),
        "ctr_cvr_prior" => sinks.attach(ctr_cvr_prior::ctr_cvr_prior(p), ctr_cvr_prior::schema()),
        "scene_category_ctr_cvr" => {
            sinks.attach(scene_category_ctr_cvr::scene_category_ctr_cvr(p), scene_category_ctr_cvr::schema())
        }
        "scene_traffic" => sinks.attach(scene_traffic::scene_traffic(p), scene_traffic::schema()),
        "rules" => sinks.attach(rules::rules(p), rules::schema()),
        "recall_hot" => sinks.attach(recall_hot::recall_hot(p).map(recall_hot::as_row), recall_hot::schema()),
        "recall_i2i" => sinks.attach(recall_i2i::recall_i2i(p).map(recall_i2i::as_row), recall_i2i::schema()),
        "recall_user_signals" => {
            sinks.attach(recall_user_signals::recall_user_signals(p), recall_user_signals::schema())
        }
        "ads_curated" => sinks.attach(ads_curated::ads_curated(p).map(ads_curated::as_row), ads_curated::schema()),
        other => unreachable!("unknown output {other}"),
    }
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
    let mut v = counter_fields(key, s);
    v.extend([Field::I(s.uv), Field::I(s.buyers)]);
    v
}

/// `key, impressions, clicks, favs, carts, buys, units, gmv_cents`.
fn counter_fields(key: Field, s: &Stats) -> Vec<Field> {
    let mut v = vec![key];
    v.extend(behavior_fields(s));
    v.extend([Field::I(s.units), Field::Wide(s.gmv_cents)]);
    v
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
