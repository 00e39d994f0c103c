//! Independent reference for the `shopflow` contract (README, section "Semantics").
//!
//! Three parts, all plain sequential Rust (no timely, no differential, nothing from `src/`):
//!
//! * a seeded random input generator (native events + catalog, or UserBehavior rows)
//!   that deliberately exercises the corner cases of the contract;
//! * a literal, from-scratch reference: for every logical time `t` of any valid input
//!   row it recomputes the complete state of each of the eight outputs;
//! * a checker that parses the binary's change streams, checks their basic contract and
//!   compares the accumulated state with the reference at every `t`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

/// The production-case outputs (docs/cases-contract.md): their reference and checker.
pub mod cases;

/// The eight outputs and their columns (after `time,diff`), in README order.
pub const OUTPUTS: [(&str, &str); 8] = [
    ("item_stats", "item_id,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers"),
    ("category_stats", "category_id,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers"),
    ("scene_stats", "scene,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers"),
    ("user_stats", "user_id,impressions,clicks,favs,carts,buys,units,gmv_cents,items"),
    ("category_top_items", "category_id,rank,item_id,buys,gmv_cents"),
    ("user_top_categories", "user_id,rank,category_id,score"),
    ("hourly_stats", "window_start_ms,scene,impressions,clicks,favs,carts,buys,gmv_cents"),
    ("untagged", "item_id,events"),
];

pub const NATIVE_HEADER: &str = "ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents";
pub const CATALOG_HEADER: &str = "ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents";
pub const REJECTED_HEADER: &str = "file,line,reason,raw";

const HOUR_MS: u64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Native,
    UserBehavior,
}

impl Format {
    pub fn arg(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::UserBehavior => "userbehavior",
        }
    }
}

// =====================================================================================
// Generator
// =====================================================================================

#[derive(Clone, Debug)]
pub struct GenConfig {
    pub seed: u64,
    pub format: Format,
    pub n_event_files: usize,
    pub events_per_file: usize,
    /// Native only: number of catalog rows (0 = no catalog file at all).
    pub catalog_rows: usize,
    pub n_users: usize,
    pub n_items: usize,
    pub n_cats: usize,
    pub n_scenes: usize,
    pub epoch_ms: u64,
    pub lateness_ms: u64,
    /// Event-time span covered by each file's clock.
    pub span_ms: u64,
    /// Sprinkle malformed rows (~3%) into every file.
    pub malformed: bool,
    /// Random `\r\n` line ends and randomly no final newline.
    pub crlf: bool,
    /// Use ids near `u64::MAX` for one user and one item.
    pub huge_ids: bool,
    /// Start the clocks near ts 0 (watermarks saturate at 0, timestamps 0 occur).
    pub small_t0: bool,
    /// Once per file, a row 20..60 minutes in the future: it pushes the watermark far
    /// ahead, so the following rows are late and pile up in one logical time.
    pub future_spike: bool,
}

impl GenConfig {
    pub fn native(seed: u64) -> GenConfig {
        let mut r = Pcg64::seed_from_u64(seed ^ 0x5EED_0000_C0FF_EE00);
        // (epoch, lateness, span): mostly the default, sometimes other shapes.
        let (epoch_ms, lateness_ms, span_ms) = match r.random_range(0..10) {
            0 => (45_000, 100_000, 3 * HOUR_MS),
            1 => (60_000, 0, 3 * HOUR_MS),
            2 => (30_000, 50_000, 2 * HOUR_MS),
            3 => (420_000, 90_000, 4 * HOUR_MS),
            _ => (60_000, 120_000, 3 * HOUR_MS),
        };
        GenConfig {
            seed,
            format: Format::Native,
            n_event_files: 1,
            events_per_file: r.random_range(1500..4500),
            catalog_rows: r.random_range(150..1400),
            n_users: 30,
            n_items: 40,
            n_cats: r.random_range(3..=5),
            n_scenes: r.random_range(3..=4),
            epoch_ms,
            lateness_ms,
            span_ms,
            malformed: false,
            crlf: false,
            huge_ids: seed.is_multiple_of(3),
            small_t0: seed.is_multiple_of(5),
            future_spike: seed % 4 == 1,
        }
    }

    pub fn userbehavior(seed: u64) -> GenConfig {
        GenConfig { format: Format::UserBehavior, n_event_files: 2, catalog_rows: 0, ..GenConfig::native(seed) }
    }
}

/// Generated file contents.
#[derive(Clone, Debug)]
pub struct Generated {
    pub format: Format,
    pub events: Vec<String>,
    pub catalog: Option<String>,
}

const SCENE_POOL: [&str; 7] = ["home", "search", "sixteen_bytes_16", "live stream", "x", "cart-page", "café_bär"];
const CAT_POOL: [u64; 6] = [7, 12, 100, 3, 45, 999];

struct Gen {
    rng: Pcg64,
    cfg: GenConfig,
    users: Vec<u64>,
    items: Vec<u64>,
    cats: Vec<u64>,
    scenes: Vec<&'static str>,
    t0: u64,
}

impl Gen {
    fn new(cfg: &GenConfig) -> Gen {
        let mut rng = Pcg64::seed_from_u64(cfg.seed);
        let mut users: Vec<u64> = (0..cfg.n_users as u64).map(|i| i * 13 + 1).collect();
        let mut items: Vec<u64> = (0..cfg.n_items as u64).map(|i| i * 37 + 5).collect();
        if cfg.huge_ids {
            users[0] = u64::MAX;
            items[1] = u64::MAX - 1;
            users[2] = 10_000_000_000;
        }
        let cats = CAT_POOL[..cfg.n_cats].to_vec();
        let mut scenes = SCENE_POOL.to_vec();
        // Pick n_scenes scenes (deterministic shuffle).
        for i in (1..scenes.len()).rev() {
            let j = rng.random_range(0..=i);
            scenes.swap(i, j);
        }
        scenes.truncate(cfg.n_scenes);
        // Start in the middle of an hour, not aligned to the epoch.
        let base = 1_700_000_000_000u64;
        let t0 = if cfg.small_t0 {
            rng.random_range(0..200_000)
        } else {
            base - base % HOUR_MS + HOUR_MS / 2 + rng.random_range(0..HOUR_MS / 4) + 12_345
        };
        Gen { rng, cfg: cfg.clone(), users, items, cats, scenes, t0 }
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.rng.random_range(0..v.len())]
    }

    /// An item, skewed towards the first ten items so some items get many buys.
    fn pick_item(&mut self) -> u64 {
        if self.rng.random_bool(0.5) {
            let n = self.items.len().min(10);
            self.items[self.rng.random_range(0..n)]
        } else {
            self.pick(&self.items.clone())
        }
    }

    /// A timestamp around `clock`: mostly out of order within the lateness, sometimes ahead
    /// (which pushes the watermark), sometimes later than the lateness (late rows).
    fn jitter(&mut self, clock: u64) -> u64 {
        // With lateness 0 jitter by up to an epoch instead (every step back is late then).
        let l = self.cfg.lateness_ms.max(self.cfg.epoch_ms).max(2);
        let e = self.cfg.epoch_ms;
        match self.rng.random_range(0..100) {
            0..=49 => clock.saturating_sub(self.rng.random_range(0..l)),
            50..=64 => clock + self.rng.random_range(0..l / 2),
            65..=76 => clock.saturating_sub(l + self.rng.random_range(0..4 * e)),
            77..=79 => clock.saturating_sub(3 * l + self.rng.random_range(0..10 * e)),
            _ => clock,
        }
    }

    fn behavior(&mut self) -> &'static str {
        match self.rng.random_range(0..100) {
            0..=39 => "impression",
            40..=64 => "click",
            65..=72 => "fav",
            73..=82 => "cart",
            _ => "buy",
        }
    }

    /// Timestamp for row `k` of `n`: the jittered clock, or once (if configured) a spike.
    fn ts_for(&mut self, clock: u64, k: usize, n: usize, spike_at: usize) -> u64 {
        if self.cfg.future_spike && k == spike_at && n > 0 {
            clock + self.rng.random_range(20 * 60_000..60 * 60_000)
        } else {
            self.jitter(clock)
        }
    }

    fn native_events(&mut self, file: usize) -> Vec<String> {
        let n = self.cfg.events_per_file;
        let spike_at = self.rng.random_range(n / 4..n / 2 + 1);
        let start = self.t0 + file as u64 * self.rng.random_range(0..10 * 60_000);
        let step = (2 * self.cfg.span_ms / n as u64).max(1);
        let mut clock = start;
        let mut lines = vec![NATIVE_HEADER.to_string()];
        for k in 0..n {
            clock += self.rng.random_range(0..=step);
            if self.cfg.malformed && self.rng.random_bool(0.03) {
                let l = self.malformed_native(clock);
                lines.push(l);
                continue;
            }
            let ts = self.ts_for(clock, k, n, spike_at);
            let user = self.pick(&self.users.clone());
            let item = self.pick_item();
            let scene = self.pick(&self.scenes.clone());
            let b = self.behavior();
            let (q, a) = if b == "buy" {
                let q = self.rng.random_range(1..=4u64);
                let price = self.pick(&[100u64, 250, 500, 999]);
                let a = if self.rng.random_bool(0.05) { 0 } else { q * price };
                (q, a)
            } else if self.rng.random_bool(0.2) {
                (self.rng.random_range(1..9u64), self.rng.random_range(1..5000u64))
            } else {
                (0, 0)
            };
            lines.push(format!("{ts},{user},{item},{scene},{b},{q},{a}"));
            if self.rng.random_bool(0.02) {
                // an exact duplicate row: events are a multiset
                lines.push(lines.last().unwrap().clone());
            }
        }
        lines
    }

    fn malformed_native(&mut self, clock: u64) -> String {
        let u = self.pick(&self.users.clone());
        let i = self.pick(&self.items.clone());
        let l = self.cfg.lateness_ms;
        let ts = clock;
        match self.rng.random_range(0..19) {
            0 => String::new(),
            1 => format!("{ts},{u},{i},home,click,0"),
            2 => format!("{ts},{u},{i},home,click,0,0,0"),
            3 => format!("{ts},{u},{i},home,purchase,1,100"),
            4 => format!("{ts},{u},{i},home,Buy,1,100"),
            5 => format!("{ts},{u},{i},home,buy,-1,100"),
            6 => format!("{ts},u{u},{i},home,click,0,0"),
            7 => format!("{ts},{u},{i},seventeen_bytes_1,click,0,0"),
            8 => format!("{ts},{u},{i},,click,0,0"),
            9 => format!("{ts},{u},{i},ho\"me,click,0,0"),
            16 => format!("{ts},{u},{i},ééééééééé,click,0,0"), // 9 chars, 18 bytes
            17 => format!("{ts},{u},{i},home,click,0,0 "),
            18 => format!("{ts},+{u},{i},home,click,0,0"),
            10 => format!("{ts},{u},{i},home,buy,4294967296,100"),
            11 => format!("{ts},{u},{i},home,buy,1,18446744073709551616"),
            12 => format!("abc,{u},{i},home,click,0,0"),
            // Rejected, but its timestamp parses and lies ahead: it pushes the watermark.
            13 => format!("{},{u},{i},home,purchase,0,0", clock + self.rng.random_range(0..l.max(1))),
            14 => format!("{}", clock + self.rng.random_range(0..l.max(1))),
            _ => format!("{ts},-{u},{i},home,click,0,0"),
        }
    }

    fn ub_events(&mut self, file: usize, base_cat: &BTreeMap<u64, u64>) -> Vec<String> {
        let n = self.cfg.events_per_file;
        let start = self.t0 + file as u64 * self.rng.random_range(0..10 * 60_000);
        let step = (2 * self.cfg.span_ms / n as u64).max(1);
        let mut clock = start;
        let mut lines = Vec::new();
        let spike_at = self.rng.random_range(n / 4..n / 2 + 1);
        for k in 0..n {
            clock += self.rng.random_range(0..=step);
            let secs = self.ts_for(clock, k, n, spike_at) / 1000;
            let user = self.pick(&self.users.clone());
            let item = self.pick_item();
            if self.cfg.malformed && self.rng.random_bool(0.03) {
                let l = match self.rng.random_range(0..8) {
                    0 => String::new(),
                    1 => format!("{user},{item},7,click,{secs}"),
                    2 => format!("{user},{item},7,pv"),
                    3 => format!(
                        "{user},{item},7,pv,{},extra",
                        (clock + self.rng.random_range(0..self.cfg.lateness_ms.max(1))) / 1000
                    ),
                    4 => format!("{user},{item},7,pv,soon"),
                    5 => format!("-{user},{item},7,pv,{secs}"),
                    6 => format!(
                        "{user},{item},7,PV,{}",
                        (clock + self.rng.random_range(0..self.cfg.lateness_ms.max(1))) / 1000
                    ),
                    _ => format!("{user},{item},x7,buy,{secs}"),
                };
                lines.push(l);
                continue;
            }
            let cat = if self.rng.random_bool(0.75) { base_cat[&item] } else { self.pick(&self.cats.clone()) };
            let b = match self.rng.random_range(0..100) {
                0..=59 => "pv",
                60..=71 => "fav",
                72..=84 => "cart",
                _ => "buy",
            };
            lines.push(format!("{user},{item},{cat},{b},{secs}"));
            if self.rng.random_bool(0.02) {
                lines.push(lines.last().unwrap().clone());
            }
        }
        lines
    }

    fn catalog(&mut self) -> Vec<String> {
        let n = self.cfg.catalog_rows;
        let mut lines = vec![CATALOG_HEADER.to_string()];
        // The last ~12% of items never get a catalog row.
        let n_cat_items = self.items.len() - (self.items.len() / 8).max(1);
        let cat_items: Vec<u64> = self.items[..n_cat_items].to_vec();
        let start = self.t0.saturating_sub(10 * 60_000);
        // Introduction time of each item: a few right away, the others spread over
        // the first 60% of the span (so many items have events before their first row).
        let intro: Vec<u64> = cat_items
            .iter()
            .enumerate()
            .map(|(k, _)| if k % 4 == 0 { start } else { start + self.rng.random_range(0..self.cfg.span_ms * 6 / 10) })
            .collect();
        let step = (2 * (self.cfg.span_ms + 10 * 60_000) / n as u64).max(1);
        let mut clock = start;
        let mut deleted: BTreeSet<u64> = BTreeSet::new();
        let mut written = 0;
        let spike_at = self.rng.random_range(n / 4..n / 2 + 1);
        let mut spiked = false;
        while written < n {
            clock += self.rng.random_range(0..=step);
            if self.cfg.malformed && self.rng.random_bool(0.03) {
                let it = self.pick(&cat_items);
                let ts = clock;
                let l = match self.rng.random_range(0..9) {
                    0 => String::new(),
                    1 => format!("{ts},update,{it},7,1,100,online,0,0"),
                    2 => format!("{ts},upsert,{it},7,1,100,paused,0,0"),
                    3 => format!("{ts},upsert,{it},7,1,100,online,yes,0"),
                    4 => format!("{ts},upsert,{it},7,1,100,online,0"),
                    5 => format!("{ts},upsert,{it},-7,1,100,online,0,0"),
                    6 => format!("{ts},delete,{it}"),
                    7 => format!(
                        "{},upsert,{it},7,1,100,online,1,x",
                        clock + self.rng.random_range(0..self.cfg.lateness_ms.max(1))
                    ),
                    _ => format!("t{ts},upsert,{it},7,1,100,online,0,0"),
                };
                lines.push(l);
                written += 1;
                continue;
            }
            let avail: Vec<usize> = (0..cat_items.len()).filter(|&k| intro[k] <= clock).collect();
            let k = avail[self.rng.random_range(0..avail.len())];
            let item = cat_items[k];
            let ts = if self.cfg.future_spike && !spiked && written >= spike_at {
                spiked = true;
                clock + self.rng.random_range(20 * 60_000..60 * 60_000)
            } else {
                self.jitter(clock)
            };
            // Sometimes a burst: several rows for the item in one epoch (file order wins).
            let burst = if self.rng.random_bool(0.15) { self.rng.random_range(2..=4) } else { 1 };
            for _ in 0..burst {
                let ts_b = if burst > 1 {
                    ts - ts % self.cfg.epoch_ms + self.rng.random_range(0..self.cfg.epoch_ms)
                } else {
                    ts
                };
                let del = !deleted.contains(&item) && self.rng.random_bool(0.18);
                if del {
                    deleted.insert(item);
                    if self.rng.random_bool(0.5) {
                        lines.push(format!("{ts_b},delete,{item},,,,,,"));
                    } else {
                        let c = self.pick(&self.cats.clone());
                        lines.push(format!("{ts_b},delete,{item},{c},3,100,online,0,0"));
                    }
                } else {
                    deleted.remove(&item);
                    let c = self.pick(&self.cats.clone());
                    let seller = self.rng.random_range(1..50u64);
                    let price = self.rng.random_range(100..100_000u64);
                    let status = if self.rng.random_bool(0.25) { "offline" } else { "online" };
                    let is_ad = self.pick(&["0", "1", "true", "false"]);
                    let bid = if is_ad == "1" || is_ad == "true" { self.rng.random_range(1..500u64) } else { 0 };
                    lines.push(format!("{ts_b},upsert,{item},{c},{seller},{price},{status},{is_ad},{bid}"));
                }
                written += 1;
            }
        }
        lines
    }

    fn join(&mut self, lines: &[String]) -> String {
        let mut s = String::new();
        for (k, l) in lines.iter().enumerate() {
            s.push_str(l);
            let last = k + 1 == lines.len();
            if self.cfg.crlf {
                if last && self.rng.random_bool(0.5) {
                    break; // no final newline
                }
                s.push_str(if self.rng.random_bool(0.5) { "\r\n" } else { "\n" });
            } else {
                s.push('\n');
            }
        }
        s
    }
}

pub fn generate(cfg: &GenConfig) -> Generated {
    let mut g = Gen::new(cfg);
    match cfg.format {
        Format::Native => {
            let catalog = if cfg.catalog_rows > 0 {
                let lines = g.catalog();
                Some(g.join(&lines))
            } else {
                None
            };
            let mut events = Vec::new();
            for f in 0..cfg.n_event_files {
                let lines = g.native_events(f);
                events.push(g.join(&lines));
            }
            Generated { format: Format::Native, events, catalog }
        }
        Format::UserBehavior => {
            let items = g.items.clone();
            let base_cat: BTreeMap<u64, u64> = items.iter().map(|&i| (i, g.pick(&g.cats.clone()))).collect();
            let mut events = Vec::new();
            for f in 0..cfg.n_event_files {
                let lines = g.ub_events(f, &base_cat);
                events.push(g.join(&lines));
            }
            Generated { format: Format::UserBehavior, events, catalog: None }
        }
    }
}

// =====================================================================================
// Reference
// =====================================================================================

#[derive(Clone, Debug)]
pub struct RunSpec {
    pub format: Format,
    pub events: Vec<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub epoch_ms: u64,
    pub lateness_ms: u64,
    /// Do not pass --epoch-ms/--lateness-ms (to test the documented defaults).
    pub omit_time_flags: bool,
    /// Extra arguments (e.g. --strict).
    pub extra_args: Vec<String>,
}

impl RunSpec {
    /// Writes `gen` into `dir` (events0.csv, events1.csv, ..., catalog.csv).
    pub fn write(gen: &Generated, dir: &Path, epoch_ms: u64, lateness_ms: u64) -> RunSpec {
        std::fs::create_dir_all(dir).unwrap();
        let mut events = Vec::new();
        for (k, c) in gen.events.iter().enumerate() {
            let p = dir.join(format!("events{k}.csv"));
            std::fs::write(&p, c).unwrap();
            events.push(p);
        }
        let catalog = gen.catalog.as_ref().map(|c| {
            let p = dir.join("catalog.csv");
            std::fs::write(&p, c).unwrap();
            p
        });
        RunSpec {
            format: gen.format,
            events,
            catalog,
            epoch_ms,
            lateness_ms,
            omit_time_flags: false,
            extra_args: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Beh {
    Impression,
    Click,
    Fav,
    Cart,
    Buy,
}

#[derive(Clone, Debug)]
struct Ev {
    time: u64,
    ts: u64,
    user: u64,
    item: u64,
    scene: String,
    beh: Beh,
    qty: u64,
    amount: u64,
}

/// A catalog row (native catalog file, or derived from a UserBehavior row).
#[derive(Clone, Debug)]
struct CatRow {
    time: u64,
    file: usize,
    line: u64,
    item: u64,
    /// `None` = delete.
    cat: Option<u64>,
    /// The whole upsert (`None` = delete); `info.cat == cat`.
    info: Option<CatInfo>,
}

/// What an upsert row says about its item (UserBehavior rows: online, not an ad).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatInfo {
    pub cat: u64,
    pub online: bool,
    pub is_ad: bool,
    pub bid: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub valid_events: usize,
    pub late_events: usize,
    pub valid_catalog: usize,
    pub late_catalog: usize,
    pub rejected: usize,
    pub times: usize,
}

pub type OutState = BTreeSet<Vec<String>>;

pub struct Reference {
    /// Every distinct logical time of a valid row, ascending.
    pub times: Vec<u64>,
    /// `states[k][o]`: state of output `o` (index into OUTPUTS) at `times[k]`.
    pub states: Vec<Vec<OutState>>,
    /// (file path, line, raw line without line end).
    pub rejected: BTreeSet<(PathBuf, u64, String)>,
    pub counts: Counts,
}

/// Unsigned decimal integer: only ASCII digits, at least one, fits u64.
fn pu64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok()
}

fn pu32(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().map(u64::from)
}

/// The lines of a file: split on `\n`, a final newline does not start a line, one
/// trailing `\r` is stripped.
pub fn file_lines(content: &str) -> Vec<&str> {
    if content.is_empty() {
        return Vec::new();
    }
    let body = content.strip_suffix('\n').unwrap_or(content);
    body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
}

/// Per line (0-based index), the watermark before that line, given the timestamp (ms)
/// each line's timestamp field parses to (if it does).
fn watermarks(ts_of_line: &[Option<u64>], lateness: u64) -> Vec<u64> {
    let mut max: Option<u64> = None;
    let mut out = Vec::with_capacity(ts_of_line.len());
    for ts in ts_of_line {
        out.push(max.map(|m| m.saturating_sub(lateness)).unwrap_or(0));
        if let Some(t) = ts {
            max = Some(max.map_or(*t, |m| m.max(*t)));
        }
    }
    out
}

fn parse_native(line: &str) -> Option<(u64, u64, u64, String, Beh, u64, u64)> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 7 {
        return None;
    }
    let ts = pu64(f[0])?;
    let user = pu64(f[1])?;
    let item = pu64(f[2])?;
    let scene = f[3];
    if scene.is_empty() || scene.len() > 16 || scene.chars().any(|c| c == '"' || c.is_control()) {
        return None;
    }
    let beh = match f[4] {
        "impression" => Beh::Impression,
        "click" => Beh::Click,
        "fav" => Beh::Fav,
        "cart" => Beh::Cart,
        "buy" => Beh::Buy,
        _ => return None,
    };
    let qty = pu32(f[5])?;
    // The README caps one order's amount at 10^15 cents, so sums stay exact in 64 bits.
    let amount = pu64(f[6]).filter(|&a| a <= 1_000_000_000_000_000)?;
    Some((ts, user, item, scene.to_string(), beh, qty, amount))
}

fn parse_catalog(line: &str) -> Option<(u64, u64, Option<CatInfo>)> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 9 {
        return None;
    }
    let ts = pu64(f[0])?;
    let item = pu64(f[2])?;
    match f[1] {
        "delete" => Some((ts, item, None)),
        "upsert" => {
            let cat = pu64(f[3])?;
            pu64(f[4])?;
            pu64(f[5])?;
            if !matches!(f[6], "online" | "offline") {
                return None;
            }
            if !matches!(f[7], "0" | "1" | "true" | "false") {
                return None;
            }
            let bid = pu64(f[8])?;
            let info = CatInfo { cat, online: f[6] == "online", is_ad: matches!(f[7], "1" | "true"), bid };
            Some((ts, item, Some(info)))
        }
        _ => None,
    }
}

fn parse_ub(line: &str) -> Option<(u64, u64, u64, Beh, u64)> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 5 {
        return None;
    }
    let user = pu64(f[0])?;
    let item = pu64(f[1])?;
    let cat = pu64(f[2])?;
    let beh = match f[3] {
        "pv" => Beh::Click,
        "fav" => Beh::Fav,
        "cart" => Beh::Cart,
        "buy" => Beh::Buy,
        _ => return None,
    };
    let ts = pu64(f[4])?.checked_mul(1000)?;
    Some((user, item, cat, beh, ts))
}

/// Timestamp field (ms) of a line, if it parses (native/catalog: field 1; UB: field 5).
fn ts_field(format_ub: bool, line: &str) -> Option<u64> {
    if format_ub {
        line.split(',').nth(4).and_then(pu64).and_then(|s| s.checked_mul(1000))
    } else {
        line.split(',').next().and_then(pu64)
    }
}

#[derive(Default, Clone)]
struct Agg {
    /// impressions, clicks, favs, carts, buys, units, gmv
    c: [u64; 7],
    users: BTreeSet<u64>,
    buyers: BTreeSet<u64>,
    items: BTreeSet<u64>,
    events: u64,
}

impl Agg {
    fn add(&mut self, e: &Ev) {
        match e.beh {
            Beh::Impression => self.c[0] += 1,
            Beh::Click => self.c[1] += 1,
            Beh::Fav => self.c[2] += 1,
            Beh::Cart => self.c[3] += 1,
            Beh::Buy => {
                self.c[4] += 1;
                self.c[5] += e.qty;
                self.c[6] += e.amount;
                self.buyers.insert(e.user);
            }
        }
        self.users.insert(e.user);
        self.items.insert(e.item);
        self.events += 1;
    }

    fn nonzero(&self) -> bool {
        self.c.iter().any(|&x| x != 0) || !self.users.is_empty()
    }

    fn stats_row(&self, key: String) -> Vec<String> {
        let mut r = vec![key];
        r.extend(self.c.iter().map(|x| x.to_string()));
        r.push(self.users.len().to_string());
        r.push(self.buyers.len().to_string());
        r
    }
}

fn score(b: Beh) -> u64 {
    match b {
        Beh::Impression => 0,
        Beh::Click => 1,
        Beh::Fav => 3,
        Beh::Cart => 5,
        Beh::Buy => 10,
    }
}

/// All eight outputs, from the valid events with logical time ≤ t and the catalog
/// state at t (item -> current category; absent = no catalog row).
fn outputs_at(evs: &[&Ev], cat_of: &BTreeMap<u64, u64>) -> Vec<OutState> {
    let mut by_item: BTreeMap<u64, Agg> = BTreeMap::new();
    let mut by_cat: BTreeMap<u64, Agg> = BTreeMap::new();
    let mut by_scene: BTreeMap<String, Agg> = BTreeMap::new();
    let mut by_user: BTreeMap<u64, Agg> = BTreeMap::new();
    let mut by_hour: BTreeMap<(u64, String), Agg> = BTreeMap::new();
    let mut user_cat_score: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
    for e in evs {
        by_item.entry(e.item).or_default().add(e);
        by_scene.entry(e.scene.clone()).or_default().add(e);
        by_user.entry(e.user).or_default().add(e);
        by_hour.entry((e.ts - e.ts % HOUR_MS, e.scene.clone())).or_default().add(e);
        if let Some(&c) = cat_of.get(&e.item) {
            by_cat.entry(c).or_default().add(e);
            *user_cat_score.entry(e.user).or_default().entry(c).or_default() += score(e.beh);
        }
    }
    let mut out: Vec<OutState> = vec![BTreeSet::new(); 8];
    for (item, a) in &by_item {
        if a.nonzero() {
            out[0].insert(a.stats_row(item.to_string()));
        }
    }
    for (c, a) in &by_cat {
        if a.nonzero() {
            out[1].insert(a.stats_row(c.to_string()));
        }
    }
    for (s, a) in &by_scene {
        if a.nonzero() {
            out[2].insert(a.stats_row(s.clone()));
        }
    }
    for (u, a) in &by_user {
        if a.nonzero() {
            let mut r = vec![u.to_string()];
            r.extend(a.c.iter().map(|x| x.to_string()));
            r.push(a.items.len().to_string());
            out[3].insert(r);
        }
    }
    // category_top_items
    let mut per_cat: BTreeMap<u64, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for (item, a) in &by_item {
        if let Some(&c) = cat_of.get(item) {
            if a.c[4] >= 1 {
                per_cat.entry(c).or_default().push((a.c[4], a.c[6], *item));
            }
        }
    }
    for (c, mut v) in per_cat {
        v.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
        for (rank, (buys, gmv, item)) in v.into_iter().take(10).enumerate() {
            out[4].insert(vec![
                c.to_string(),
                (rank + 1).to_string(),
                item.to_string(),
                buys.to_string(),
                gmv.to_string(),
            ]);
        }
    }
    // user_top_categories
    for (u, m) in user_cat_score {
        let mut v: Vec<(u64, u64)> = m.into_iter().filter(|&(_, s)| s > 0).collect();
        v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        for (rank, (c, s)) in v.into_iter().take(3).enumerate() {
            out[5].insert(vec![u.to_string(), (rank + 1).to_string(), c.to_string(), s.to_string()]);
        }
    }
    for ((w, s), a) in &by_hour {
        let c = &a.c;
        if c[..5].iter().any(|&x| x != 0) || c[6] != 0 {
            out[6].insert(vec![
                w.to_string(),
                s.clone(),
                c[0].to_string(),
                c[1].to_string(),
                c[2].to_string(),
                c[3].to_string(),
                c[4].to_string(),
                c[6].to_string(),
            ]);
        }
    }
    for (item, a) in &by_item {
        if !cat_of.contains_key(item) && a.events > 0 {
            out[7].insert(vec![item.to_string(), a.events.to_string()]);
        }
    }
    out
}

/// The valid rows of a run's inputs, with their logical times, and the rejected lines.
#[derive(Clone, Debug)]
pub struct ParsedInputs {
    ub: bool,
    /// Valid events, sorted by logical time (stable: file order within a time).
    events: Vec<Ev>,
    /// Catalog rows in (file, line) order.
    cat_rows: Vec<CatRow>,
    pub rejected: BTreeSet<(PathBuf, u64, String)>,
    pub counts: Counts,
}

impl ParsedInputs {
    /// Catalog state at time `t` (any u64, not only an epoch start): item -> its row.
    fn catalog_at(&self, t: u64) -> BTreeMap<u64, CatInfo> {
        let mut out: BTreeMap<u64, CatInfo> = BTreeMap::new();
        if self.ub {
            // Smallest (file index, line) among rows with logical time <= t wins.
            for r in &self.cat_rows {
                if r.time <= t && !out.contains_key(&r.item) {
                    out.insert(r.item, r.info.unwrap());
                }
            }
        } else {
            // Greatest line among rows with logical time <= t; delete removes.
            let mut last: BTreeMap<u64, Option<CatInfo>> = BTreeMap::new();
            for r in &self.cat_rows {
                if r.time <= t {
                    last.insert(r.item, r.info);
                }
            }
            out = last.into_iter().filter_map(|(i, c)| c.map(|c| (i, c))).collect();
        }
        out
    }
}

/// Reads and parses every input file of `spec` (README "Inputs" and "Time").
pub fn parse_inputs(spec: &RunSpec) -> ParsedInputs {
    let e = spec.epoch_ms;
    let epoch = |ts: u64| ts - ts % e;
    let ub = spec.format == Format::UserBehavior;
    let mut counts = Counts::default();
    let mut events: Vec<Ev> = Vec::new();
    let mut cat_rows: Vec<CatRow> = Vec::new();
    let mut rejected = BTreeSet::new();

    for (fi, path) in spec.events.iter().enumerate() {
        let content = std::fs::read_to_string(path).unwrap();
        let lines = file_lines(&content);
        let ts_of: Vec<Option<u64>> = lines.iter().map(|l| ts_field(ub, l)).collect();
        let wms = watermarks(&ts_of, spec.lateness_ms);
        for (k, line) in lines.iter().enumerate() {
            let lineno = k as u64 + 1;
            if !ub && k == 0 {
                assert_eq!(*line, NATIVE_HEADER, "generator wrote a bad header");
                continue;
            }
            let wm_epoch = epoch(wms[k]);
            if ub {
                match parse_ub(line) {
                    Some((user, item, cat, beh, ts)) => {
                        let time = epoch(ts).max(wm_epoch);
                        counts.late_events += (epoch(ts) < wm_epoch) as usize;
                        let qty = if beh == Beh::Buy { 1 } else { 0 };
                        events.push(Ev { time, ts, user, item, scene: "taobao".into(), beh, qty, amount: 0 });
                        let info = CatInfo { cat, online: true, is_ad: false, bid: 0 };
                        cat_rows.push(CatRow { time, file: fi, line: lineno, item, cat: Some(cat), info: Some(info) });
                    }
                    None => {
                        rejected.insert((path.clone(), lineno, line.to_string()));
                    }
                }
            } else {
                match parse_native(line) {
                    Some((ts, user, item, scene, beh, qty, amount)) => {
                        let time = epoch(ts).max(wm_epoch);
                        counts.late_events += (epoch(ts) < wm_epoch) as usize;
                        events.push(Ev { time, ts, user, item, scene, beh, qty, amount });
                    }
                    None => {
                        rejected.insert((path.clone(), lineno, line.to_string()));
                    }
                }
            }
        }
    }
    counts.valid_events = events.len();

    if let Some(path) = &spec.catalog {
        let content = std::fs::read_to_string(path).unwrap();
        let lines = file_lines(&content);
        let ts_of: Vec<Option<u64>> = lines.iter().map(|l| ts_field(false, l)).collect();
        let wms = watermarks(&ts_of, spec.lateness_ms);
        for (k, line) in lines.iter().enumerate() {
            let lineno = k as u64 + 1;
            if k == 0 {
                assert_eq!(*line, CATALOG_HEADER, "generator wrote a bad header");
                continue;
            }
            let wm_epoch = epoch(wms[k]);
            match parse_catalog(line) {
                Some((ts, item, info)) => {
                    let time = epoch(ts).max(wm_epoch);
                    counts.late_catalog += (epoch(ts) < wm_epoch) as usize;
                    counts.valid_catalog += 1;
                    let cat = info.map(|i| i.cat);
                    cat_rows.push(CatRow { time, file: 0, line: lineno, item, cat, info });
                }
                None => {
                    rejected.insert((path.clone(), lineno, line.to_string()));
                }
            }
        }
    }
    counts.rejected = rejected.len();
    // Catalog rows in (file, line) order.
    cat_rows.sort_by_key(|c| (c.file, c.line));
    events.sort_by_key(|e| e.time);
    ParsedInputs { ub, events, cat_rows, rejected, counts }
}

impl Reference {
    pub fn compute(spec: &RunSpec) -> Reference {
        let inputs = parse_inputs(spec);
        let ParsedInputs { ref events, ref cat_rows, ref rejected, ref counts, .. } = inputs;
        let mut counts = counts.clone();
        let rejected = rejected.clone();
        let times: Vec<u64> = events
            .iter()
            .map(|e| e.time)
            .chain(cat_rows.iter().map(|c| c.time))
            .collect::<BTreeSet<u64>>()
            .into_iter()
            .collect();
        counts.times = times.len();

        let mut states = Vec::with_capacity(times.len());
        for &t in &times {
            let cat_of: BTreeMap<u64, u64> = inputs.catalog_at(t).into_iter().map(|(i, c)| (i, c.cat)).collect();
            let n = events.partition_point(|ev| ev.time <= t);
            let evs: Vec<&Ev> = events[..n].iter().collect();
            states.push(outputs_at(&evs, &cat_of));
        }
        Reference { times, states, rejected, counts }
    }

    /// State of output `name` at time `t` (the last reference time ≤ t), for ad-hoc checks.
    pub fn state_at(&self, name: &str, t: u64) -> OutState {
        let o = OUTPUTS.iter().position(|(n, _)| *n == name).expect("unknown output");
        let k = self.times.partition_point(|&x| x <= t);
        if k == 0 {
            BTreeSet::new()
        } else {
            self.states[k - 1][o].clone()
        }
    }
}

// =====================================================================================
// Output parsing and comparison
// =====================================================================================

/// Splits one CSV record (RFC 4180 quoting; no embedded newlines expected).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_q = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_q {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_q = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            in_q = true;
            at_start = false;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    out.push(cur);
    out
}

/// One change: (time, diff, row).
pub type Change = (u64, i64, Vec<String>);

/// A fixed-point decimal `digits.digits` as (integer part, fraction digits padded to 18).
fn decimal(s: &str) -> Option<(u128, u128)> {
    let (i, f) = s.split_once('.')?;
    if i.is_empty() || f.is_empty() || f.len() > 18 || !(i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let frac: u128 = format!("{f:0<18}").parse().ok()?;
    Some((i.parse().ok()?, frac))
}

/// Typed row order: every column but `scene` is an integer (or a fixed-point decimal, or
/// empty: an absent value, before any number) and compares numerically
/// (`string_col` = index of the scene column, if any); other text compares as bytes.
pub fn typed_cmp(a: &[String], b: &[String], string_col: Option<usize>) -> std::cmp::Ordering {
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let numeric = |s: &str| pu64(s).map(|v| (v as u128, 0u128)).or_else(|| decimal(s));
        let o = match (numeric(x), numeric(y)) {
            _ if string_col == Some(k) => x.as_bytes().cmp(y.as_bytes()),
            (Some(p), Some(q)) => p.cmp(&q),
            (None, Some(_)) if x.is_empty() => std::cmp::Ordering::Less,
            (Some(_), None) if y.is_empty() => std::cmp::Ordering::Greater,
            _ => x.as_bytes().cmp(y.as_bytes()),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Parses `<out>/<name>.csv` and checks its basic contract: header, column count,
/// times ascending, diff ±1 (never 0), no row twice within one time, rows of one time
/// sorted by row (typed order).
pub fn parse_change_stream(path: &Path, columns: &str) -> Result<Vec<Change>, String> {
    parse_change_stream_with(path, columns, true)
}

/// `parse_change_stream`, with the check that the rows of a time are sorted (typed
/// order) only when `check_order`.
pub fn parse_change_stream_with(path: &Path, columns: &str, check_order: bool) -> Result<Vec<Change>, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let lines = file_lines(&content);
    let header = format!("time,diff,{columns}");
    if lines.first().copied() != Some(header.as_str()) {
        return Err(format!("{}: header {:?}, expected {:?}", path.display(), lines.first(), header));
    }
    let ncols = columns.split(',').count();
    let scene_col = columns.split(',').position(|c| c == "scene");
    let mut out: Vec<Change> = Vec::new();
    let mut seen_at_time: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut errs = Vec::new();
    for (k, line) in lines.iter().enumerate().skip(1) {
        let f = split_csv(line);
        if f.len() != ncols + 2 {
            errs.push(format!("line {}: {} fields, expected {}: {line:?}", k + 1, f.len(), ncols + 2));
            continue;
        }
        let Ok(time) = f[0].parse::<u64>() else {
            errs.push(format!("line {}: bad time: {line:?}", k + 1));
            continue;
        };
        let Ok(diff) = f[1].parse::<i64>() else {
            errs.push(format!("line {}: bad diff: {line:?}", k + 1));
            continue;
        };
        if diff == 0 {
            errs.push(format!("line {}: diff 0: {line:?}", k + 1));
        } else if diff != 1 && diff != -1 {
            errs.push(format!("line {}: diff {diff} is not ±1 (state must be a set): {line:?}", k + 1));
        }
        if let Some(prev) = out.last() {
            if time < prev.0 {
                errs.push(format!("line {}: time {time} after time {} (not ascending)", k + 1, prev.0));
            }
            if time != prev.0 {
                seen_at_time.clear();
            } else if check_order && typed_cmp(&prev.2, &f[2..], scene_col) != std::cmp::Ordering::Less {
                errs.push(format!("line {}: rows of time {time} not sorted by row: {line:?}", k + 1));
            }
        }
        let row: Vec<String> = f[2..].to_vec();
        if !seen_at_time.insert(row.clone()) {
            errs.push(format!("line {}: row appears twice at time {time} (not consolidated): {line:?}", k + 1));
        }
        out.push((time, diff, row));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        let n = errs.len();
        errs.truncate(10);
        Err(format!("{}: {n} contract violations, first ones:\n    {}", path.display(), errs.join("\n    ")))
    }
}

fn show_rows<'a>(rows: impl Iterator<Item = &'a Vec<String>>, max: usize) -> String {
    let v: Vec<&Vec<String>> = rows.collect();
    let mut s = String::new();
    for r in v.iter().take(max) {
        let _ = write!(s, "\n        {}", r.join(","));
    }
    if v.len() > max {
        let _ = write!(s, "\n        ... ({} more)", v.len() - max);
    }
    s
}

/// Compares the binary's eight change streams in `out` with the reference at every
/// reference time. Returns all problems found (first mismatching time per output).
/// The columns, the expected rows that are absent and the rows present but not expected,
/// as indented lines of a mismatch message.
pub fn state_difference(cols: &str, want: &BTreeSet<Vec<String>>, got: &BTreeSet<Vec<String>>) -> String {
    let missing: Vec<&Vec<String>> = want.difference(got).collect();
    let extra: Vec<&Vec<String>> = got.difference(want).collect();
    let mut m = format!("\n    columns: {cols}");
    let _ = write!(m, "\n    expected but absent ({}):{}", missing.len(), show_rows(missing.into_iter(), 8));
    let _ = write!(m, "\n    present but not expected ({}):{}", extra.len(), show_rows(extra.into_iter(), 8));
    m
}

pub fn compare_outputs(r: &Reference, out: &Path) -> Result<(), String> {
    let mut errors = Vec::new();
    let ref_times: BTreeSet<u64> = r.times.iter().copied().collect();
    for (o, (name, cols)) in OUTPUTS.iter().enumerate() {
        let path = out.join(format!("{name}.csv"));
        let stream = match parse_change_stream(&path, cols) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let stray: BTreeSet<u64> = stream.iter().map(|c| c.0).filter(|t| !ref_times.contains(t)).collect();
        if !stray.is_empty() {
            errors.push(format!(
                "{name}: changes at times that are no logical time of any valid row: {:?}",
                stray.iter().take(10).collect::<Vec<_>>()
            ));
        }
        let mut acc: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        let mut idx = 0;
        let mut mismatches = 0usize;
        let mut first: Option<String> = None;
        let empty = BTreeSet::new();
        for (k, &t) in r.times.iter().enumerate() {
            let start = idx;
            while idx < stream.len() && stream[idx].0 <= t {
                let (_, d, row) = &stream[idx];
                let e = acc.entry(row.clone()).or_insert(0);
                *e += d;
                if *e == 0 {
                    acc.remove(row);
                }
                idx += 1;
            }
            let bad_mult: Vec<(&Vec<String>, &i64)> = acc.iter().filter(|(_, &c)| c != 1).collect();
            let got: BTreeSet<Vec<String>> = acc.keys().cloned().collect();
            let want = &r.states[k][o];
            if &got != want || !bad_mult.is_empty() {
                mismatches += 1;
                if first.is_none() {
                    let prev = if k > 0 { &r.states[k - 1][o] } else { &empty };
                    let mut m = format!("{name}: mismatch at t={t} (reference time #{k} of {})", r.times.len());
                    m.push_str(&state_difference(cols, want, &got));
                    if !bad_mult.is_empty() {
                        let _ = write!(
                            m,
                            "\n    rows with accumulated count != 1: {:?}",
                            bad_mult.iter().take(5).collect::<Vec<_>>()
                        );
                    }
                    let ref_added: Vec<&Vec<String>> = want.difference(prev).collect();
                    let ref_removed: Vec<&Vec<String>> = prev.difference(want).collect();
                    let _ = write!(
                        m,
                        "\n    reference diff at t: +{} rows{}",
                        ref_added.len(),
                        show_rows(ref_added.into_iter(), 6)
                    );
                    let _ = write!(
                        m,
                        "\n    reference diff at t: -{} rows{}",
                        ref_removed.len(),
                        show_rows(ref_removed.into_iter(), 6)
                    );
                    let bin: Vec<Vec<String>> = stream[start..idx]
                        .iter()
                        .map(|(tt, d, row)| {
                            let mut v = vec![tt.to_string(), d.to_string()];
                            v.extend(row.iter().cloned());
                            v
                        })
                        .collect();
                    let _ =
                        write!(m, "\n    binary changes applied at t ({}):{}", bin.len(), show_rows(bin.iter(), 12));
                    first = Some(m);
                }
            }
        }
        if idx < stream.len() {
            errors.push(format!(
                "{name}: {} changes after the last reference time {:?}",
                stream.len() - idx,
                r.times.last()
            ));
        }
        if let Some(m) = first {
            errors.push(format!("{m}\n    ({mismatches} of {} reference times mismatch for {name})", r.times.len()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n  "))
    }
}

/// Checks `<out>/rejected.csv` against the reference's rejected lines: same set of
/// (file, line), same raw text. The `file` column may be the path as given or its
/// file name.
pub fn compare_rejected(r: &Reference, spec: &RunSpec, out: &Path) -> Result<(), String> {
    let files: Vec<PathBuf> = spec.events.iter().chain(spec.catalog.iter()).cloned().collect();
    compare_rejected_lines(&r.rejected, &files, out)
}

/// Checks `<out>/rejected.csv` against `expected` (file, line, raw) rows; `files` are the
/// input files the `file` column may name (path as given, or file name).
pub fn compare_rejected_lines(
    expected: &BTreeSet<(PathBuf, u64, String)>,
    files: &[PathBuf],
    out: &Path,
) -> Result<(), String> {
    let path = out.join("rejected.csv");
    let content = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let lines = file_lines(&content);
    if lines.first().copied() != Some(REJECTED_HEADER) {
        return Err(format!("rejected.csv: header {:?}, expected {REJECTED_HEADER:?}", lines.first()));
    }
    let mut got = BTreeSet::new();
    let mut errs = Vec::new();
    for line in &lines[1..] {
        let f = split_csv(line);
        if f.len() != 4 {
            errs.push(format!("rejected.csv: {} fields: {line:?}", f.len()));
            continue;
        }
        let file = files.iter().find(|p| {
            p.to_string_lossy() == f[0] || p.file_name().map(|n| n.to_string_lossy() == f[0]).unwrap_or(false)
        });
        let Some(file) = file else {
            errs.push(format!("rejected.csv: file column {:?} names none of the input files", f[0]));
            continue;
        };
        let Ok(lineno) = f[1].parse::<u64>() else {
            errs.push(format!("rejected.csv: bad line number: {line:?}"));
            continue;
        };
        if f[2].is_empty() {
            errs.push(format!("rejected.csv: empty reason: {line:?}"));
        }
        if !got.insert(((*file).clone(), lineno, f[3].trim_end_matches('\r').to_string())) {
            errs.push(format!("rejected.csv: duplicate entry {line:?}"));
        }
    }
    let missing: Vec<_> = expected.difference(&got).take(8).collect();
    let extra: Vec<_> = got.difference(expected).take(8).collect();
    if !missing.is_empty() {
        errs.push(format!("rejected.csv: expected but absent: {missing:?}"));
    }
    if !extra.is_empty() {
        errs.push(format!("rejected.csv: present but not expected: {extra:?}"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n  "))
    }
}

// =====================================================================================
// Running the binary and whole scenarios
// =====================================================================================

pub fn shopflow_bin() -> &'static str {
    env!("CARGO_BIN_EXE_shopflow")
}

/// `shopflow run --events EVENTS --catalog CATALOG --out OUT`, to add flags to.
pub fn run_command(events: impl AsRef<std::ffi::OsStr>, catalog: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(shopflow_bin());
    cmd.arg("run").arg("--events").arg(events).arg("--catalog").arg(catalog).arg("--out").arg(out);
    cmd
}

pub fn run_shopflow(spec: &RunSpec, out: &Path, workers: usize) -> Output {
    let mut cmd = Command::new(shopflow_bin());
    cmd.arg("run");
    for e in &spec.events {
        cmd.arg("--events").arg(e);
    }
    if let Some(c) = &spec.catalog {
        cmd.arg("--catalog").arg(c);
    }
    cmd.arg("--format").arg(spec.format.arg());
    cmd.arg("--out").arg(out);
    if !spec.omit_time_flags {
        cmd.arg("--epoch-ms").arg(spec.epoch_ms.to_string());
        cmd.arg("--lateness-ms").arg(spec.lateness_ms.to_string());
    }
    cmd.args(&spec.extra_args);
    cmd.arg("-w").arg(workers.to_string());
    cmd.output().expect("cannot start the shopflow binary")
}

pub fn scratch_dir(test: &str, seed: u64) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reference").join(format!("{test}-seed{seed}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Seeds to run: `SHOPFLOW_SEEDS=1,2,3` overrides the defaults of every test.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("SHOPFLOW_SEEDS") {
        Ok(s) if !s.trim().is_empty() => {
            s.split(',').map(|x| x.trim().parse().expect("SHOPFLOW_SEEDS: u64 list")).collect()
        }
        _ => default.to_vec(),
    }
}

const ALL_FILES: [&str; 9] = [
    "item_stats.csv",
    "category_stats.csv",
    "scene_stats.csv",
    "user_stats.csv",
    "category_top_items.csv",
    "user_top_categories.csv",
    "hourly_stats.csv",
    "untagged.csv",
    "rejected.csv",
];

/// Runs `run(out, workers)` into a fresh `<dir>/out-w<workers>`: the output directory and
/// the run's output, or the failure (exit status and stderr) as an error line.
pub fn fresh_run(
    label: &str,
    dir: &Path,
    w: usize,
    run: impl FnOnce(&Path, usize) -> Output,
) -> Result<(PathBuf, Output), String> {
    let out = dir.join(format!("out-w{w}"));
    let _ = std::fs::remove_dir_all(&out);
    let res = run(&out, w);
    if !res.status.success() {
        return Err(format!(
            "{label} -w {w}: exit status {:?}; stderr:\n{}",
            res.status.code(),
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    Ok((out, res))
}

/// Runs the binary on `spec` with each worker count, compares each run with the
/// reference, and checks that runs with different worker counts produce byte-identical
/// outputs (rejected.csv: identical as a set of lines).
pub fn check_spec(label: &str, dir: &Path, spec: &RunSpec, r: &Reference, workers: &[usize]) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut outs = Vec::new();
    for &w in workers {
        let out = match fresh_run(label, dir, w, |out, w| run_shopflow(spec, out, w)) {
            Ok((out, _)) => out,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Err(e) = compare_outputs(r, &out) {
            errors.push(format!("{label} -w {w}:\n  {e}"));
        }
        if let Err(e) = compare_rejected(r, spec, &out) {
            errors.push(format!("{label} -w {w}:\n  {e}"));
        }
        outs.push((w, out));
    }
    if outs.len() > 1 {
        let (w0, o0) = &outs[0];
        for (w, o) in &outs[1..] {
            for f in ALL_FILES {
                let a = std::fs::read(o0.join(f)).unwrap_or_default();
                let b = std::fs::read(o.join(f)).unwrap_or_default();
                let same = if f == "rejected.csv" {
                    let mut la: Vec<&[u8]> = a.split(|&c| c == b'\n').collect();
                    let mut lb: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
                    la.sort();
                    lb.sort();
                    la == lb
                } else {
                    a == b
                };
                if !same {
                    errors.push(format!("{label}: {f} differs between -w {w0} and -w {w}"));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Generates the input for `cfg`, computes the reference, runs and checks the binary.
pub fn check_generated(test: &str, cfg: &GenConfig, workers: &[usize]) -> Result<Counts, String> {
    let dir = scratch_dir(test, cfg.seed);
    let gen = generate(cfg);
    let spec = RunSpec::write(&gen, &dir.join("in"), cfg.epoch_ms, cfg.lateness_ms);
    let r = Reference::compute(&spec);
    let label = format!("{test} seed {}", cfg.seed);
    eprintln!(
        "{label} (epoch {} lateness {} files {} huge_ids {} small_t0 {} spike {}): {:?}",
        cfg.epoch_ms, cfg.lateness_ms, cfg.n_event_files, cfg.huge_ids, cfg.small_t0, cfg.future_spike, r.counts
    );
    match check_spec(&label, &dir, &spec, &r, workers) {
        Ok(()) => {
            if std::env::var_os("SHOPFLOW_KEEP").is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(r.counts)
        }
        Err(e) => Err(format!("{e}\n  (inputs and outputs kept in {})", dir.display())),
    }
}

/// Runs `check_generated` for every seed and panics with all failures at the end.
pub fn check_seeds(
    test: &str,
    seeds: &[u64],
    mk: impl Fn(u64) -> GenConfig,
    workers: impl Fn(u64) -> Vec<usize>,
) -> Vec<Counts> {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for &s in seeds {
        match check_generated(test, &mk(s), &workers(s)) {
            Ok(c) => counts.push(c),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        panic!("{} of {} seeds failed:\n{}", failures.len(), seeds.len(), failures.join("\n\n"));
    }
    counts
}

// =====================================================================================
// Minimizer (delta debugging over input lines), for reproducing binary bugs
// =====================================================================================

/// Files of an input as raw lines (each with its own line end); the catalog, if any, last.
#[derive(Clone, Debug)]
pub struct RawInput {
    pub format: Format,
    pub files: Vec<Vec<String>>,
    pub has_catalog: bool,
}

impl RawInput {
    pub fn from_generated(g: &Generated) -> RawInput {
        let split = |c: &String| c.split_inclusive('\n').map(String::from).collect::<Vec<_>>();
        let mut files: Vec<Vec<String>> = g.events.iter().map(split).collect();
        if let Some(c) = &g.catalog {
            files.push(split(c));
        }
        RawInput { format: g.format, files, has_catalog: g.catalog.is_some() }
    }

    pub fn to_generated(&self) -> Generated {
        let n = self.files.len() - self.has_catalog as usize;
        Generated {
            format: self.format,
            events: self.files[..n].iter().map(|f| f.concat()).collect(),
            catalog: if self.has_catalog { Some(self.files[n].concat()) } else { None },
        }
    }

    /// (file, index) of the lines that may be removed (not a header).
    fn removable(&self) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for (f, lines) in self.files.iter().enumerate() {
            let skip =
                if self.format == Format::Native || (self.has_catalog && f + 1 == self.files.len()) { 1 } else { 0 };
            for k in skip..lines.len() {
                v.push((f, k));
            }
        }
        v
    }

    fn without(&self, drop: &BTreeSet<(usize, usize)>) -> RawInput {
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(f, lines)| {
                lines.iter().enumerate().filter(|(k, _)| !drop.contains(&(f, *k))).map(|(_, l)| l.clone()).collect()
            })
            .collect();
        RawInput { format: self.format, files, has_catalog: self.has_catalog }
    }
}

/// Runs reference + binary on `input`; `Some(message)` when they disagree.
pub fn failure_of(input: &RawInput, dir: &Path, epoch_ms: u64, lateness_ms: u64, workers: &[usize]) -> Option<String> {
    let _ = std::fs::remove_dir_all(dir);
    let spec = RunSpec::write(&input.to_generated(), &dir.join("in"), epoch_ms, lateness_ms);
    let r = Reference::compute(&spec);
    check_spec("minimize", dir, &spec, &r, workers).err()
}

/// Greedy delta debugging: removes chunks of lines while `still_fails` holds.
pub fn minimize(input: RawInput, still_fails: impl Fn(&RawInput) -> bool) -> RawInput {
    let mut cur = input;
    let mut chunk = (cur.removable().len() / 2).max(1);
    loop {
        let mut progress = false;
        let mut start = 0;
        loop {
            let rem = cur.removable();
            if start >= rem.len() {
                break;
            }
            let drop: BTreeSet<(usize, usize)> = rem[start..(start + chunk).min(rem.len())].iter().copied().collect();
            let cand = cur.without(&drop);
            if still_fails(&cand) {
                cur = cand;
                progress = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !progress {
            break;
        }
        if !progress || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }
    cur
}

/// Waits for a signalled run to exit (killing it after `limit`): its status and stderr.
pub fn finish(mut child: std::process::Child, limit: std::time::Duration) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("shopflow did not stop within {limit:?} of the signal");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, err)
}

/// The cut-off the run summary reports after a stop.
pub fn cutoff(summary: &str) -> u64 {
    let key = "complete for every time < ";
    let at = summary.find(key).unwrap_or_else(|| panic!("no cut-off in: {summary}"));
    summary[at + key.len()..].split(' ').next().unwrap().trim().parse().unwrap()
}

/// A change-stream edit the checker must catch.
pub type Mutation = Box<dyn Fn(&mut Vec<String>)>;

/// Edits of a change stream's lines (header included) that the checker must report:
/// drop, duplicate, swap, change a value, shift a time by `shift_ms`.
pub fn mutations(shift_ms: u64) -> Vec<(&'static str, Mutation)> {
    vec![
        ("drop a line", Box::new(|l: &mut Vec<String>| drop(l.remove(l.len() / 2)))),
        (
            "duplicate a line",
            Box::new(|l: &mut Vec<String>| {
                let x = l[l.len() / 2].clone();
                l.insert(l.len() / 2, x);
            }),
        ),
        (
            "swap two lines",
            Box::new(|l: &mut Vec<String>| {
                let n = l.len();
                l.swap(n / 2, n - 1);
            }),
        ),
        (
            "change a value",
            Box::new(|l: &mut Vec<String>| {
                let k = l.len() / 2;
                l[k] = format!("{}9", l[k]);
            }),
        ),
        (
            "shift a time",
            Box::new(move |l: &mut Vec<String>| {
                let k = l.len() / 2;
                let mut f: Vec<String> = l[k].split(',').map(String::from).collect();
                f[0] = (f[0].parse::<u64>().unwrap() + shift_ms).to_string();
                l[k] = f.join(",");
            }),
        ),
    ]
}
