//! `category_hot_items` (case 1): the 20 hottest online items of each category over the
//! last hour, by hot score.
//!
//! ```text
//! platform.recent_online ─ explode ((category,item), hot score) ─ reduce_total per category: top 20
//! ```
//!
//! Contract (docs/cases-contract.md): per category, the items online at t in that
//! category with hot_score > 0 over the 1-hour window, top 20 by hot_score desc, item_id
//! asc, ranks 1..=20. A change of rank retracts the old row.

use differential_dataflow::VecCollection;

use crate::model::{CategoryId, ItemId, Time};
use crate::operators::reduce_total;
use crate::platform::Platform;
use crate::sink::{Field, Schema};

/// Items kept per category.
pub const TOP_N: usize = 20;

/// `(rank, item, hot_score)`.
pub type Ranked = (u32, ItemId, i64);

pub fn category_hot_items<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (CategoryId, Ranked)> {
    let scores = p.recent_online().explode(|(item, (category, s))| Some(((category, item), s.score() as isize)));
    reduce_total(scores, "CategoryHotItems", |_category, input: &[(ItemId, isize)], output: &mut Vec<Ranked>| {
        top_by_score(input.iter().map(|(item, score)| (*item, *score as i64)), TOP_N, output)
    })
}

/// Pushes `(rank, id, score)` for the `n` entries with the highest positive score (ties:
/// smaller id first) — the ranking every top-n output of the cases uses.
pub fn top_by_score<K: Ord + Copy>(entries: impl Iterator<Item = (K, i64)>, n: usize, output: &mut Vec<(u32, K, i64)>) {
    let mut scored: Vec<(i64, K)> = entries.filter(|(_, s)| *s > 0).map(|(k, s)| (s, k)).collect();
    let n = n.min(scored.len());
    if n == 0 {
        return;
    }
    let by_rank = |a: &(i64, K), b: &(i64, K)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    if n < scored.len() {
        scored.select_nth_unstable_by(n - 1, by_rank);
        scored.truncate(n);
    }
    scored.sort_unstable_by(by_rank);
    output.extend(scored.into_iter().enumerate().map(|(rank, (score, k))| (rank as u32 + 1, k, score)));
}

pub fn schema() -> Schema<(CategoryId, Ranked)> {
    Schema {
        name: "category_hot_items",
        columns: &["category_id", "rank", "item_id", "hot_score"],
        key: 2,
        fields: |(c, (rank, item, score))| {
            vec![Field::U(*c), Field::U(*rank as u64), Field::U(*item), Field::I(*score)]
        },
    }
}
