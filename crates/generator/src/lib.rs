//! Synthetic data generator (`shopflow gen`).
//!
//! Produces a realistic, fully deterministic e-commerce workload:
//!
//! * **Native** format: `events.csv` (header
//!   `ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents`) and `catalog.csv` (header
//!   `ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents`).
//! * **UserBehavior** format (public Taobao layout): `UserBehavior.csv`, no header,
//!   `user_id,item_id,category_id,behavior_type,timestamp` (seconds).
//!
//! The model: a catalog of items (heavy-tailed items per category, log-normal prices, ~5 % ads)
//! that changes over time (arrivals, price changes, category moves, offline/online, deletes,
//! optional sale hour with price cuts); users (heavy-tailed activity) browse in sessions in a
//! scene; every browse step is an impression that becomes a click with the scene's CTR, and a
//! click may lead to fav / cart / buy. Event times follow a diurnal curve; `late_fraction` of the
//! events are written out of order through a small bounded delay buffer.
//!
//! Everything is driven by fixed-seed PCG generators and emitted in a deterministic order, so
//! the same [`GenConfig`] always gives byte-identical files. Memory is O(items + concurrent
//! sessions + delayed events); rows are streamed to buffered writers.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Zipf};
use rand_pcg::Pcg64Mcg;

/// Default start of the generated time span: a UTC midnight (2023-11-14T00:00:00Z).
pub const DEFAULT_START_MS: u64 = 1_700_000_000_000 - (1_700_000_000_000 % 86_400_000);
/// Default time span of the events, in days (the UserBehavior benchmark needs 9 days).
pub const DEFAULT_DAYS: f64 = 9.0;
/// Default share of events delivered out of order.
pub const DEFAULT_LATE_FRACTION: f64 = 0.02;

/// Scenes, in the order used by [`SCENE_CTR`].
pub const SCENES: [&str; 6] = ["home_feed", "search", "detail", "cart", "live", "ad"];
/// Click-through rate (clicks / impressions) per scene, same order as [`SCENES`].
pub const SCENE_CTR: [f64; 6] = [0.03, 0.06, 0.05, 0.04, 0.07, 0.02];
/// Share of sessions per scene, same order as [`SCENES`].
pub const SCENE_SESSION_SHARE: [f64; 6] = [0.40, 0.22, 0.15, 0.05, 0.08, 0.10];
/// Behaviours of the native format, indexed by the internal behaviour code.
pub const BEHAVIORS: [&str; 5] = ["impression", "click", "fav", "cart", "buy"];
/// Target mix of non-impression actions (for UserBehavior: pv/cart/fav/buy, pv = click).
pub const TARGET_MIX: [(&str, f64); 4] = [("click", 0.895), ("cart", 0.055), ("fav", 0.029), ("buy", 0.021)];
/// Share of native events that reference an item that never appears in the catalog.
pub const UNKNOWN_ITEM_SHARE: f64 = 0.005;
/// Of the delayed (out-of-order) events, the share delayed by at most [`LATE_SHORT_MAX_MS`];
/// the others are delayed by [`LATE_LONG_MIN_MS`]..=[`LATE_LONG_MAX_MS`].
pub const LATE_SHORT_SHARE: f64 = 0.85;
pub const LATE_SHORT_MAX_MS: u64 = 55_000;
pub const LATE_LONG_MIN_MS: u64 = 65_000;
pub const LATE_LONG_MAX_MS: u64 = 300_000;
/// Time between an item's removal from traffic (an `offline` row) and its `delete` row.
pub const DELETE_GRACE_MS: u64 = 30 * 60_000;

/// Output format of [`generate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenFormat {
    /// `events.csv` + `catalog.csv`.
    Native,
    /// `UserBehavior.csv` (Taobao layout, no header, no impressions, no catalog file).
    UserBehavior,
}

/// Generator configuration.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of valid events to write (bad rows come on top).
    pub events: u64,
    /// Number of users (ids `1..=users`).
    pub users: u64,
    /// Number of catalog items (ids `1..=items`); unknown items use ids above `items`.
    pub items: u64,
    /// Number of categories (ids `1..=categories`).
    pub categories: u64,
    /// Number of sellers (ids `1..=sellers`).
    pub sellers: u64,
    pub seed: u64,
    pub out_dir: PathBuf,
    pub format: GenFormat,
    /// Start of the time span (ms since the Unix epoch).
    pub start_ms: u64,
    /// Length of the time span in days; every event has `start_ms <= ts < start_ms + days`.
    pub days: f64,
    /// Hour index from `start_ms` of a sale: ×10 traffic, many new items, price cuts.
    pub sale_hour: Option<u64>,
    /// Fraction of malformed rows mixed into every written file (`0 <= bad_rows < 1`).
    pub bad_rows: f64,
    /// Share of events delivered out of order (`0..=1`).
    pub late_fraction: f64,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

impl GenConfig {
    /// Defaults scaled from `events`: `users = events/100`, `items = events/50`,
    /// `categories = items/200` (at least 5, at most 20 000), `sellers = items/20`
    /// (each at least 10 / 5 / 3 and at most u32::MAX / 2), format Native,
    /// start [`DEFAULT_START_MS`], 9 days, no sale, no bad rows, late fraction 0.02,
    /// no progress bar.
    pub fn default_with(events: u64, seed: u64, out_dir: PathBuf) -> Self {
        let cap = (u32::MAX / 2) as u64;
        let items = (events / 50).clamp(10, cap);
        GenConfig {
            events,
            users: (events / 100).clamp(10, cap),
            items,
            categories: (items / 200).clamp(5, 20_000),
            sellers: (items / 20).clamp(3, cap),
            seed,
            out_dir,
            format: GenFormat::Native,
            start_ms: DEFAULT_START_MS,
            days: DEFAULT_DAYS,
            sale_hour: None,
            bad_rows: 0.0,
            late_fraction: DEFAULT_LATE_FRACTION,
            progress: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Valid event rows written (equals `cfg.events`).
    pub events_written: u64,
    /// Valid catalog rows written (0 for UserBehavior).
    pub catalog_rows: u64,
    /// Malformed rows written, over all files.
    pub bad_rows: u64,
    /// Valid event rows written with a timestamp smaller than an earlier event row's.
    pub late_events: u64,
    /// Files written, in order.
    pub files: Vec<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// constants of the model

const IMPRESSION: u8 = 0;
const CLICK: u8 = 1;
const FAV: u8 = 2;
const CART: u8 = 3;
const BUY: u8 = 4;

const P_FAV: f64 = 0.029 / 0.895;
const P_CART: f64 = 0.055 / 0.895;
const P_BUY_AFTER_CART: f64 = 0.30;
const P_BUY_DIRECT: f64 = (0.021 / 0.895 - P_CART * P_BUY_AFTER_CART) / (1.0 - P_CART);

const SCENE_AD: u8 = 5;

/// Hour-of-day traffic shape (UTC), interpolated per minute.
const DIURNAL: [f64; 24] = [
    0.30, 0.18, 0.12, 0.09, 0.08, 0.10, 0.18, 0.32, 0.48, 0.58, 0.64, 0.70, 0.78, 0.74, 0.68, 0.66, 0.68, 0.72, 0.80,
    0.92, 1.00, 1.00, 0.86, 0.55,
];

// catalog change kinds
const K_ARRIVE: u8 = 0;
const K_PRICE: u8 = 1;
const K_MOVE: u8 = 2;
const K_OFFLINE: u8 = 3;
const K_ONLINE: u8 = 4;
const K_RETIRE: u8 = 5;
const K_DELETE: u8 = 6;
const K_SALE_CUT: u8 = 7;
const K_RESTORE: u8 = 8;

// per item and day
const RATE_PRICE: f64 = 0.04;
const RATE_MOVE: f64 = 0.003;
const RATE_OFFLINE: f64 = 0.006;
const RATE_RETIRE: f64 = 0.0015;
const NEW_ITEM_SHARE: f64 = 0.15;
const SALE_CUT_SHARE: f64 = 0.15;

/// Bound of the out-of-order buffer (events held back); at the bound the earliest is released.
const MAX_DELAYED: usize = 100_000;

// item states
const S_NOT_YET: u8 = 0;
const S_LIVE: u8 = 1;
const S_RETIRING: u8 = 2;
const S_DELETED: u8 = 3;

// ---------------------------------------------------------------------------------------------

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn validate(cfg: &GenConfig) -> io::Result<()> {
    let max = u32::MAX as u64;
    for (name, v) in
        [("users", cfg.users), ("items", cfg.items), ("categories", cfg.categories), ("sellers", cfg.sellers)]
    {
        if v == 0 || v > max {
            return Err(invalid(format!("gen: {name} must be in 1..={max}, got {v}")));
        }
    }
    if cfg.items + unknown_pool(cfg.items) > max {
        return Err(invalid(format!("gen: items must be at most {}", max - max / 51)));
    }
    if cfg.categories > 10_000_000 {
        return Err(invalid(format!("gen: categories must be at most 10000000, got {}", cfg.categories)));
    }
    if cfg.days.is_nan() || cfg.days <= 0.0 || cfg.days > 3650.0 {
        return Err(invalid(format!("gen: days must be in (0, 3650], got {}", cfg.days)));
    }
    if !(cfg.bad_rows >= 0.0 && cfg.bad_rows < 1.0) {
        return Err(invalid(format!("gen: bad_rows must be in [0, 1), got {}", cfg.bad_rows)));
    }
    if !(cfg.late_fraction >= 0.0 && cfg.late_fraction <= 1.0) {
        return Err(invalid(format!("gen: late_fraction must be in [0, 1], got {}", cfg.late_fraction)));
    }
    let span_ms = (cfg.days * 86_400_000.0).round() as u64;
    if cfg.start_ms.checked_add(span_ms + LATE_LONG_MAX_MS).is_none() {
        return Err(invalid("gen: start_ms too large".into()));
    }
    if let Some(h) = cfg.sale_hour {
        if h.saturating_mul(3_600_000) >= span_ms {
            return Err(invalid(format!("gen: sale_hour {h} is outside the span of {} days", cfg.days)));
        }
    }
    Ok(())
}

fn unknown_pool(items: u64) -> u64 {
    (items / 50).max(10)
}

/// A bijection of `0..n` (`x -> (a*x + b) mod n`), to scatter popularity ranks over ids.
#[derive(Clone, Copy)]
struct Bij {
    n: u64,
    a: u64,
    b: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Bij {
    fn new(n: u64, rng: &mut Pcg64Mcg) -> Bij {
        if n <= 2 {
            return Bij { n, a: 1, b: 0 };
        }
        let mut a = rng.random_range(n / 3..n);
        while gcd(a, n) != 1 {
            a += 1;
            if a >= n {
                a = 1;
            }
        }
        Bij { n, a, b: rng.random_range(0..n) }
    }
    #[inline]
    fn map(&self, x: u64) -> u64 {
        // n <= u32::MAX, so a*x < 2^64
        (self.a * x + self.b) % self.n
    }
}

/// Zipf rank sampler over `0..n` composed with a bijection, giving ids `1..=n`.
struct Popularity {
    zipf: Zipf<f64>,
    n: u64,
    /// Zipf–Mandelbrot offset: rank r has weight (r + 1 + offset)^-s.
    offset: u64,
    bij: Bij,
}

impl Popularity {
    fn new(n: u64, s: f64, offset: u64, rng: &mut Pcg64Mcg) -> Popularity {
        Popularity { zipf: Zipf::new((n + offset) as f64, s).expect("valid zipf"), n, offset, bij: Bij::new(n, rng) }
    }
    #[inline]
    fn rank(&self, rng: &mut Pcg64Mcg) -> u64 {
        loop {
            let k = self.zipf.sample(rng) as u64;
            if k > self.offset {
                return (k - self.offset).clamp(1, self.n) - 1;
            }
        }
    }
    #[inline]
    fn sample(&self, rng: &mut Pcg64Mcg) -> u32 {
        let r = self.rank(rng);
        (self.bij.map(r) + 1) as u32
    }
    #[inline]
    fn id_of_rank(&self, r: u64) -> u32 {
        (self.bij.map(r) + 1) as u32
    }
}

#[derive(Clone, Copy)]
struct Item {
    cat: u32,
    seller: u32,
    price: u32,
    bid: u32,
    avail_pos: u32,
    cat_pos: u32,
    state: u8,
    online: bool,
    is_ad: bool,
}

#[derive(Clone, Copy)]
struct Pending {
    item: u32,
    beh: u8,
    qty: u16,
}

struct Session {
    user: u32,
    scene: u8,
    focus: u32,
    remaining: u32,
    /// Stack of follow-up actions (popped from the end).
    pending: Vec<Pending>,
}

#[derive(Clone, Copy)]
struct Ev {
    ts: u64,
    user: u32,
    item: u32,
    cat: u32,
    scene: u8,
    beh: u8,
    qty: u16,
    amount: u64,
}

struct Delayed {
    key: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Delayed {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key && self.seq == o.seq
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delayed {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.key, self.seq).cmp(&(o.key, o.seq))
    }
}

/// (ts, seq, kind, item, arg)
type Change = (u64, u64, u8, u32, u32);

#[inline]
fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn round_price(p: f64) -> u32 {
    let p = p.clamp(99.0, 5_000_000.0) as u32;
    (p / 10) * 10 + 9
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Gen<'a> {
    cfg: &'a GenConfig,
    native: bool,
    start: u64,
    span_ms: u64,
    rng: Pcg64Mcg,
    rng_bad: Pcg64Mcg,
    rng_late: Pcg64Mcg,
    // time model
    minute_w: Vec<f64>,
    cum: Vec<f64>,
    w_mean: f64,
    // catalog
    items: Vec<Item>,
    avail: Vec<u32>,
    cat_lists: Vec<Vec<u32>>,
    ad_items: Vec<u32>,
    item_pop: Popularity,
    cat_pop: Popularity,
    user_pop: Popularity,
    changes: BinaryHeap<Reverse<Change>>,
    change_seq: u64,
    session_len: LogNormal<f64>,
    price_step: Normal<f64>,
    // sessions and output
    sessions: Vec<Session>,
    pool_base: f64,
    delayed: BinaryHeap<Reverse<Delayed>>,
    delayed_seq: u64,
    max_written_ts: u64,
    ev_out: BufWriter<File>,
    cat_out: Option<BufWriter<File>>,
    row: Vec<u8>,
    summary: GenSummary,
}

/// Generate the data set described by `cfg` into `cfg.out_dir` (created if missing).
pub fn generate(cfg: &GenConfig) -> io::Result<GenSummary> {
    validate(cfg)?;
    fs::create_dir_all(&cfg.out_dir)?;
    let mut g = Gen::new(cfg)?;
    g.run()?;
    Ok(g.summary)
}

impl<'a> Gen<'a> {
    fn new(cfg: &'a GenConfig) -> io::Result<Gen<'a>> {
        let native = cfg.format == GenFormat::Native;
        let mut setup = Pcg64Mcg::seed_from_u64(splitmix(cfg.seed ^ 0x5e7u64));
        let rng = Pcg64Mcg::seed_from_u64(splitmix(cfg.seed ^ 0x51u64));
        let rng_bad = Pcg64Mcg::seed_from_u64(splitmix(cfg.seed ^ 0xbadu64));
        let rng_late = Pcg64Mcg::seed_from_u64(splitmix(cfg.seed ^ 0x1a7eu64));
        let span_ms = ((cfg.days * 86_400_000.0).round() as u64).max(1);

        // ---- time model: weight per minute
        let minutes = span_ms.div_ceil(60_000) as usize;
        let n_days = (minutes / 1440) + 1;
        let day_factor: Vec<f64> = {
            let noise = Normal::new(1.0, 0.08).unwrap();
            (0..n_days)
                .map(|d| {
                    let day_abs = (cfg.start_ms / 86_400_000) + d as u64;
                    // 1970-01-01 was a Thursday; 0 = Thursday, 2 = Saturday, 3 = Sunday
                    let weekend = matches!(day_abs % 7, 2 | 3);
                    let f: f64 = noise.sample(&mut setup);
                    f.clamp(0.75, 1.25) * if weekend { 1.1 } else { 1.0 }
                })
                .collect()
        };
        let mut minute_w = Vec::with_capacity(minutes);
        for m in 0..minutes {
            let t = cfg.start_ms + m as u64 * 60_000;
            let hour_f = ((t % 86_400_000) as f64) / 3_600_000.0;
            let h0 = hour_f.floor() as usize % 24;
            let h1 = (h0 + 1) % 24;
            let fr = hour_f - hour_f.floor();
            let mut w = DIURNAL[h0] * (1.0 - fr) + DIURNAL[h1] * fr;
            w *= day_factor[m / 1440];
            if let Some(h) = cfg.sale_hour {
                if m as u64 / 60 == h {
                    w *= 10.0;
                }
            }
            let covered = (span_ms - m as u64 * 60_000).min(60_000);
            w *= covered as f64 / 60_000.0;
            minute_w.push(w);
        }
        let mut cum = Vec::with_capacity(minutes + 1);
        let mut acc = 0.0;
        cum.push(0.0);
        for &w in &minute_w {
            acc += w;
            cum.push(acc);
        }
        let w_mean = acc / (span_ms as f64 / 60_000.0);

        // ---- popularity models
        let item_pop = Popularity::new(cfg.items, 1.0, 10, &mut setup);
        let cat_pop = Popularity::new(cfg.categories, 0.9, 2, &mut setup);
        let seller_pop = Popularity::new(cfg.sellers, 1.0, 5, &mut setup);
        let user_pop = Popularity::new(cfg.users, 0.6, 0, &mut setup);

        // ---- items
        let cat_level: Vec<f32> = {
            let n = Normal::new(0.0f64, 0.6).unwrap();
            (0..cfg.categories).map(|_| n.sample(&mut setup).exp() as f32).collect()
        };
        let price_d = LogNormal::new((3500.0f64).ln(), 1.0).unwrap();
        let bid_d = LogNormal::new((30.0f64).ln(), 0.8).unwrap();
        let mut items = Vec::with_capacity(cfg.items as usize);
        for _ in 0..cfg.items {
            let cat = cat_pop.sample(&mut setup);
            let seller = seller_pop.sample(&mut setup);
            let p: f64 = price_d.sample(&mut setup) * cat_level[cat as usize - 1] as f64;
            let is_ad = setup.random_bool(0.05);
            let bid = if is_ad { (bid_d.sample(&mut setup) as u32).clamp(1, 5000) } else { 0 };
            items.push(Item {
                cat,
                seller,
                price: round_price(p),
                bid,
                avail_pos: u32::MAX,
                cat_pos: u32::MAX,
                state: S_NOT_YET,
                online: true,
                is_ad,
            });
        }
        let mut ad_items: Vec<u32> = (1..=cfg.items as u32).filter(|&i| items[i as usize - 1].is_ad).collect();
        ad_items.sort_by_key(|&i| (Reverse(items[i as usize - 1].bid), i));

        let ev_name = if native { "events.csv" } else { "UserBehavior.csv" };
        let ev_path = cfg.out_dir.join(ev_name);
        let ev_out = BufWriter::with_capacity(1 << 20, File::create(&ev_path)?);
        let mut files = vec![ev_path];
        let cat_out = if native {
            let p = cfg.out_dir.join("catalog.csv");
            let w = BufWriter::with_capacity(1 << 20, File::create(&p)?);
            files.push(p);
            Some(w)
        } else {
            None
        };

        let rate_per_s = cfg.events as f64 / (span_ms as f64 / 1000.0);
        let gap_s = if native { 20.0 } else { 90.0 };
        let session_len = if native {
            LogNormal::new((12.0f64).ln(), 1.0).unwrap()
        } else {
            LogNormal::new((3.0f64).ln(), 1.0).unwrap()
        };

        Ok(Gen {
            cfg,
            native,
            start: cfg.start_ms,
            span_ms,
            rng,
            rng_bad,
            rng_late,
            minute_w,
            cum,
            w_mean,
            items,
            avail: Vec::new(),
            cat_lists: vec![Vec::new(); cfg.categories as usize],
            ad_items,
            item_pop,
            cat_pop,
            user_pop,
            changes: BinaryHeap::new(),
            change_seq: 0,
            session_len,
            price_step: Normal::new(0.0, 0.12).unwrap(),
            sessions: Vec::new(),
            pool_base: (rate_per_s * gap_s).max(1.0),
            delayed: BinaryHeap::new(),
            delayed_seq: 0,
            max_written_ts: 0,
            ev_out,
            cat_out,
            row: Vec::with_capacity(256),
            summary: GenSummary { files, ..Default::default() },
        })
    }

    // ---------------------------------------------------------------- time helpers

    /// How much of minute `m` the span covers (ms): 60 000 but for a last, partial minute,
    /// whose events spread over that part only (its weight is scaled down by as much).
    /// Spreading them over the whole minute put every event past the span's end on its
    /// last millisecond: with `--days` for 30 s, half the events in its last second.
    fn minute_ms(&self, m: usize) -> u64 {
        (self.span_ms - m as u64 * 60_000).min(60_000)
    }

    /// A time drawn from the traffic intensity (ms offset from start).
    fn sample_time_offset(&mut self) -> u64 {
        let total = *self.cum.last().unwrap();
        let target = self.rng.random::<f64>() * total;
        let m = self.cum.partition_point(|&c| c <= target).saturating_sub(1);
        let m = m.min(self.minute_w.len() - 1);
        let fr = if self.minute_w[m] > 0.0 { ((target - self.cum[m]) / self.minute_w[m]).clamp(0.0, 1.0) } else { 0.0 };
        let off = m as u64 * 60_000 + (fr * self.minute_ms(m) as f64) as u64;
        off.min(self.span_ms - 1)
    }

    fn schedule(&mut self, ts: u64, kind: u8, item: u32, arg: u32) {
        self.change_seq += 1;
        self.changes.push(Reverse((ts, self.change_seq, kind, item, arg)));
    }

    // ---------------------------------------------------------------- availability

    #[inline]
    fn is_avail(&self, id: u32) -> bool {
        let it = &self.items[id as usize - 1];
        it.state == S_LIVE && it.online
    }

    fn add_avail(&mut self, id: u32) {
        let idx = id as usize - 1;
        debug_assert_eq!(self.items[idx].avail_pos, u32::MAX);
        self.items[idx].avail_pos = self.avail.len() as u32;
        self.avail.push(id);
        let c = self.items[idx].cat as usize - 1;
        self.items[idx].cat_pos = self.cat_lists[c].len() as u32;
        self.cat_lists[c].push(id);
    }

    fn remove_avail(&mut self, id: u32) {
        let idx = id as usize - 1;
        let p = self.items[idx].avail_pos as usize;
        debug_assert!(p != u32::MAX as usize);
        self.avail.swap_remove(p);
        if p < self.avail.len() {
            let moved = self.avail[p];
            self.items[moved as usize - 1].avail_pos = p as u32;
        }
        self.items[idx].avail_pos = u32::MAX;
        let c = self.items[idx].cat as usize - 1;
        let cp = self.items[idx].cat_pos as usize;
        let list = &mut self.cat_lists[c];
        list.swap_remove(cp);
        if cp < list.len() {
            let moved = list[cp];
            self.items[moved as usize - 1].cat_pos = cp as u32;
        }
        self.items[idx].cat_pos = u32::MAX;
    }

    fn random_avail(&mut self) -> Option<u32> {
        if self.avail.is_empty() {
            None
        } else {
            let i = self.rng.random_range(0..self.avail.len());
            Some(self.avail[i])
        }
    }

    // ---------------------------------------------------------------- catalog

    fn init_catalog(&mut self) -> io::Result<()> {
        let n = self.cfg.items as u32;
        let mut initial_offline = Vec::new();
        let mut arrivals = Vec::new();
        let mut any_initial = false;
        for id in 1..=n {
            let late = self.rng.random_bool(NEW_ITEM_SHARE);
            // keep at least one item in the initial catalog
            if late && (id != n || any_initial) {
                arrivals.push(id);
            } else {
                any_initial = true;
                let it = &mut self.items[id as usize - 1];
                it.state = S_LIVE;
                if self.rng.random_bool(0.02) {
                    it.online = false;
                    initial_offline.push(id);
                }
            }
        }
        // initial catalog rows at start, in id order; availability lists in popularity order
        // (so that the front of each category list holds its popular items)
        for id in 1..=n {
            if self.items[id as usize - 1].state == S_LIVE {
                self.write_upsert(self.start, id)?;
            }
        }
        for r in 0..self.cfg.items {
            let id = self.item_pop.id_of_rank(r);
            if self.is_avail(id) {
                self.add_avail(id);
            }
        }
        // arrivals
        let sale = self.cfg.sale_hour.map(|h| h * 3_600_000);
        for id in arrivals {
            let off = match sale {
                Some(s) if self.rng.random_bool(1.0 / 3.0) => {
                    let lo = s.saturating_sub(30 * 60_000);
                    let hi = (s + 60 * 60_000).min(self.span_ms);
                    self.rng.random_range(lo..hi.max(lo + 1))
                }
                _ => self.sample_time_offset(),
            };
            self.schedule(self.start + off, K_ARRIVE, id, 0);
        }
        for id in initial_offline {
            if self.rng.random_bool(0.5) {
                let off = self.sample_time_offset();
                self.schedule(self.start + off, K_ONLINE, id, 0);
            }
        }
        // random changes over the span
        let item_days = self.cfg.items as f64 * self.cfg.days;
        let mut kinds = vec![(K_PRICE, RATE_PRICE), (K_OFFLINE, RATE_OFFLINE), (K_RETIRE, RATE_RETIRE)];
        if self.native {
            kinds.push((K_MOVE, RATE_MOVE));
        }
        for (kind, rate) in kinds {
            let count = (item_days * rate).round() as u64;
            for _ in 0..count {
                let off = self.sample_time_offset();
                self.schedule(self.start + off, kind, 0, 0);
            }
        }
        if let Some(s) = sale {
            let count = (self.cfg.items as f64 * SALE_CUT_SHARE).round() as u64;
            let lo = s.saturating_sub(10 * 60_000);
            let hi = (s + 5 * 60_000).min(self.span_ms);
            for _ in 0..count {
                let off = self.rng.random_range(lo..hi.max(lo + 1));
                self.schedule(self.start + off, K_SALE_CUT, 0, 0);
            }
        }
        Ok(())
    }

    /// Apply every scheduled catalog change with `ts <= now`.
    fn apply_changes(&mut self, now: u64) -> io::Result<()> {
        while let Some(&Reverse((ts, _, kind, item, arg))) = self.changes.peek() {
            if ts > now {
                break;
            }
            self.changes.pop();
            self.apply_change(ts, kind, item, arg)?;
        }
        Ok(())
    }

    fn apply_change(&mut self, ts: u64, kind: u8, item: u32, arg: u32) -> io::Result<()> {
        let end = self.start + self.span_ms;
        match kind {
            K_ARRIVE => {
                let it = &mut self.items[item as usize - 1];
                it.state = S_LIVE;
                it.online = true;
                self.add_avail(item);
                self.write_upsert(ts, item)?;
            }
            K_PRICE => {
                if let Some(id) = self.random_avail() {
                    let f = self.price_step.sample(&mut self.rng).exp();
                    let it = &mut self.items[id as usize - 1];
                    it.price = round_price(it.price as f64 * f);
                    self.write_upsert(ts, id)?;
                }
            }
            K_MOVE => {
                if let Some(id) = self.random_avail() {
                    let new_cat = self.cat_pop.sample(&mut self.rng);
                    if new_cat != self.items[id as usize - 1].cat {
                        self.remove_avail(id);
                        self.items[id as usize - 1].cat = new_cat;
                        self.add_avail(id);
                        self.write_upsert(ts, id)?;
                    }
                }
            }
            K_OFFLINE => {
                if self.avail.len() > 1 {
                    let id = self.random_avail().unwrap();
                    self.remove_avail(id);
                    self.items[id as usize - 1].online = false;
                    self.write_upsert(ts, id)?;
                    if self.rng.random_bool(0.8) {
                        let back = ts + self.rng.random_range(3_600_000..48 * 3_600_000);
                        if back < end {
                            self.schedule(back, K_ONLINE, id, 0);
                        }
                    }
                }
            }
            K_ONLINE => {
                let it = &mut self.items[item as usize - 1];
                if it.state == S_LIVE && !it.online {
                    it.online = true;
                    self.add_avail(item);
                    self.write_upsert(ts, item)?;
                }
            }
            K_RETIRE => {
                if self.avail.len() > 1 {
                    let id = self.random_avail().unwrap();
                    self.remove_avail(id);
                    let it = &mut self.items[id as usize - 1];
                    it.online = false;
                    it.state = S_RETIRING;
                    self.write_upsert(ts, id)?;
                    let del = ts + DELETE_GRACE_MS;
                    if del < end {
                        self.schedule(del, K_DELETE, id, 0);
                    }
                }
            }
            K_DELETE => {
                self.items[item as usize - 1].state = S_DELETED;
                self.write_delete(ts, item)?;
            }
            K_SALE_CUT => {
                if let Some(id) = self.random_avail() {
                    let cut = self.rng.random_range(0.5..0.9);
                    let old = self.items[id as usize - 1].price;
                    let new = round_price(old as f64 * cut);
                    if new < old {
                        self.items[id as usize - 1].price = new;
                        self.write_upsert(ts, id)?;
                        let sale_end = self.cfg.sale_hour.unwrap_or(0) * 3_600_000 + 3_600_000;
                        let back = self.start + sale_end + self.rng.random_range(0..3 * 3_600_000u64);
                        if back < end {
                            self.schedule(back, K_RESTORE, id, old);
                        }
                    }
                }
            }
            K_RESTORE => {
                let it = &mut self.items[item as usize - 1];
                if (it.state == S_LIVE || it.state == S_RETIRING) && it.price != arg {
                    it.price = arg;
                    self.write_upsert(ts, item)?;
                }
            }
            _ => unreachable!(),
        }
        Ok(())
    }

    // ---------------------------------------------------------------- catalog output

    fn write_upsert(&mut self, ts: u64, id: u32) -> io::Result<()> {
        if !self.native {
            return Ok(());
        }
        self.maybe_bad_catalog(ts, id)?;
        let it = self.items[id as usize - 1];
        let r = &mut self.row;
        r.clear();
        push_u64(r, ts);
        r.extend_from_slice(b",upsert,");
        push_u64(r, id as u64);
        r.push(b',');
        push_u64(r, it.cat as u64);
        r.push(b',');
        push_u64(r, it.seller as u64);
        r.push(b',');
        push_u64(r, it.price as u64);
        r.extend_from_slice(if it.online { b",online," } else { b",offline," });
        r.extend_from_slice(if it.is_ad { b"1," } else { b"0," });
        push_u64(r, it.bid as u64);
        r.push(b'\n');
        self.cat_out.as_mut().unwrap().write_all(&self.row)?;
        self.summary.catalog_rows += 1;
        Ok(())
    }

    fn write_delete(&mut self, ts: u64, id: u32) -> io::Result<()> {
        if !self.native {
            return Ok(());
        }
        self.maybe_bad_catalog(ts, id)?;
        let r = &mut self.row;
        r.clear();
        push_u64(r, ts);
        r.extend_from_slice(b",delete,");
        push_u64(r, id as u64);
        r.extend_from_slice(b",,,,,,\n");
        self.cat_out.as_mut().unwrap().write_all(&self.row)?;
        self.summary.catalog_rows += 1;
        Ok(())
    }

    fn maybe_bad_catalog(&mut self, ts: u64, id: u32) -> io::Result<()> {
        if self.cfg.bad_rows <= 0.0 {
            return Ok(());
        }
        while self.rng_bad.random_bool(self.cfg.bad_rows) {
            let it = self.items[id as usize - 1];
            let mut f: Vec<String> = vec![
                ts.to_string(),
                "upsert".into(),
                id.to_string(),
                it.cat.to_string(),
                it.seller.to_string(),
                it.price.to_string(),
                (if it.online { "online" } else { "offline" }).into(),
                (if it.is_ad { "1" } else { "0" }).into(),
                it.bid.to_string(),
            ];
            let rb = &mut self.rng_bad;
            let line = match rb.random_range(0..6u32) {
                0 => {
                    if rb.random_bool(0.5) {
                        let i = rb.random_range(0..f.len());
                        f.remove(i);
                    } else {
                        f.push("1".into());
                    }
                    f.join(",")
                }
                1 => {
                    const OPS: [&str; 6] = ["update", "insert", "remove", "UPSERT", "", "del"];
                    f[1] = OPS[rb.random_range(0..OPS.len())].into();
                    f.join(",")
                }
                2 => {
                    const IDX: [usize; 6] = [0, 2, 3, 4, 5, 8];
                    const JUNK: [&str; 6] = ["abc", "12.5", "7x", "NaN", "1e3", "#"];
                    f[IDX[rb.random_range(0..IDX.len())]] = JUNK[rb.random_range(0..JUNK.len())].into();
                    f.join(",")
                }
                3 => {
                    const IDX: [usize; 5] = [2, 3, 4, 5, 8];
                    let i = IDX[rb.random_range(0..IDX.len())];
                    f[i] = format!("-{}", rb.random_range(1..100_000u32));
                    f.join(",")
                }
                4 => String::new(),
                _ => {
                    if rb.random_bool(0.5) {
                        const ST: [&str; 4] = ["active", "deleted", "", "Online"];
                        f[6] = ST[rb.random_range(0..ST.len())].into();
                    } else {
                        const AD: [&str; 4] = ["2", "yes", "", "-1"];
                        f[7] = AD[rb.random_range(0..AD.len())].into();
                    }
                    f.join(",")
                }
            };
            let out = self.cat_out.as_mut().unwrap();
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            self.summary.bad_rows += 1;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- sessions

    fn new_session(&mut self) -> Session {
        let user = self.user_pop.sample(&mut self.rng);
        let u: f64 = self.rng.random();
        let mut acc = 0.0;
        let mut scene = 0u8;
        for (i, s) in SCENE_SESSION_SHARE.iter().enumerate() {
            acc += s;
            scene = i as u8;
            if u < acc {
                break;
            }
        }
        if !self.native {
            scene = 0;
        }
        // focus category: one of the user's 3 preferred categories (70 %), else the category
        // of a popular item
        let focus = if self.rng.random_bool(0.7) {
            let k: u64 = match self.rng.random_range(0..10u32) {
                0..=4 => 0,
                5..=7 => 1,
                _ => 2,
            };
            let h = splitmix(self.cfg.seed ^ splitmix((user as u64) << 2 | k));
            let mut r = Pcg64Mcg::new(h as u128 | 1);
            let id = self.item_pop.sample(&mut r);
            self.items[id as usize - 1].cat
        } else {
            let id = self.item_pop.sample(&mut self.rng);
            self.items[id as usize - 1].cat
        };
        let len = self.session_len.sample(&mut self.rng).min(2000.0) as u32 + 1;
        Session { user, scene, focus, remaining: len, pending: Vec::new() }
    }

    fn pick_item(&mut self, scene: u8, focus: u32) -> u32 {
        if self.native && self.rng.random_bool(UNKNOWN_ITEM_SHARE) {
            let pool = unknown_pool(self.cfg.items);
            let r = (self.rng.random::<f64>().powi(2) * pool as f64) as u64;
            return (self.cfg.items + 1 + r.min(pool - 1)) as u32;
        }
        if scene == SCENE_AD && !self.ad_items.is_empty() {
            for _ in 0..4 {
                let u: f64 = self.rng.random();
                let id = self.ad_items[(u * u * self.ad_items.len() as f64) as usize];
                if self.is_avail(id) {
                    return id;
                }
            }
        }
        let p_focus = match scene {
            1 | 2 => 0.7, // search, detail
            SCENE_AD => 0.0,
            _ => 0.3,
        };
        if p_focus > 0.0 && self.rng.random_bool(p_focus) {
            let list = &self.cat_lists[focus as usize - 1];
            if !list.is_empty() {
                let u: f64 = self.rng.random();
                return list[(u * u * u * list.len() as f64) as usize];
            }
        }
        for _ in 0..10 {
            let id = self.item_pop.sample(&mut self.rng);
            if self.is_avail(id) {
                return id;
            }
        }
        // fall back to a uniformly chosen available item (there is always at least one)
        self.random_avail().expect("at least one available item")
    }

    #[inline]
    fn known(&self, id: u32) -> bool {
        (id as u64) <= self.cfg.items
    }

    fn push_chain(&mut self, si: usize, item: u32) {
        let rng = &mut self.rng;
        let fav = rng.random_bool(P_FAV);
        let cart = rng.random_bool(P_CART);
        let buy = if cart { rng.random_bool(P_BUY_AFTER_CART) } else { rng.random_bool(P_BUY_DIRECT) };
        let s = &mut self.sessions[si];
        if buy {
            let u: f64 = rng.random();
            let qty = if u < 0.82 {
                1
            } else if u < 0.94 {
                2
            } else if u < 0.98 {
                3
            } else {
                rng.random_range(4..=10u16)
            };
            s.pending.push(Pending { item, beh: BUY, qty });
        }
        if cart {
            s.pending.push(Pending { item, beh: CART, qty: 0 });
        }
        if fav {
            s.pending.push(Pending { item, beh: FAV, qty: 0 });
        }
    }

    /// Next action of session `si`, or None when it has ended.
    fn session_step(&mut self, si: usize) -> Option<(u32, u8, u16)> {
        while let Some(p) = self.sessions[si].pending.pop() {
            if self.known(p.item) && !self.is_avail(p.item) {
                continue; // item went offline / away in the meantime
            }
            if p.beh == CLICK {
                self.push_chain(si, p.item);
            }
            return Some((p.item, p.beh, p.qty));
        }
        let s = &mut self.sessions[si];
        if s.remaining == 0 {
            return None;
        }
        s.remaining -= 1;
        let (scene, focus) = (s.scene, s.focus);
        let item = self.pick_item(scene, focus);
        if self.native {
            if self.rng.random_bool(SCENE_CTR[scene as usize]) {
                self.sessions[si].pending.push(Pending { item, beh: CLICK, qty: 0 });
            }
            Some((item, IMPRESSION, 0))
        } else {
            self.push_chain(si, item);
            Some((item, CLICK, 0))
        }
    }

    // ---------------------------------------------------------------- events output

    fn next_event(&mut self, ts: u64, minute: usize) -> Ev {
        let target = ((self.pool_base * self.minute_w[minute] / self.w_mean).round() as usize).clamp(1, 500_000);
        loop {
            if self.sessions.len() < target {
                let s = self.new_session();
                self.sessions.push(s);
            }
            let si = self.rng.random_range(0..self.sessions.len());
            match self.session_step(si) {
                Some((item, beh, qty)) => {
                    let s = &self.sessions[si];
                    let (cat, amount) = if self.known(item) {
                        let it = &self.items[item as usize - 1];
                        (it.cat, if beh == BUY { qty as u64 * it.price as u64 } else { 0 })
                    } else {
                        // an item unknown to the catalog: deterministic pseudo price
                        let p = 99 + (splitmix(item as u64 ^ self.cfg.seed) % 50_000) / 10 * 10;
                        (0, if beh == BUY { qty as u64 * p } else { 0 })
                    };
                    return Ev { ts, user: s.user, item, cat, scene: s.scene, beh, qty, amount };
                }
                None => {
                    self.sessions.swap_remove(si);
                }
            }
        }
    }

    fn write_event(&mut self, ev: &Ev) -> io::Result<()> {
        if self.cfg.bad_rows > 0.0 {
            self.maybe_bad_event(ev)?;
        }
        let r = &mut self.row;
        r.clear();
        if self.native {
            push_u64(r, ev.ts);
            r.push(b',');
            push_u64(r, ev.user as u64);
            r.push(b',');
            push_u64(r, ev.item as u64);
            r.push(b',');
            r.extend_from_slice(SCENES[ev.scene as usize].as_bytes());
            r.push(b',');
            r.extend_from_slice(BEHAVIORS[ev.beh as usize].as_bytes());
            r.push(b',');
            push_u64(r, ev.qty as u64);
            r.push(b',');
            push_u64(r, ev.amount);
        } else {
            push_u64(r, ev.user as u64);
            r.push(b',');
            push_u64(r, ev.item as u64);
            r.push(b',');
            push_u64(r, ev.cat as u64);
            r.push(b',');
            r.extend_from_slice(ub_behavior(ev.beh).as_bytes());
            r.push(b',');
            push_u64(r, ev.ts / 1000);
        }
        r.push(b'\n');
        self.ev_out.write_all(&self.row)?;
        self.summary.events_written += 1;
        if ev.ts < self.max_written_ts {
            self.summary.late_events += 1;
        } else {
            self.max_written_ts = ev.ts;
        }
        Ok(())
    }

    fn maybe_bad_event(&mut self, ev: &Ev) -> io::Result<()> {
        while self.rng_bad.random_bool(self.cfg.bad_rows) {
            let rb = &mut self.rng_bad;
            let (mut f, beh_i, numeric): (Vec<String>, usize, &[usize]) = if self.native {
                (
                    vec![
                        ev.ts.to_string(),
                        ev.user.to_string(),
                        ev.item.to_string(),
                        SCENES[ev.scene as usize].into(),
                        BEHAVIORS[ev.beh as usize].into(),
                        ev.qty.to_string(),
                        ev.amount.to_string(),
                    ],
                    4,
                    &[0, 1, 2, 5, 6],
                )
            } else {
                (
                    vec![
                        ev.user.to_string(),
                        ev.item.to_string(),
                        ev.cat.to_string(),
                        ub_behavior(ev.beh).into(),
                        (ev.ts / 1000).to_string(),
                    ],
                    3,
                    &[0, 1, 2, 4],
                )
            };
            let kinds = if self.native { 6 } else { 5 };
            let line = match rb.random_range(0..kinds) {
                0 => {
                    if rb.random_bool(0.5) {
                        let i = rb.random_range(0..f.len());
                        f.remove(i);
                    } else {
                        f.push("0".into());
                    }
                    f.join(",")
                }
                1 => {
                    let words: &[&str] = if self.native {
                        &["view", "purchase", "Click", "like", "pv", ""]
                    } else {
                        &["impression", "click", "view", "Buy", "purchase", ""]
                    };
                    f[beh_i] = words[rb.random_range(0..words.len())].into();
                    f.join(",")
                }
                2 => {
                    const JUNK: [&str; 6] = ["abc", "1.5", "12x", "NaN", "1e3", "#"];
                    f[numeric[rb.random_range(0..numeric.len())]] = JUNK[rb.random_range(0..JUNK.len())].into();
                    f.join(",")
                }
                3 => {
                    let i = numeric[rb.random_range(0..numeric.len())];
                    f[i] = format!("-{}", rb.random_range(1..100_000u32));
                    f.join(",")
                }
                4 => String::new(),
                _ => {
                    // native only: an invalid scene (empty or longer than 16 bytes)
                    f[3] = if rb.random_bool(0.5) { String::new() } else { "recommendation_carousel".into() };
                    f.join(",")
                }
            };
            self.ev_out.write_all(line.as_bytes())?;
            self.ev_out.write_all(b"\n")?;
            self.summary.bad_rows += 1;
        }
        Ok(())
    }

    fn release_delayed(&mut self, upto: u64) -> io::Result<()> {
        while let Some(Reverse(d)) = self.delayed.peek() {
            if d.key > upto {
                break;
            }
            let Reverse(d) = self.delayed.pop().unwrap();
            self.write_event(&d.ev)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- main loop

    fn run(&mut self) -> io::Result<()> {
        if self.native {
            self.cat_out
                .as_mut()
                .unwrap()
                .write_all(b"ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents\n")?;
            self.ev_out.write_all(b"ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents\n")?;
        }
        self.init_catalog()?;

        let n = self.cfg.events;
        let pb = if self.cfg.progress && io::stderr().is_terminal() {
            let pb = ProgressBar::new(n);
            if let Ok(st) = ProgressStyle::with_template(
                "{spinner} gen [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, eta {eta})",
            ) {
                pb.set_style(st);
            }
            Some(pb)
        } else {
            None
        };

        let total = *self.cum.last().unwrap();
        let end = self.start + self.span_ms;
        // sorted uniforms, generated in order: rem = 1 - U_(i)
        let mut rem = 1.0f64;
        let mut minute = 0usize;
        let last_minute = self.minute_w.len() - 1;
        let mut prev_ts = self.start;
        for i in 0..n {
            let k = (n - i) as f64;
            let u: f64 = self.rng.random();
            rem *= (1.0 - u).powf(1.0 / k);
            let target = (1.0 - rem) * total;
            while minute < last_minute && self.cum[minute + 1] <= target {
                minute += 1;
            }
            let w = self.minute_w[minute];
            let fr = if w > 0.0 { ((target - self.cum[minute]) / w).clamp(0.0, 1.0) } else { 0.0 };
            let mut ts = self.start + minute as u64 * 60_000 + (fr * self.minute_ms(minute) as f64) as u64;
            ts = ts.clamp(prev_ts, end - 1);
            prev_ts = ts;

            self.apply_changes(ts)?;
            let ev = self.next_event(ts, minute);
            if self.cfg.late_fraction > 0.0 && self.rng_late.random_bool(self.cfg.late_fraction) {
                let d = if self.rng_late.random_bool(LATE_SHORT_SHARE) {
                    self.rng_late.random_range(1_000..=LATE_SHORT_MAX_MS)
                } else {
                    self.rng_late.random_range(LATE_LONG_MIN_MS..=LATE_LONG_MAX_MS)
                };
                self.delayed_seq += 1;
                self.delayed.push(Reverse(Delayed { key: ts + d, seq: self.delayed_seq, ev }));
                if self.delayed.len() > MAX_DELAYED {
                    let Reverse(d) = self.delayed.pop().unwrap();
                    self.write_event(&d.ev)?;
                }
            } else {
                self.write_event(&ev)?;
            }
            self.release_delayed(ts)?;
            if let Some(pb) = &pb {
                if i & 0xffff == 0xffff {
                    pb.set_position(i + 1);
                }
            }
        }
        self.release_delayed(u64::MAX)?;
        // remaining catalog changes within the span
        self.apply_changes(end - 1)?;
        self.ev_out.flush()?;
        if let Some(c) = self.cat_out.as_mut() {
            c.flush()?;
        }
        if let Some(pb) = pb {
            pb.set_position(n);
            pb.finish();
        }
        Ok(())
    }
}

fn ub_behavior(b: u8) -> &'static str {
    match b {
        CLICK => "pv",
        FAV => "fav",
        CART => "cart",
        BUY => "buy",
        _ => "pv",
    }
}
