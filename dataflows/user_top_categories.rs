//! `user_top_categories`: each user's top 3 current categories by interest score
//! (1·click + 3·fav + 5·cart + 10·buy), then category id ascending; only score > 0.
//!
//! ```text
//! tagged_users ─ map (user,category), diff score ─ reduce_total per user: top 3
//! ```
//!
//! Contract: at time t, for each user, rows `(rank, category, score)` for rank
//! 1..=min(3, categories with score > 0), scores over the user's whole history on the
//! items currently in each category.

use differential_dataflow::VecCollection;

use crate::model::{CategoryId, Time, UserId};
use crate::operators::{map_diff, reduce_total};
use crate::platform::Platform;
use crate::sink::{Field, Schema};
use crate::stats::Stats;

/// Categories kept per user.
pub const TOP_N: usize = 3;

pub type Ranked = (u32, CategoryId, i64);

pub fn user_top_categories<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (UserId, Ranked)> {
    let scores =
        map_diff(p.tagged_users.clone().map(|(category, user)| (user, category)), |s: Stats| s.score() as isize);
    reduce_total(scores, "UserTopCategories", |_user, input: &[(CategoryId, isize)], output: &mut Vec<Ranked>| {
        let mut scored: Vec<(i64, CategoryId)> =
            input.iter().filter(|(_, score)| *score > 0).map(|(c, score)| (*score as i64, *c)).collect();
        scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rank, (score, category)) in scored.into_iter().take(TOP_N).enumerate() {
            output.push((rank as u32 + 1, category, score));
        }
    })
}

pub fn schema() -> Schema<(UserId, Ranked)> {
    Schema {
        name: "user_top_categories",
        columns: &["user_id", "rank", "category_id", "score"],
        key: 2,
        fields: |(u, (rank, c, score))| vec![Field::U(*u), Field::U(*rank as u64), Field::U(*c), Field::I(*score)],
    }
}
