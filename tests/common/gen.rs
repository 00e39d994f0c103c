//! Generator.

use super::*;

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

pub const SCENE_POOL: [&str; 7] = ["home", "search", "sixteen_bytes_16", "live stream", "x", "cart-page", "café_bär"];
pub const CAT_POOL: [u64; 6] = [7, 12, 100, 3, 45, 999];

pub struct Gen {
    pub rng: Pcg64,
    pub cfg: GenConfig,
    pub users: Vec<u64>,
    pub items: Vec<u64>,
    pub cats: Vec<u64>,
    pub scenes: Vec<&'static str>,
    pub t0: u64,
}

impl Gen {
    pub fn new(cfg: &GenConfig) -> Gen {
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

    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.rng.random_range(0..v.len())]
    }

    /// An item, skewed towards the first ten items so some items get many buys.
    pub fn pick_item(&mut self) -> u64 {
        if self.rng.random_bool(0.5) {
            let n = self.items.len().min(10);
            self.items[self.rng.random_range(0..n)]
        } else {
            self.pick(&self.items.clone())
        }
    }

    /// A timestamp around `clock`: mostly out of order within the lateness, sometimes ahead
    /// (which pushes the watermark), sometimes later than the lateness (late rows).
    pub fn jitter(&mut self, clock: u64) -> u64 {
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

    pub fn behavior(&mut self) -> &'static str {
        match self.rng.random_range(0..100) {
            0..=39 => "impression",
            40..=64 => "click",
            65..=72 => "fav",
            73..=82 => "cart",
            _ => "buy",
        }
    }

    /// Timestamp for row `k` of `n`: the jittered clock, or once (if configured) a spike.
    pub fn ts_for(&mut self, clock: u64, k: usize, n: usize, spike_at: usize) -> u64 {
        if self.cfg.future_spike && k == spike_at && n > 0 {
            clock + self.rng.random_range(20 * 60_000..60 * 60_000)
        } else {
            self.jitter(clock)
        }
    }

    pub fn native_events(&mut self, file: usize) -> Vec<String> {
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

    pub fn malformed_native(&mut self, clock: u64) -> String {
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

    pub fn ub_events(&mut self, file: usize, base_cat: &BTreeMap<u64, u64>) -> Vec<String> {
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

    pub fn catalog(&mut self) -> Vec<String> {
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

    pub fn join(&mut self, lines: &[String]) -> String {
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
