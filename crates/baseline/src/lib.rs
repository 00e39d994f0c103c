//! The from-scratch baseline of the incremental bench: plain Rust (hash maps, one pass over
//! the events, nothing written, no timely or differential) computing the state of the
//! outputs at one time, so that the bench can set "time to make a batch visible" against
//! "time to recompute everything".
//!
//! [`platform`] computes the eight platform outputs over rows that each carry their
//! item's category (the bench's catalog is each item's first category). [`cases`] computes
//! the eleven production-case outputs of `docs/cases-contract.md` at a time `t` from the
//! events with their logical times and the catalog at `t`; `tests/cases.rs`
//! checks it against the independent reference of the case tests on random inputs.

use std::cmp::Reverse;

use differential_dataflow::difference::Semigroup;
use platform::model::{Behavior, CatalogRow, CategoryId, Event, ItemId, Scene, Time, UserId};
use platform::rules::{Rule, Strategy};
use platform::stats::Stats;
use platform::AdParams;
use rustc_hash::{FxHashMap, FxHashSet};

// The windows, periods and list lengths of the contract, as the dataflows define them.
use dataflows::category_hot_items::TOP_N as CATEGORY_HOT_TOP;
use dataflows::item_display_stats::{DISPLAY_PERIOD_MS as DISPLAY_PERIOD, DISPLAY_WINDOW_MS as DISPLAY_WINDOW};
use dataflows::recall_i2i::{I2I_GAP_MS as I2I_GAP, I2I_LATEST, I2I_WINDOW_MS as I2I_WINDOW};
use dataflows::recall_user_signals::{Signals, TOP_CATEGORIES};
use platform::{PRIOR_PERIOD_MS as PRIOR_PERIOD, RECENT_WINDOW_MS as RECENT_WINDOW};

// =====================================================================================
// Platform outputs
// =====================================================================================

/// The eight platform outputs of `rows`, from scratch, in hash maps (the catalog: each
/// item's first category). Returns the number of result rows.
pub fn platform(rows: &[(Event, CategoryId)]) -> usize {
    let mut category: FxHashMap<ItemId, CategoryId> = FxHashMap::default();
    for (e, c) in rows {
        category.entry(e.item).or_insert(*c);
    }
    let mut item: FxHashMap<ItemId, Stats> = FxHashMap::default();
    let mut item_users: FxHashMap<(ItemId, u64), (bool, bool)> = FxHashMap::default();
    let mut cat: FxHashMap<CategoryId, Stats> = FxHashMap::default();
    let mut cat_users: FxHashMap<(CategoryId, u64), bool> = FxHashMap::default();
    let mut scene: FxHashMap<Scene, Stats> = FxHashMap::default();
    let mut scene_users: FxHashMap<(Scene, u64), bool> = FxHashMap::default();
    let mut user: FxHashMap<u64, Stats> = FxHashMap::default();
    let mut user_cat: FxHashMap<(u64, CategoryId), i64> = FxHashMap::default();
    let mut cat_item: FxHashMap<(CategoryId, ItemId), (i64, i128)> = FxHashMap::default();
    let mut hourly: FxHashMap<(u64, Scene), Stats> = FxHashMap::default();
    for (e, _) in rows {
        let s = Stats::of(e);
        let c = category[&e.item];
        let bought = s.buys > 0;
        item.entry(e.item).or_default().plus_equals(&s);
        let reach = item_users.entry((e.item, e.user)).or_default();
        *reach = (true, reach.1 || bought);
        cat.entry(c).or_default().plus_equals(&s);
        *cat_users.entry((c, e.user)).or_default() |= bought;
        scene.entry(e.scene).or_default().plus_equals(&s);
        *scene_users.entry((e.scene, e.user)).or_default() |= bought;
        user.entry(e.user).or_default().plus_equals(&s);
        *user_cat.entry((e.user, c)).or_default() += s.score();
        let sales = cat_item.entry((c, e.item)).or_default();
        *sales = (sales.0 + s.buys, sales.1 + s.gmv_cents);
        hourly.entry((e.ts_ms - e.ts_ms % 3_600_000, e.scene)).or_default().plus_equals(&s);
    }
    for (&(i, u), &(_, b)) in &item_users {
        let s = item.get_mut(&i).expect("item");
        s.uv += 1;
        s.buyers += b as i64;
        user.get_mut(&u).expect("user").uv += 1;
    }
    for (&(c, _), &b) in &cat_users {
        let s = cat.get_mut(&c).expect("category");
        s.uv += 1;
        s.buyers += b as i64;
    }
    for (&(sc, _), &b) in &scene_users {
        let s = scene.get_mut(&sc).expect("scene");
        s.uv += 1;
        s.buyers += b as i64;
    }
    // Top 10 items per category by (buys, gmv), top 3 categories per user by score.
    let mut by_cat: FxHashMap<CategoryId, Vec<(i64, i128, ItemId)>> = FxHashMap::default();
    for (&(c, i), &(b, g)) in &cat_item {
        if b > 0 {
            by_cat.entry(c).or_default().push((b, g, i));
        }
    }
    let mut top_items = 0;
    for v in by_cat.values_mut() {
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        top_items += v.len().min(10);
    }
    let mut by_user: FxHashMap<u64, Vec<(i64, CategoryId)>> = FxHashMap::default();
    for (&(u, c), &s) in &user_cat {
        if s > 0 {
            by_user.entry(u).or_default().push((s, c));
        }
    }
    let mut top_cats = 0;
    for v in by_user.values_mut() {
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        top_cats += v.len().min(3);
    }
    // Every item of UserBehavior data has a catalog row: `untagged` is empty.
    item.len() + cat.len() + scene.len() + user.len() + top_items + top_cats + hourly.len()
}

// =====================================================================================
// Production-case outputs
// =====================================================================================

const BETA: u128 = 100;

/// What [`cases`] reads.
pub struct CaseInput<'a> {
    /// The valid events, each with its logical time (any order; those after `t` are skipped).
    pub events: &'a [(Time, Event)],
    /// Each item's catalog row at `t` (an item without one is absent).
    pub catalog: &'a FxHashMap<ItemId, CatalogRow>,
    /// The catalog at the last ad refresh, `tau_R(t)` (what `ads_curated` shows at `t`).
    pub ads_catalog: &'a FxHashMap<ItemId, CatalogRow>,
    /// The recall rules in force at `t`.
    pub rules: &'a [Rule],
    pub ads: AdParams,
    pub epoch_ms: u64,
    /// The time of the state (no batch base).
    pub t: Time,
}

/// Impressions, clicks, favs, carts, buys.
pub type Funnel = [u64; 5];

/// The state at `t` of the eleven case outputs, typed, each sorted by its columns.
#[derive(Default, Debug)]
pub struct CaseOutputs {
    /// item, sales_30d, units_30d, gmv_30d_cents, buyers_30d.
    pub display: Vec<(ItemId, u64, u64, u64, u64)>,
    /// item, window funnel, ctr (micro-units), hot score.
    pub rank: Vec<(ItemId, Funnel, Option<u128>, u64)>,
    /// category, rank, item, hot score.
    pub category_hot: Vec<(CategoryId, usize, ItemId, u64)>,
    /// scene, category, impressions, clicks, buys.
    pub scene_category_rates: Vec<(Scene, CategoryId, u64, u64, u64)>,
    /// scene, impressions share, clicks share, gmv share.
    pub traffic: Vec<(Scene, Option<u128>, Option<u128>, Option<u128>)>,
    /// scene, strategy, params.
    pub rules: Vec<(Scene, &'static str, String)>,
    /// scene, category, its hot items ranked as (item, score).
    pub recall_hot: Vec<(Scene, CategoryId, Vec<(ItemId, i64)>)>,
    /// scene, item, its neighbours ranked as (neighbour, users).
    pub recall_i2i: Vec<(Scene, ItemId, Vec<(ItemId, i64)>)>,
    /// user, signals.
    pub recall_user_signals: Vec<(UserId, Signals)>,
    /// rank, item, category, bid, pctr, ecpm (micro-units).
    pub ads: Vec<(usize, ItemId, CategoryId, u64, u128, u128)>,
    /// The prior: impressions, clicks, buys, ctr, cvr (no row while all counts are 0).
    pub prior: Vec<(u128, u128, u128, Option<u128>, Option<u128>)>,
}

impl CaseOutputs {
    pub fn rows(&self) -> usize {
        self.display.len()
            + self.rank.len()
            + self.category_hot.len()
            + self.scene_category_rates.len()
            + self.traffic.len()
            + self.rules.len()
            + self.recall_hot.len()
            + self.recall_i2i.len()
            + self.recall_user_signals.len()
            + self.ads.len()
            + self.prior.len()
    }
}

fn ceil_to(t: u64, x: u64) -> u64 {
    t.div_ceil(x) * x
}

/// `tau_P(t)`: the greatest multiple kP with `ceil_E(kP) <= t` (an output on P-boundaries
/// shows its plain state at this time).
fn tau(t: u64, p: u64, e: u64) -> u64 {
    let mut k = t / p;
    while k > 0 && ceil_to(k * p, e) > t {
        k -= 1;
    }
    k * p
}

/// `floor((2 n 10^6 + d) / (2 d))`: n / d in micro-units, rounded half up; `None` if d = 0.
fn micro(n: u128, d: u128) -> Option<u128> {
    (d > 0).then(|| (2 * n * 1_000_000 + d) / (2 * d))
}

fn hot_score(f: &Funnel) -> u64 {
    f[1] + 3 * f[2] + 5 * f[3] + 10 * f[4]
}

fn slot(b: Behavior) -> usize {
    match b {
        Behavior::Impression => 0,
        Behavior::Click => 1,
        Behavior::Fav => 2,
        Behavior::Cart => 3,
        Behavior::Buy => 4,
    }
}

/// Global impressions, clicks, buys (the prior).
#[derive(Clone, Copy, Default)]
struct Prior {
    impressions: u128,
    clicks: u128,
    buys: u128,
}

impl Prior {
    fn add(&mut self, counted: bool, b: Behavior) {
        match b {
            _ if !counted => {}
            Behavior::Impression => self.impressions += 1,
            Behavior::Click => self.clicks += 1,
            Behavior::Buy => self.buys += 1,
            _ => {}
        }
    }

    fn ctr(&self, impressions: u64, clicks: u64) -> Option<u128> {
        if self.impressions == 0 {
            return None;
        }
        micro(clicks as u128 * self.impressions + BETA * self.clicks, (impressions as u128 + BETA) * self.impressions)
    }
}

/// Sorts `v` by score desc, then id asc, and keeps the first `n`.
fn top<S: Ord + Copy, I: Ord + Copy>(v: &mut Vec<(S, I)>, n: usize) {
    v.sort_unstable_by_key(|&(s, i)| (Reverse(s), i));
    v.truncate(n);
}

/// The eleven case outputs at `input.t`, from scratch.
pub fn cases(input: &CaseInput) -> CaseOutputs {
    let t = input.t;
    let e = input.epoch_ms;
    // The plain times of the outputs on period boundaries, and of their priors.
    let (display_t, prior_t) = (tau(t, DISPLAY_PERIOD, e), tau(t, PRIOR_PERIOD, e));
    let ads_t = tau(t, input.ads.refresh_ms, e);
    let ads_prior_t = tau(ads_t, PRIOR_PERIOD, e);
    // Window ends: an event is in a window at t iff lt <= t < ep(ts) + W'.
    let ends = |w: u64| ceil_to(w, e);
    let (display_w, recent_w, i2i_w) = (ends(DISPLAY_WINDOW), ends(RECENT_WINDOW), ends(I2I_WINDOW));
    let online = |item: &ItemId| input.catalog.get(item).is_some_and(|r| r.online);

    // One pass over the events.
    let mut prior = Prior::default();
    let mut ads_prior = Prior::default();
    // Impressions and clicks of the ad items up to `ads_t`.
    let mut ad_counts: FxHashMap<ItemId, (u64, u64)> = FxHashMap::default();
    let mut scene_category: FxHashMap<(Scene, CategoryId), Funnel> = FxHashMap::default();
    let mut display: FxHashMap<ItemId, (u64, u64, u64)> = FxHashMap::default();
    let mut buyers: FxHashSet<(ItemId, UserId)> = FxHashSet::default();
    let mut recent: FxHashMap<ItemId, Funnel> = FxHashMap::default();
    let mut traffic: FxHashMap<Scene, [u128; 3]> = FxHashMap::default();
    let mut user_recent: FxHashMap<UserId, Vec<(ItemId, Behavior)>> = FxHashMap::default();
    let mut user_i2i: FxHashMap<UserId, Vec<(u64, ItemId)>> = FxHashMap::default();
    for &(lt, ev) in input.events {
        if lt > t {
            continue;
        }
        let b = slot(ev.behavior);
        prior.add(lt <= prior_t, ev.behavior);
        ads_prior.add(lt <= ads_prior_t, ev.behavior);
        if lt <= ads_t && input.ads_catalog.get(&ev.item).is_some_and(|r| r.is_ad) {
            let c = ad_counts.entry(ev.item).or_default();
            match ev.behavior {
                Behavior::Impression => c.0 += 1,
                Behavior::Click => c.1 += 1,
                _ => {}
            }
        }
        if let Some(row) = input.catalog.get(&ev.item) {
            scene_category.entry((ev.scene, row.category)).or_default()[b] += 1;
        }
        let ep = ev.ts_ms - ev.ts_ms % e;
        if ev.behavior == Behavior::Buy && lt <= display_t && display_t < ep.saturating_add(display_w) {
            let d = display.entry(ev.item).or_default();
            *d = (d.0 + 1, d.1 + ev.quantity as u64, d.2 + ev.amount_cents);
            buyers.insert((ev.item, ev.user));
        }
        if t < ep.saturating_add(recent_w) {
            recent.entry(ev.item).or_default()[b] += 1;
            let tr = traffic.entry(ev.scene).or_default();
            match ev.behavior {
                Behavior::Impression => tr[0] += 1,
                Behavior::Click => tr[1] += 1,
                Behavior::Buy => tr[2] += ev.amount_cents as u128,
                _ => {}
            }
            user_recent.entry(ev.user).or_default().push((ev.item, ev.behavior));
        }
        if matches!(ev.behavior, Behavior::Click | Behavior::Buy) && t < ep.saturating_add(i2i_w) {
            user_i2i.entry(ev.user).or_default().push((ev.ts_ms, ev.item));
        }
    }
    let mut out = CaseOutputs::default();

    // item_display_stats
    let mut distinct: FxHashMap<ItemId, u64> = FxHashMap::default();
    for (item, _) in &buyers {
        *distinct.entry(*item).or_default() += 1;
    }
    out.display = display.iter().map(|(&i, &(s, u, g))| (i, s, u, g, distinct[&i])).collect();

    // item_rank_features, category_hot_items
    let mut hot_by_category: FxHashMap<CategoryId, Vec<(u64, ItemId)>> = FxHashMap::default();
    for (item, f) in &recent {
        if !online(item) {
            continue;
        }
        let hot = hot_score(f);
        out.rank.push((*item, *f, micro(f[1] as u128, f[0] as u128), hot));
        if hot > 0 {
            hot_by_category.entry(input.catalog[item].category).or_default().push((hot, *item));
        }
    }
    for (c, v) in &mut hot_by_category {
        top(v, CATEGORY_HOT_TOP);
        out.category_hot.extend(v.iter().enumerate().map(|(k, &(hot, item))| (*c, k + 1, item, hot)));
    }

    // scene_category_ctr_cvr
    let rated = |f: &Funnel| f[0] > 0 || f[1] > 0 || f[4] > 0;
    out.scene_category_rates =
        scene_category.iter().filter(|(_, f)| rated(f)).map(|(&(s, c), f)| (s, c, f[0], f[1], f[4])).collect();
    if (prior.impressions, prior.clicks, prior.buys) != (0, 0, 0) {
        let (i, c, b) = (prior.impressions, prior.clicks, prior.buys);
        out.prior.push((i, c, b, micro(c, i), micro(b, c)));
    }

    // scene_traffic
    let mut total = [0u128; 3];
    for v in traffic.values() {
        for k in 0..3 {
            total[k] += v[k];
        }
    }
    out.traffic = traffic
        .iter()
        .map(|(&s, v)| (s, micro(v[0], total[0]), micro(v[1], total[1]), micro(v[2], total[2])))
        .collect();

    // rules, recall_hot, recall_i2i, recall_user_signals
    out.rules = input.rules.iter().map(|r| (r.scene, r.strategy.name(), r.strategy.params())).collect();
    recall(input, &recent, &user_recent, user_i2i, &mut out);

    // ads_curated
    let mut ads: Vec<(Reverse<u128>, ItemId, CategoryId, u64, u128)> = Vec::new();
    for (item, row) in input.ads_catalog {
        if !(row.online && row.is_ad && row.ad_bid_cents > 0) {
            continue;
        }
        let (impressions, clicks) = ad_counts.get(item).copied().unwrap_or_default();
        if (impressions as i64) < input.ads.min_impressions {
            continue;
        }
        let Some(m) = ads_prior.ctr(impressions, clicks) else { continue };
        if (m as i128) < input.ads.min_pctr {
            continue;
        }
        ads.push((Reverse(row.ad_bid_cents as u128 * m * 1000), *item, row.category, row.ad_bid_cents, m));
    }
    ads.sort_unstable();
    ads.truncate(input.ads.set_size);
    out.ads = ads.into_iter().enumerate().map(|(k, (ecpm, i, c, bid, m))| (k + 1, i, c, bid, m, ecpm.0)).collect();

    out.display.sort_unstable();
    out.rank.sort_unstable();
    out.category_hot.sort_unstable();
    out.scene_category_rates.sort_unstable();
    out.traffic.sort_unstable();
    out.rules.sort_unstable();
    out.recall_hot.sort_unstable();
    out.recall_i2i.sort_unstable();
    out.recall_user_signals.sort_unstable();
    out
}

/// The three recall outputs: hot lists per (scene, category), i2i lists per (scene, item)
/// from the users(a, b) co-occurrence counts, and each user's signals.
fn recall(
    input: &CaseInput,
    recent: &FxHashMap<ItemId, Funnel>,
    user_recent: &FxHashMap<UserId, Vec<(ItemId, Behavior)>>,
    user_i2i: FxHashMap<UserId, Vec<(u64, ItemId)>>,
    out: &mut CaseOutputs,
) {
    let online = |item: &ItemId| input.catalog.get(item).is_some_and(|r| r.online);
    // users(a, b): distinct users with interactions on a and b at most I2I_GAP apart.
    let any_i2i = input.rules.iter().any(|r| matches!(r.strategy, Strategy::I2i(_)));
    let mut users: FxHashMap<(ItemId, ItemId), u64> = FxHashMap::default();
    if any_i2i {
        let mut pairs: Vec<(ItemId, ItemId)> = Vec::new();
        for (_, mut v) in user_i2i {
            v.sort_unstable();
            v.dedup();
            let v = &v[v.len().saturating_sub(I2I_LATEST)..];
            pairs.clear();
            for i in 0..v.len() {
                for &(ts, b) in &v[i + 1..] {
                    if ts - v[i].0 > I2I_GAP {
                        break;
                    }
                    let a = v[i].1;
                    if a != b {
                        pairs.push((a.min(b), a.max(b)));
                    }
                }
            }
            pairs.sort_unstable();
            pairs.dedup();
            for &(a, b) in &pairs {
                *users.entry((a, b)).or_default() += 1;
            }
        }
    }
    // Every online item's online neighbours, ranked (the scenes differ only in top_n).
    let longest = input
        .rules
        .iter()
        .filter_map(|r| match r.strategy {
            Strategy::I2i(i) => Some(i.top_n as usize),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut neighbours: FxHashMap<ItemId, Vec<(u64, ItemId)>> = FxHashMap::default();
    for (&(a, b), &n) in &users {
        if online(&a) && online(&b) {
            neighbours.entry(a).or_default().push((n, b));
            neighbours.entry(b).or_default().push((n, a));
        }
    }
    for v in neighbours.values_mut() {
        top(v, longest);
    }

    for rule in input.rules {
        let scene = rule.scene;
        match rule.strategy {
            Strategy::Hot(h) => {
                let mut per_category: FxHashMap<CategoryId, Vec<(u64, ItemId)>> = FxHashMap::default();
                for (item, f) in recent {
                    let score =
                        h.click as u64 * f[1] + h.fav as u64 * f[2] + h.cart as u64 * f[3] + h.buy as u64 * f[4];
                    if score > 0 && online(item) {
                        per_category.entry(input.catalog[item].category).or_default().push((score, *item));
                    }
                }
                for (c, v) in &mut per_category {
                    top(v, h.top_n as usize);
                    if !v.is_empty() {
                        out.recall_hot.push((scene, *c, v.iter().map(|&(score, item)| (item, score as i64)).collect()));
                    }
                }
            }
            Strategy::I2i(r) => {
                for (a, v) in &neighbours {
                    let n = v.len().min(r.top_n as usize);
                    if n > 0 {
                        out.recall_i2i.push((scene, *a, v[..n].iter().map(|&(users, b)| (b, users as i64)).collect()));
                    }
                }
            }
            Strategy::User(_) => {}
        }
    }

    // recall_user_signals: per user, the top categories, engaged and bought items (the
    // lists are merged by the reader).
    for (user, evs) in user_recent {
        let mut category_score: FxHashMap<CategoryId, u64> = FxHashMap::default();
        for (item, b) in evs {
            if let Some(row) = input.catalog.get(item) {
                let mut f = Funnel::default();
                f[slot(*b)] = 1;
                *category_score.entry(row.category).or_default() += hot_score(&f);
            }
        }
        let mut cats: Vec<(u64, CategoryId)> =
            category_score.into_iter().filter(|&(_, s)| s > 0).map(|(c, s)| (s, c)).collect();
        top(&mut cats, TOP_CATEGORIES);
        let mut signals = Signals { categories: cats.iter().map(|&(_, c)| c).collect(), ..Signals::default() };
        for (item, b) in evs {
            if matches!(b, Behavior::Click | Behavior::Buy) {
                signals.engaged.push(*item);
            }
            if *b == Behavior::Buy {
                signals.bought.push(*item);
            }
        }
        for items in [&mut signals.engaged, &mut signals.bought] {
            items.sort_unstable();
            items.dedup();
        }
        if signals != Signals::default() {
            out.recall_user_signals.push((*user, signals));
        }
    }
}
