//! `item_ctr_cvr` (case 1): the counters behind each item's smoothed CTR and CVR.
//!
//! ```text
//! platform.item_totals ─ map (item, (impressions, clicks, buys))
//! ```
//!
//! Contract (docs/cases-contract.md): per item with impressions, clicks or buys (all
//! events up to t): those three counts. The smoothed rates are derived by the reader
//! from them and the global prior of [`super::ctr_cvr_prior`] (`rates::smoothed_ctr`,
//! `rates::smoothed_cvr`): the prior moves every hour, so publishing the smoothed value
//! would rewrite every item once an hour; a row here changes only with the item's own
//! events.

use differential_dataflow::VecCollection;

use platform::model::{ItemId, Time};
use platform::Platform;
use platform::output::{Field, Schema};

use super::{funnel_fields, Funnel};

pub fn item_ctr_cvr<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, (ItemId, Funnel)> {
    p.item_totals.clone().flat_map(|(item, s)| {
        let f = (s.impressions, s.clicks, s.buys);
        (f != (0, 0, 0)).then_some((item, f))
    })
}

pub fn schema() -> Schema<(ItemId, Funnel)> {
    Schema {
        name: "item_ctr_cvr",
        columns: &["item_id", "impressions", "clicks", "buys"],
        key: 1,
        fields: |(item, f)| {
            let mut v = vec![Field::U(*item)];
            v.extend(funnel_fields(f));
            v
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per item, the counters its smoothed CTR and CVR are derived from (impressions,
    /// clicks, buys).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("item_ctr_cvr", shop(), T + 3_600_000), ["1,1,2,2", "2,1,1,0", "4,0,1,0"]);
    }
}
