//! The harness of each dataflow's `#[cfg(test)]` example: a few events, catalog rows and
//! rules at given logical times, the platform built on one worker, one output attached;
//! the output's rows (as a CSV reader sees them, after `time,diff`) once every time is
//! complete. The examples read as documentation of their output; the reference tests of
//! the binary (`tests/`) check every output exhaustively.

use std::cell::RefCell;
use std::rc::Rc;

use differential_dataflow::{ExchangeData, VecCollection};
use platform::model::{Behavior, CatalogRow, Event, Scene, Time};
use platform::output::{Attach, Schema};
use platform::{AdParams, Params};
use timely::dataflow::operators::Inspect;

/// Inputs at their logical times.
#[derive(Default)]
pub struct Example {
    pub events: Vec<(Time, Event)>,
    pub catalog: Vec<(Time, (u64, u64, Option<CatalogRow>))>,
    pub rules: &'static str,
}

/// An event of `user` on `item` in `scene` at `ts_ms` (a buy of one unit for `price` cents).
pub fn event(ts_ms: u64, user: u64, item: u64, scene: &str, behavior: Behavior, price: u64) -> Event {
    let buy = behavior == Behavior::Buy;
    Event {
        ts_ms,
        user,
        item,
        scene: Scene::new(scene.as_bytes()).unwrap(),
        behavior,
        quantity: buy as u32,
        amount_cents: if buy { price } else { 0 },
    }
}

/// An online catalog row of `category` (not an ad).
pub fn listed(category: u64) -> Option<CatalogRow> {
    Some(CatalogRow { category, seller: 1, price_cents: 100, online: true, is_ad: false, ad_bid_cents: 0 })
}

/// An online catalog row of `category`, an ad bidding `bid_cents`.
pub fn advertised(category: u64, bid_cents: u64) -> Option<CatalogRow> {
    Some(CatalogRow { category, seller: 2, price_cents: 300, online: true, is_ad: true, ad_bid_cents: bid_cents })
}

/// Collects the rows of the one output attached, as text.
#[derive(Default)]
struct Collect(Rc<RefCell<Vec<(String, Time, isize)>>>);

impl Attach for Collect {
    fn attach<'s, D: ExchangeData>(&self, rows: VecCollection<'s, Time, D>, schema: Schema<D>) {
        let seen = self.0.clone();
        rows.inner.inspect(move |(d, t, r)| {
            let text: Vec<String> = (schema.fields)(d).iter().map(|f| f.to_string()).collect();
            seen.borrow_mut().push((text.join(","), *t, *r as isize));
        });
    }
}

/// The rows output `name` holds at time `at` (1-second epochs), sorted: the updates at
/// times ≤ `at`, accumulated once every time is complete.
pub fn rows(name: &'static str, example: Example, at: Time) -> Vec<String> {
    let epoch_ms = 1000;
    timely::execute_directly(move |worker| {
        let collect = Collect::default();
        let seen = collect.0.clone();
        let params =
            Params { epoch_ms, ads: AdParams { refresh_ms: 300_000, min_impressions: 1, min_pctr: 0, set_size: 10 } };
        let mut inputs = worker.dataflow::<Time, _, _>(|scope| {
            let (inputs, platform) = platform::build(scope, params);
            crate::attach(name, &platform, &collect);
            inputs
        });
        let rules = platform::rules::parse(example.rules).expect("the example's rules parse");
        for rule in rules {
            inputs.rules.insert(rule);
        }
        for (t, e) in &example.events {
            inputs.events.update_at(*e, *t, 1);
        }
        for (t, c) in &example.catalog {
            inputs.catalog.update_at(*c, *t, 1);
        }
        inputs.close();
        while worker.step() {}
        let mut acc: std::collections::BTreeMap<String, isize> = Default::default();
        for (row, _, r) in seen.borrow_mut().drain(..).filter(|(_, t, _)| *t <= at) {
            *acc.entry(row).or_default() += r;
        }
        acc.into_iter()
            .filter(|(_, r)| *r != 0)
            .map(|(row, r)| if r == 1 { row } else { format!("{row} x{r}") })
            .collect()
    })
}

/// The start of the examples' first epoch (1-second epochs).
pub const T: Time = 1_700_000_000_000;

/// The shop every example runs: items 1 and 2 (an ad bidding 30 cents) in category 10,
/// item 3 in category 20 (all online from `T`), item 4 without a catalog row; in the first epoch (`T`) user 7 sees,
/// clicks and buys item 1 (500 cents) in `search`, user 8 sees and clicks item 2 in
/// `home_feed`; in the second (`T + 1000`) user 8 clicks item 1 in `home_feed`, favours
/// item 3 and buys item 1 in `search`, and user 9 clicks item 4. Scene `search` has rules:
/// hot lists of 2 (click 1, fav 3, cart 5, buy 10), i2i lists of 2, users' lists of 5.
pub fn shop() -> Example {
    use Behavior::*;
    Example {
        events: vec![
            (T, event(T + 100, 7, 1, "search", Impression, 0)),
            (T, event(T + 200, 7, 1, "search", Click, 0)),
            (T, event(T + 300, 7, 1, "search", Buy, 500)),
            (T, event(T + 400, 8, 2, "home_feed", Impression, 0)),
            (T, event(T + 500, 8, 2, "home_feed", Click, 0)),
            (T + 1000, event(T + 1100, 8, 1, "home_feed", Click, 0)),
            (T + 1000, event(T + 1200, 8, 3, "search", Fav, 0)),
            (T + 1000, event(T + 1300, 8, 1, "search", Buy, 500)),
            (T + 1000, event(T + 1400, 9, 4, "search", Click, 0)),
        ],
        catalog: vec![(T, (1, 0, listed(10))), (T, (2, 0, advertised(10, 30))), (T, (3, 0, listed(20)))],
        rules: "[scenes.search]\nhot = { top_n = 2, click = 1, fav = 3, cart = 5, buy = 10 }\ni2i = { top_n = 2 }\n\
                user = { top_k = 5, hot_weight = 1, i2i_weight = 1, exclude_bought = true }\n",
    }
}
