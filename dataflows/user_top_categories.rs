//! `user_top_categories`: each user's top 3 current categories by interest score
//! (1·click + 3·fav + 5·cart + 10·buy), then category id ascending; only score > 0.
//!
//! ```text
//! platform.by_user (the user stage: per user, its categories' counts) ─ top 3 per user
//! ```
//!
//! Contract: at time t, for each user, rows `(rank, category, score)` for rank
//! 1..=min(3, categories with score > 0), scores over the user's whole history on the
//! items currently in each category.

use differential_dataflow::VecCollection;

use platform::model::{CategoryId, Time, UserId};
use platform::{Platform, USER_TOP_CATEGORIES};
use platform::output::{Field, Schema};

/// Categories kept per user.
pub const TOP_N: usize = USER_TOP_CATEGORIES;

pub type Ranked = (u32, CategoryId, i64);

pub fn user_top_categories<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (UserId, Ranked)> {
    p.by_user().top_categories
}

pub fn schema() -> Schema<(UserId, Ranked)> {
    Schema {
        name: "user_top_categories",
        columns: &["user_id", "rank", "category_id", "score"],
        key: 2,
        fields: |(u, (rank, c, score))| vec![Field::U(*u), Field::U(*rank as u64), Field::U(*c), Field::I(*score)],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per user, categories by 1·clicks + 3·favs + 5·carts + 10·buys: user 8 scores 12 in
    /// category 10 (two clicks and a buy) and 3 in 20 (a fav); user 9's item has no
    /// category.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("user_top_categories", shop(), T + 1000), ["7,1,10,11", "8,1,10,12", "8,2,20,3"]);
    }
}
