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

use platform::model::{CategoryId, ItemId, Time};
use operators::rank::top_n_positive;
use operators::ReduceTotal;
use platform::Platform;
use platform::output::{Field, Schema};

/// Items kept per category.
pub const TOP_N: usize = 20;

/// `(rank, item, hot_score)`.
pub type Ranked = (u32, ItemId, i64);

pub fn category_hot_items<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (CategoryId, Ranked)> {
    let scores = p.recent_online().explode(|(item, (category, s))| Some(((category, item), s.score() as isize)));
    scores.reduce_total("CategoryHotItems", |_category, input: &[(ItemId, isize)], output: &mut Vec<Ranked>| {
        top_n_positive(input.iter().map(|(item, score)| (*item, *score as i64)), TOP_N, output)
    })
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

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per category, its online items ranked by last-hour hot score.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("category_hot_items", shop(), T + 1000), ["10,1,1,22", "10,2,2,1", "20,1,3,3"]);
    }
}
