//! `category_top_items`: the top 10 items of each current category by buys, then GMV,
//! then item id (ascending); only items with at least one buy.
//!
//! ```text
//! tagged_items ((category,item), Stats) ─ diff (buys, gmv) ─ reduce_total per category: top 10
//! ```
//!
//! Contract: at time t, for each category, rows `(rank, item, buys, gmv)` for rank
//! 1..=min(10, items with buys); an item's buys and GMV cover its whole history, and it
//! ranks in the category it belongs to at t. A change of rank retracts the old row.

use differential_dataflow::VecCollection;

use platform::model::{CategoryId, ItemId, Time};
use operators::rank::top_n;
use operators::{MapDiff, ReduceTotal};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

/// Items kept per category.
pub const TOP_N: usize = 10;

pub type Ranked = (u32, ItemId, i64, i128);

pub fn category_top_items<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (CategoryId, Ranked)> {
    let sales = p.tagged_items.clone().map_diff(|s: Stats| (s.buys, s.gmv_cents));
    sales.reduce_total("CategoryTopItems", |_category, input: &[(ItemId, (i64, i128))], output: &mut Vec<Ranked>| {
        // Ranked by (buys, gmv) desc, then item asc: the one ranking rule with a pair as score.
        let sellers = input.iter().filter(|(_, (buys, _))| *buys > 0).map(|(item, sales)| (*item, *sales));
        let mut ranked = Vec::new();
        top_n(sellers, TOP_N, &mut ranked);
        output.extend(ranked.into_iter().map(|(rank, item, (buys, gmv))| (rank, item, buys, gmv)));
    })
}

pub fn schema() -> Schema<(CategoryId, Ranked)> {
    Schema {
        name: "category_top_items",
        columns: &["category_id", "rank", "item_id", "buys", "gmv_cents"],
        key: 2,
        fields: |(c, (rank, item, buys, gmv))| {
            vec![Field::U(*c), Field::U(*rank as u64), Field::U(*item), Field::I(*buys), Field::Wide(*gmv)]
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per category, the items with buys ranked by buys, then GMV: only item 1 sold.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("category_top_items", shop(), T + 1000), ["10,1,1,2,1000"]);
    }
}
