//! `hourly_stats`: tumbling UTC hours × scene, counters and GMV over all events.
//!
//! The window is that of the event's *own* timestamp, not of its logical time: a late
//! event (one whose epoch had closed) corrects the hour it belongs to, at the time it
//! is processed.
//!
//! ```text
//! events ─ explode ((hour(ts), scene), Stats::of) ─ sum_locally ─ count_total_hashed
//! ```

use differential_dataflow::VecCollection;

use platform::model::{Scene, Time};
use operators::{CountTotalHashed, SumLocally};
use platform::Platform;
use platform::output::{Field, Schema};
use platform::stats::Stats;

/// Window length: one hour.
pub const WINDOW_MS: u64 = 3_600_000;

pub fn hourly_stats<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, ((u64, Scene), Stats)> {
    let counters = p.events.clone().explode(|e| Some(((e.ts_ms - e.ts_ms % WINDOW_MS, e.scene), Stats::of(&e))));
    counters.sum_locally().count_total_hashed("HourlyStats")
}

pub fn schema() -> Schema<((u64, Scene), Stats)> {
    Schema {
        name: "hourly_stats",
        columns: &["window_start_ms", "scene", "impressions", "clicks", "favs", "carts", "buys", "gmv_cents"],
        key: 2,
        fields: |((window, scene), s)| {
            let mut v = vec![Field::U(*window), Field::S(*scene)];
            v.extend(super::behavior_fields(s));
            v.push(Field::Wide(s.gmv_cents));
            v
        },
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// Per hour of the events' own timestamps and scene (every event of the shop falls in
    /// the hour starting 1699999200000).
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("hourly_stats", shop(), T + 1000), ["1699999200000,home_feed,1,2,0,0,0,0", "1699999200000,search,1,2,1,0,2,1000"]);
    }
}
