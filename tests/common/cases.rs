//! Independent reference for the outputs of the three production cases
//! (docs/cases-contract.md), in plain sequential Rust (nothing from `src/`, no timely or
//! differential): for any time `t` it recomputes, from scratch and literally as the
//! contract words it, the complete state of each of the eleven case outputs.
//!
//! The checker compares the binary's change streams with this reference at every time
//! that can matter (every logical time of a valid row, every window expiry, every period
//! boundary of those, base and rule times) and at every time the binary wrote: both
//! states are piecewise constant, so agreeing at all of these times means agreeing at
//! every time.
//!
//! Inputs (events, catalog, UserBehavior rows, watermarks, logical times, rejected lines)
//! are parsed by the reference of the first eight outputs (`super::parse_inputs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{
    compare_rejected_lines, file_lines, parse_change_stream, parse_change_stream_with, parse_inputs, pu64,
    run_shopflow, show_rows, Beh, CatInfo, Change, Ev, OutState, ParsedInputs, RunSpec,
};

/// The case outputs and their columns (after `time,diff`).
pub const CASE_OUTPUTS: [(&str, &str); 12] = [
    ("item_display_stats", "item_id,sales_30d,units_30d,gmv_30d_cents,buyers_30d"),
    ("item_rank_features", "item_id,impressions_1h,clicks_1h,favs_1h,carts_1h,buys_1h,ctr_1h,hot_score"),
    ("category_hot_items", "category_id,rank,item_id,hot_score"),
    ("scene_category_ctr_cvr", "scene,category_id,impressions,clicks,buys"),
    ("scene_traffic", "scene,impressions_share,clicks_share,gmv_share"),
    ("rules", "scene,strategy,params"),
    ("recall_hot", "scene,category_id,items"),
    ("recall_i2i", "scene,item_id,neighbors"),
    ("recall_user", "scene,user_id,item_id,score,strategy"),
    ("ads_curated", "rank,item_id,category_id,bid_cents,pctr,ecpm"),
    ("ctr_cvr_prior", "impressions,clicks,buys,ctr,cvr"),
    ("recall_user_signals", "user_id,categories,engaged,bought"),
];

const O_DISPLAY: usize = 0;
const O_RANK: usize = 1;
const O_CAT_HOT: usize = 2;
const O_SCENE_CAT_RATES: usize = 3;
const O_TRAFFIC: usize = 4;
const O_RULES: usize = 5;
const O_RECALL_HOT: usize = 6;
const O_RECALL_I2I: usize = 7;
const O_RECALL_USER: usize = 8;
const O_ADS: usize = 9;
const O_PRIOR: usize = 10;
const O_SIGNALS: usize = 11;

pub const DISPLAY_WINDOW: u64 = 2_592_000_000;
pub const RECENT_WINDOW: u64 = 3_600_000;
pub const I2I_WINDOW: u64 = 86_400_000;
pub const I2I_GAP: u64 = 1_800_000;
/// Only a user's latest this many distinct (ts, item) interactions in the window count.
pub const I2I_LATEST: usize = 20;
/// Period of `item_display_stats`.
pub const DISPLAY_PERIOD: u64 = 60_000;
/// Period of the CTR/CVR prior.
pub const PRIOR_PERIOD: u64 = 3_600_000;
const BETA: u128 = 100;

pub const BASE_HEADER: &str = "cutoff_ms,item_id,sales_30d,units_30d,gmv_30d_cents,buyers_30d";

pub fn output_index(name: &str) -> usize {
    CASE_OUTPUTS.iter().position(|(n, _)| *n == name).unwrap_or_else(|| panic!("unknown case output {name}"))
}

// =====================================================================================
// Numbers
// =====================================================================================

/// The smallest multiple of `x` that is `>= t` (saturating).
pub fn ceil_to(t: u64, x: u64) -> u64 {
    t.div_ceil(x).saturating_mul(x)
}

/// Micro-units of `n / d` rounded half up: `floor((2 n 10^6 + d) / (2 d))`; `None` if d = 0.
pub fn fixed_micro(n: u128, d: u128) -> Option<u128> {
    (d > 0).then(|| (2 * n * 1_000_000 + d) / (2 * d))
}

/// Six-decimal text of micro-units.
pub fn micro_text(m: u128) -> String {
    format!("{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// The printed ratio `n / d` (empty when d = 0).
pub fn ratio(n: u128, d: u128) -> String {
    fixed_micro(n, d).map(micro_text).unwrap_or_default()
}

/// Counters indexed impression, click, fav, cart, buy.
type Funnel = [u64; 5];

fn bidx(b: Beh) -> usize {
    match b {
        Beh::Impression => 0,
        Beh::Click => 1,
        Beh::Fav => 2,
        Beh::Cart => 3,
        Beh::Buy => 4,
    }
}

/// `clicks + 3 favs + 5 carts + 10 buys`.
fn hot_score(c: &Funnel) -> u64 {
    c[1] + 3 * c[2] + 5 * c[3] + 10 * c[4]
}

/// The global prior (impressions I, clicks C, buys B).
type Prior = (u64, u64, u64);

fn smoothed_ctr(impressions: u64, clicks: u64, p: Prior) -> Option<u128> {
    let (gi, gc) = (p.0 as u128, p.1 as u128);
    if gi == 0 {
        return None;
    }
    fixed_micro(clicks as u128 * gi + BETA * gc, (impressions as u128 + BETA) * gi)
}

/// `ctr_cvr_prior`: the global counters as of the last whole hour and their plain rates;
/// no row while they are all 0.
fn prior_rows(p: Prior) -> OutState {
    let mut out = OutState::new();
    if p != (0, 0, 0) {
        let (i, c, b) = (p.0 as u128, p.1 as u128, p.2 as u128);
        out.insert(vec![
            p.0.to_string(),
            p.1.to_string(),
            p.2.to_string(),
            opt_text(fixed_micro(c, i)),
            opt_text(fixed_micro(b, c)),
        ]);
    }
    out
}

fn opt_text(m: Option<u128>) -> String {
    m.map(micro_text).unwrap_or_default()
}

// =====================================================================================
// Rules
// =====================================================================================

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotRule {
    pub top_n: usize,
    pub click: u64,
    pub fav: u64,
    pub cart: u64,
    pub buy: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I2iRule {
    pub top_n: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRule {
    pub top_k: usize,
    pub hot_weight: u64,
    pub i2i_weight: u64,
    pub exclude_bought: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneRules {
    pub hot: Option<HotRule>,
    pub i2i: Option<I2iRule>,
    pub user: Option<UserRule>,
}

/// Scene -> its rules.
pub type Rules = BTreeMap<String, SceneRules>;

impl HotRule {
    pub fn new(top_n: usize, click: u64, fav: u64, cart: u64, buy: u64) -> HotRule {
        HotRule { top_n, click, fav, cart, buy }
    }
    fn params(&self) -> String {
        format!("top_n={} click={} fav={} cart={} buy={}", self.top_n, self.click, self.fav, self.cart, self.buy)
    }
    fn score(&self, c: &Funnel) -> u64 {
        self.click * c[1] + self.fav * c[2] + self.cart * c[3] + self.buy * c[4]
    }
}

impl UserRule {
    pub fn new(top_k: usize, hot_weight: u64, i2i_weight: u64, exclude_bought: bool) -> UserRule {
        UserRule { top_k, hot_weight, i2i_weight, exclude_bought }
    }
    fn params(&self) -> String {
        format!(
            "top_k={} hot_weight={} i2i_weight={} exclude_bought={}",
            self.top_k, self.hot_weight, self.i2i_weight, self.exclude_bought
        )
    }
}

fn toml_key(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The rules as a TOML rules file.
pub fn rules_toml(r: &Rules) -> String {
    let mut s = String::from("# recall rules (written by the case tests)\n");
    for (scene, sr) in r {
        let _ = writeln!(s, "\n[scenes.{}]", toml_key(scene));
        if let Some(h) = &sr.hot {
            let _ = writeln!(
                s,
                "hot = {{ top_n = {}, click = {}, fav = {}, cart = {}, buy = {} }}",
                h.top_n, h.click, h.fav, h.cart, h.buy
            );
        }
        if let Some(i) = &sr.i2i {
            let _ = writeln!(s, "i2i = {{ top_n = {} }}", i.top_n);
        }
        if let Some(u) = &sr.user {
            let _ = writeln!(
                s,
                "user = {{ top_k = {}, hot_weight = {}, i2i_weight = {}, exclude_bought = {} }}",
                u.top_k, u.hot_weight, u.i2i_weight, u.exclude_bought
            );
        }
    }
    s
}

/// The `rules` output's rows for `r`.
pub fn rules_rows(r: &Rules) -> OutState {
    let mut out = OutState::new();
    for (scene, sr) in r {
        if let Some(h) = &sr.hot {
            out.insert(vec![scene.clone(), "hot".into(), h.params()]);
        }
        if let Some(i) = &sr.i2i {
            out.insert(vec![scene.clone(), "i2i".into(), format!("top_n={}", i.top_n)]);
        }
        if let Some(u) = &sr.user {
            out.insert(vec![scene.clone(), "user".into(), u.params()]);
        }
    }
    out
}

// =====================================================================================
// Base files
// =====================================================================================

#[derive(Clone, Debug)]
pub struct Base {
    pub path: PathBuf,
    /// Position of its `--base` flag.
    pub order: usize,
    pub cutoff: u64,
    /// item -> sales_30d, units_30d, gmv_30d_cents, buyers_30d
    pub rows: BTreeMap<u64, [u64; 4]>,
    /// When it takes effect (`ceil_E(cutoff)` for a base given at start).
    pub eff: u64,
}

/// Parses a base file; rejected lines go to `rejected`. `Err` when the file is an error
/// (wrong header, or no valid row).
pub fn parse_base(
    path: &Path,
    order: usize,
    epoch_ms: u64,
    rejected: &mut BTreeSet<(PathBuf, u64, String)>,
) -> Result<Base, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines = file_lines(&content);
    if lines.first().copied() != Some(BASE_HEADER) {
        return Err(format!("{}: bad header {:?}", path.display(), lines.first()));
    }
    let mut cutoff: Option<u64> = None;
    let mut rows: BTreeMap<u64, [u64; 4]> = BTreeMap::new();
    for (k, line) in lines.iter().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let vals: Option<Vec<u64>> = if f.len() == 6 { f.iter().map(|x| pu64(x)).collect() } else { None };
        let valid = match vals {
            Some(v) if cutoff.is_none_or(|c| c == v[0]) && !rows.contains_key(&v[1]) => {
                cutoff = Some(v[0]);
                rows.insert(v[1], [v[2], v[3], v[4], v[5]]);
                true
            }
            _ => false,
        };
        if !valid {
            rejected.insert((path.to_path_buf(), k as u64 + 1, line.to_string()));
        }
    }
    let cutoff = cutoff.ok_or_else(|| format!("{}: no valid row", path.display()))?;
    Ok(Base { path: path.to_path_buf(), order, cutoff, rows, eff: ceil_to(cutoff, epoch_ms) })
}

/// Writes a base file (rows: item, sales, units, gmv, buyers) with the given cut-off.
pub fn base_text(cutoff: u64, rows: &BTreeMap<u64, [u64; 4]>) -> String {
    let mut s = format!("{BASE_HEADER}\n");
    for (item, v) in rows {
        let _ = writeln!(s, "{cutoff},{item},{},{},{},{}", v[0], v[1], v[2], v[3]);
    }
    s
}

// =====================================================================================
// Run specification
// =====================================================================================

#[derive(Clone, Debug)]
pub struct AdParams {
    pub refresh_ms: u64,
    pub min_impressions: u64,
    /// `--ad-min-pctr` in micro-units.
    pub min_pctr_micro: u128,
    pub set_size: usize,
}

impl Default for AdParams {
    /// The documented defaults.
    fn default() -> AdParams {
        AdParams { refresh_ms: 300_000, min_impressions: 100, min_pctr_micro: 10_000, set_size: 1000 }
    }
}

impl AdParams {
    pub fn args(&self) -> Vec<String> {
        vec![
            "--ad-refresh-ms".into(),
            self.refresh_ms.to_string(),
            "--ad-min-impressions".into(),
            self.min_impressions.to_string(),
            "--ad-min-pctr".into(),
            micro_text(self.min_pctr_micro),
            "--ad-set-size".into(),
            self.set_size.to_string(),
        ]
    }
}

#[derive(Clone, Debug)]
pub struct CaseSpec {
    pub run: RunSpec,
    /// `None`: `--rules none`.
    pub rules_file: Option<PathBuf>,
    /// The rules in force from each time on (ascending, the first from 0); what the
    /// reference uses. Empty: no rules.
    pub rules: Vec<(u64, Rules)>,
    pub bases: Vec<PathBuf>,
    pub ads: AdParams,
    /// Outputs to request (`--outputs`) and check; empty: every case output.
    pub outputs: Vec<&'static str>,
}

impl CaseSpec {
    /// A spec over `run`'s inputs; writes `rules` (if any) to `<dir>/rules.toml`.
    pub fn new(run: RunSpec, dir: &Path, rules: Option<&Rules>) -> CaseSpec {
        let rules_file = rules.map(|r| {
            let p = dir.join("rules.toml");
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&p, rules_toml(r)).unwrap();
            p
        });
        CaseSpec {
            run,
            rules_file,
            rules: rules.map(|r| vec![(0, r.clone())]).unwrap_or_default(),
            bases: Vec::new(),
            ads: AdParams::default(),
            outputs: Vec::new(),
        }
    }

    pub fn output_names(&self) -> Vec<&'static str> {
        if self.outputs.is_empty() {
            CASE_OUTPUTS.iter().map(|(n, _)| *n).collect()
        } else {
            self.outputs.clone()
        }
    }

    /// The outputs the run writes: `recall_user` is merged from four of them after the
    /// run (`shopflow recall --changes`).
    pub fn run_outputs(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for name in self.output_names() {
            let parts: &[&'static str] = match name {
                "recall_user" => &["recall_user_signals", "recall_hot", "recall_i2i", "rules"],
                _ => &[name],
            };
            for part in parts {
                if !names.contains(part) {
                    names.push(*part);
                }
            }
        }
        names
    }

    /// The flags of the case outputs.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["--outputs".to_string(), self.run_outputs().join(",")];
        a.push("--rules".into());
        a.push(self.rules_file.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "none".into()));
        for b in &self.bases {
            a.push("--base".into());
            a.push(b.to_string_lossy().into_owned());
        }
        a.extend(self.ads.args());
        a
    }

    /// Runs the binary, then merges `recall_user` from its files when it is asked for.
    pub fn run_binary(&self, out: &Path, workers: usize) -> Output {
        let mut run = self.run.clone();
        run.extra_args.extend(self.args());
        let res = run_shopflow(&run, out, workers);
        if res.status.success() && self.output_names().contains(&"recall_user") {
            let merged = derive_recall_user(out);
            assert!(merged.status.success(), "shopflow recall --changes: {}", String::from_utf8_lossy(&merged.stderr));
        }
        res
    }
}

/// `shopflow recall --out <out> --changes -q`: writes `<out>/recall_user.csv`.
pub fn derive_recall_user(out: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shopflow"))
        .args(["recall", "--changes", "-q", "--out"])
        .arg(out)
        .output()
        .expect("run shopflow recall")
}

// =====================================================================================
// Reference
// =====================================================================================

#[derive(Clone)]
pub struct CaseRef {
    inp: ParsedInputs,
    e: u64,
    pub bases: Vec<Base>,
    pub rules: Vec<(u64, Rules)>,
    pub ads: AdParams,
    /// Rejected lines of every input (events, catalog, bases).
    pub rejected: BTreeSet<(PathBuf, u64, String)>,
    /// Every input file (for the `file` column of rejected.csv).
    pub files: Vec<PathBuf>,
}

/// What a user's recall list is made from (`recall_user_signals`).
struct UserSignals {
    /// In rank order.
    top: Vec<u64>,
    interacted: BTreeSet<u64>,
    bought: BTreeSet<u64>,
}

/// What the per-time computation shares between outputs.
struct At<'a> {
    t: u64,
    cat: BTreeMap<u64, CatInfo>,
    /// Events with logical time <= t.
    all: &'a [Ev],
    /// Events in RECENT_WINDOW at t.
    recent: Vec<&'a Ev>,
    prior: Prior,
    rules: Rules,
}

impl CaseRef {
    pub fn compute(spec: &CaseSpec) -> CaseRef {
        let inp = parse_inputs(&spec.run);
        let mut rejected = inp.rejected.clone();
        let mut bases = Vec::new();
        for (k, p) in spec.bases.iter().enumerate() {
            match parse_base(p, k, spec.run.epoch_ms, &mut rejected) {
                Ok(b) => bases.push(b),
                Err(e) => panic!("the test wrote a base file the binary must refuse: {e}"),
            }
        }
        let files = spec.run.events.iter().chain(spec.run.catalog.iter()).chain(spec.bases.iter()).cloned().collect();
        CaseRef { inp, e: spec.run.epoch_ms, bases, rules: spec.rules.clone(), ads: spec.ads.clone(), rejected, files }
    }

    /// The same inputs with another rules timeline.
    pub fn with_rules(&self, rules: Vec<(u64, Rules)>) -> CaseRef {
        CaseRef { rules, ..self.clone() }
    }

    pub fn epoch_ms(&self) -> u64 {
        self.e
    }

    pub fn counts(&self) -> &super::Counts {
        &self.inp.counts
    }

    /// (logical time, ts, item, is buy, user, qty, amount) of every valid event.
    pub fn events(&self) -> Vec<(u64, u64, u64, bool, u64, u64, u64)> {
        self.inp.events.iter().map(|e| (e.time, e.ts, e.item, e.beh == Beh::Buy, e.user, e.qty, e.amount)).collect()
    }

    /// Every valid event as (logical time, ts, user, item, scene, behaviour, quantity,
    /// amount); the behaviour as 0..5: impression, click, fav, cart, buy.
    pub fn event_rows(&self) -> Vec<(u64, u64, u64, u64, &str, usize, u64, u64)> {
        self.inp
            .events
            .iter()
            .map(|e| (e.time, e.ts, e.user, e.item, e.scene.as_str(), bidx(e.beh), e.qty, e.amount))
            .collect()
    }

    /// The catalog at time t: item -> its row.
    pub fn catalog_state(&self, t: u64) -> BTreeMap<u64, CatInfo> {
        self.inp.catalog_at(t)
    }

    /// The smallest and greatest logical time of a valid event.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        Some((self.inp.events.first()?.time, self.inp.events.last()?.time))
    }

    fn ep(&self, ts: u64) -> u64 {
        ts - ts % self.e
    }

    /// `W' = ceil(W / E) * E`.
    fn wprime(&self, w: u64) -> u64 {
        ceil_to(w, self.e)
    }

    /// The event is in the window of length `w` at time `t`: `lt <= t < ep(ts) + W'`.
    fn in_window(&self, ev: &Ev, t: u64, w: u64) -> bool {
        ev.time <= t && t < self.ep(ev.ts).saturating_add(self.wprime(w))
    }

    /// `f_P(t) = ceil_E(ceil_P(t))`.
    pub fn f(&self, t: u64, p: u64) -> u64 {
        ceil_to(ceil_to(t, p), self.e)
    }

    /// `tau_P(t) = max { s : f_P(s) <= t }`: the greatest multiple kP with `ceil_E(kP) <= t`.
    pub fn tau(&self, t: u64, p: u64) -> u64 {
        let mut k = t / p;
        while k > 0 && ceil_to(k * p, self.e) > t {
            k -= 1;
        }
        k * p
    }

    /// Events with logical time <= t.
    fn upto(&self, t: u64) -> &[Ev] {
        let n = self.inp.events.partition_point(|e| e.time <= t);
        &self.inp.events[..n]
    }

    /// `G(s)`: impressions, clicks, buys of all valid events with `lt <= s`.
    fn g(&self, s: u64) -> Prior {
        let mut p = (0, 0, 0);
        for e in self.upto(s) {
            match e.beh {
                Beh::Impression => p.0 += 1,
                Beh::Click => p.1 += 1,
                Beh::Buy => p.2 += 1,
                _ => {}
            }
        }
        p
    }

    /// The prior at t: `G(tau_H(t))`.
    fn prior_at(&self, t: u64) -> Prior {
        self.g(self.tau(t, PRIOR_PERIOD))
    }

    pub fn rules_at(&self, t: u64) -> Rules {
        self.rules.iter().rev().find(|(from, _)| *from <= t).map(|(_, r)| r.clone()).unwrap_or_default()
    }

    /// The base active at s: the greatest eff <= s (ties: greater cut-off, later flag).
    fn active_base(&self, s: u64) -> Option<&Base> {
        self.bases.iter().filter(|b| b.eff <= s).max_by_key(|b| (b.eff, b.cutoff, b.order))
    }

    /// Every time at which some case output can change (see the module doc).
    pub fn candidate_times(&self) -> BTreeSet<u64> {
        let mut x: BTreeSet<u64> = BTreeSet::from([0]);
        for ev in &self.inp.events {
            x.insert(ev.time);
            for w in [DISPLAY_WINDOW, RECENT_WINDOW, I2I_WINDOW] {
                x.insert(self.ep(ev.ts).saturating_add(self.wprime(w)));
            }
        }
        for r in &self.inp.cat_rows {
            x.insert(r.time);
        }
        for b in &self.bases {
            x.insert(b.eff);
            x.insert(b.cutoff.saturating_add(DISPLAY_WINDOW));
        }
        for (from, _) in &self.rules {
            x.insert(*from);
        }
        let mut x1 = x.clone();
        for &t in &x {
            x1.insert(self.f(t, DISPLAY_PERIOD));
            x1.insert(self.f(t, PRIOR_PERIOD));
        }
        let mut x2 = x1.clone();
        for &t in &x1 {
            x2.insert(self.f(t, self.ads.refresh_ms));
        }
        x2
    }

    /// State of one output at time t.
    pub fn state(&self, name: &str, t: u64) -> OutState {
        let o = output_index(name);
        let mut want = [false; CASE_OUTPUTS.len()];
        want[o] = true;
        self.states_at(t, &want).swap_remove(o)
    }

    /// States at time t of the outputs with `want[o]` (the others are left empty).
    pub fn states_at(&self, t: u64, want: &[bool; CASE_OUTPUTS.len()]) -> Vec<OutState> {
        let mut out = vec![OutState::new(); CASE_OUTPUTS.len()];
        let all = self.upto(t);
        let at = At {
            t,
            cat: self.inp.catalog_at(t),
            all,
            recent: all.iter().filter(|e| self.in_window(e, t, RECENT_WINDOW)).collect(),
            prior: self.prior_at(t),
            rules: self.rules_at(t),
        };
        if want[O_DISPLAY] {
            out[O_DISPLAY] = self.display_plain(self.tau(t, DISPLAY_PERIOD));
        }
        if want[O_RANK] || want[O_CAT_HOT] {
            let (rank, cat_hot) = self.rank_features(&at);
            out[O_RANK] = rank;
            out[O_CAT_HOT] = cat_hot;
        }
        if want[O_PRIOR] {
            out[O_PRIOR] = prior_rows(at.prior);
        }
        if want[O_SCENE_CAT_RATES] {
            out[O_SCENE_CAT_RATES] = self.scene_category_rates(&at);
        }
        if want[O_TRAFFIC] {
            out[O_TRAFFIC] = self.scene_traffic(&at);
        }
        if want[O_RULES] {
            out[O_RULES] = rules_rows(&at.rules);
        }
        if want[O_RECALL_HOT] || want[O_RECALL_I2I] || want[O_RECALL_USER] {
            let (hot, i2i, user) = self.recall(&at);
            out[O_RECALL_HOT] = hot;
            out[O_RECALL_I2I] = i2i;
            out[O_RECALL_USER] = user;
        }
        if want[O_ADS] {
            out[O_ADS] = self.ads_plain(self.tau(t, self.ads.refresh_ms));
        }
        if want[O_SIGNALS] {
            out[O_SIGNALS] = Self::signal_rows(&at);
        }
        out
    }

    fn online(at: &At, item: u64) -> bool {
        at.cat.get(&item).is_some_and(|c| c.online)
    }

    // ---- item_display_stats -------------------------------------------------------

    /// The plain (every-epoch) state of `item_display_stats` at s (any u64).
    fn display_plain(&self, s: u64) -> OutState {
        let base = self.active_base(s);
        let wp = self.wprime(DISPLAY_WINDOW);
        // sales, units, gmv, buyers (distinct users), base buyers
        let mut per_item: BTreeMap<u64, ([u128; 3], BTreeSet<u64>, u128)> = BTreeMap::new();
        for ev in self.upto(s) {
            if ev.beh != Beh::Buy || s >= self.ep(ev.ts).saturating_add(wp) {
                continue;
            }
            if base.is_some_and(|b| ev.ts < b.cutoff) {
                continue;
            }
            let a = per_item.entry(ev.item).or_default();
            a.0[0] += 1;
            a.0[1] += ev.qty as u128;
            a.0[2] += ev.amount as u128;
            a.1.insert(ev.user);
        }
        if let Some(b) = base {
            if s < b.cutoff.saturating_add(DISPLAY_WINDOW) {
                for (item, v) in &b.rows {
                    let a = per_item.entry(*item).or_default();
                    a.0[0] += v[0] as u128;
                    a.0[1] += v[1] as u128;
                    a.0[2] += v[2] as u128;
                    a.2 += v[3] as u128;
                }
            }
        }
        let mut out = OutState::new();
        for (item, (c, buyers, base_buyers)) in per_item {
            let b = buyers.len() as u128 + base_buyers;
            if c.iter().all(|&x| x == 0) && b == 0 {
                continue;
            }
            out.insert(vec![item.to_string(), c[0].to_string(), c[1].to_string(), c[2].to_string(), b.to_string()]);
        }
        out
    }

    // ---- item_rank_features, category_hot_items -----------------------------------

    fn recent_funnels(at: &At) -> BTreeMap<u64, Funnel> {
        let mut m: BTreeMap<u64, Funnel> = BTreeMap::new();
        for e in &at.recent {
            m.entry(e.item).or_default()[bidx(e.beh)] += 1;
        }
        m
    }

    fn rank_features(&self, at: &At) -> (OutState, OutState) {
        let mut rank = OutState::new();
        let mut per_cat: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for (item, c) in Self::recent_funnels(at) {
            if !Self::online(at, item) {
                continue;
            }
            let hot = hot_score(&c);
            let mut row = vec![item.to_string()];
            row.extend(c.iter().map(|x| x.to_string()));
            row.push(ratio(c[1] as u128, c[0] as u128));
            row.push(hot.to_string());
            rank.insert(row);
            if hot > 0 {
                per_cat.entry(at.cat[&item].cat).or_default().push((hot, item));
            }
        }
        let mut cat_hot = OutState::new();
        for (c, mut v) in per_cat {
            v.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
            for (k, (hot, item)) in v.into_iter().take(20).enumerate() {
                cat_hot.insert(vec![c.to_string(), (k + 1).to_string(), item.to_string(), hot.to_string()]);
            }
        }
        (rank, cat_hot)
    }

    // ---- scene_category_ctr_cvr ----------------------------------------------------

    /// The counters of a CTR/CVR (the reader smooths them with `ctr_cvr_prior`).
    fn rate_row(key: Vec<String>, c: &Funnel) -> Option<Vec<String>> {
        if c[0] == 0 && c[1] == 0 && c[4] == 0 {
            return None;
        }
        let mut row = key;
        row.push(c[0].to_string());
        row.push(c[1].to_string());
        row.push(c[4].to_string());
        Some(row)
    }

    fn scene_category_rates(&self, at: &At) -> OutState {
        let mut m: BTreeMap<(String, u64), Funnel> = BTreeMap::new();
        for e in at.all {
            if let Some(info) = at.cat.get(&e.item) {
                m.entry((e.scene.clone(), info.cat)).or_default()[bidx(e.beh)] += 1;
            }
        }
        m.iter().filter_map(|((s, c), f)| Self::rate_row(vec![s.clone(), c.to_string()], f)).collect()
    }

    // ---- scene_traffic -------------------------------------------------------------

    fn scene_traffic(&self, at: &At) -> OutState {
        // impressions, clicks, gmv
        let mut m: BTreeMap<&str, [u128; 3]> = BTreeMap::new();
        let mut total = [0u128; 3];
        for e in &at.recent {
            let v = m.entry(e.scene.as_str()).or_default();
            let add = match e.beh {
                Beh::Impression => [1, 0, 0],
                Beh::Click => [0, 1, 0],
                Beh::Buy => [0, 0, e.amount as u128],
                _ => [0, 0, 0],
            };
            for k in 0..3 {
                v[k] += add[k];
                total[k] += add[k];
            }
        }
        m.into_iter()
            .map(|(s, v)| vec![s.to_string(), ratio(v[0], total[0]), ratio(v[1], total[1]), ratio(v[2], total[2])])
            .collect()
    }

    // ---- recall --------------------------------------------------------------------

    /// users(a, b) for every pair with users > 0: a -> b -> users.
    fn i2i_users(&self, at: &At) -> BTreeMap<u64, BTreeMap<u64, u64>> {
        let mut per_user: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for e in at.all {
            if matches!(e.beh, Beh::Click | Beh::Buy) && self.in_window(e, at.t, I2I_WINDOW) {
                per_user.entry(e.user).or_default().push((e.ts, e.item));
            }
        }
        let mut users: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
        for (_, mut v) in per_user {
            v.sort();
            v.dedup();
            let v = &v[v.len().saturating_sub(I2I_LATEST)..];
            let mut pairs: BTreeSet<(u64, u64)> = BTreeSet::new();
            for i in 0..v.len() {
                for j in i + 1..v.len() {
                    if v[j].0 - v[i].0 > I2I_GAP {
                        break;
                    }
                    if v[i].1 != v[j].1 {
                        pairs.insert((v[i].1, v[j].1));
                        pairs.insert((v[j].1, v[i].1));
                    }
                }
            }
            for (a, b) in pairs {
                *users.entry(a).or_default().entry(b).or_default() += 1;
            }
        }
        users
    }

    /// Per user with events in the recent window: top 3 categories, clicked or bought
    /// items, bought items.
    fn user_signals(at: &At) -> BTreeMap<u64, UserSignals> {
        let mut by_user: BTreeMap<u64, Vec<&Ev>> = BTreeMap::new();
        for e in &at.recent {
            by_user.entry(e.user).or_default().push(e);
        }
        let mut out = BTreeMap::new();
        for (u, evs) in by_user {
            let mut cat_score: BTreeMap<u64, u64> = BTreeMap::new();
            for e in &evs {
                if let Some(info) = at.cat.get(&e.item) {
                    let mut f = Funnel::default();
                    f[bidx(e.beh)] = 1;
                    *cat_score.entry(info.cat).or_default() += hot_score(&f);
                }
            }
            let mut cats: Vec<(u64, u64)> = cat_score.into_iter().filter(|&(_, s)| s > 0).collect();
            cats.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            let top: Vec<u64> = cats.iter().take(3).map(|&(c, _)| c).collect();
            let interacted: BTreeSet<u64> =
                evs.iter().filter(|e| matches!(e.beh, Beh::Click | Beh::Buy)).map(|e| e.item).collect();
            let bought: BTreeSet<u64> = evs.iter().filter(|e| e.beh == Beh::Buy).map(|e| e.item).collect();
            out.insert(u, UserSignals { top, interacted, bought });
        }
        out
    }

    /// `recall_user_signals` at t: `user_id,categories,engaged,bought` rows, one per user
    /// with a signal, each column a space-separated list (categories ranked, items ascending).
    fn signal_rows(at: &At) -> OutState {
        let mut rows = OutState::new();
        let words = |ids: &mut dyn Iterator<Item = &u64>| ids.map(|id| id.to_string()).collect::<Vec<_>>().join(" ");
        for (u, s) in Self::user_signals(at) {
            if s.top.is_empty() && s.interacted.is_empty() && s.bought.is_empty() {
                continue;
            }
            rows.insert(vec![
                u.to_string(),
                words(&mut s.top.iter()),
                words(&mut s.interacted.iter()),
                words(&mut s.bought.iter()),
            ]);
        }
        rows
    }

    fn recall(&self, at: &At) -> (OutState, OutState, OutState) {
        let (mut hot_out, mut i2i_out, mut user_out) = (OutState::new(), OutState::new(), OutState::new());
        if at.rules.is_empty() {
            return (hot_out, i2i_out, user_out);
        }
        let funnels = Self::recent_funnels(at);
        let pair_users = self.i2i_users(at);
        let signals = Self::user_signals(at);
        for (scene, sr) in &at.rules {
            // recall_hot of S: item -> (category, score)
            let mut hot_of: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
            if let Some(h) = &sr.hot {
                let mut per_cat: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
                for (item, c) in &funnels {
                    if !Self::online(at, *item) {
                        continue;
                    }
                    let score = h.score(c);
                    if score > 0 {
                        per_cat.entry(at.cat[item].cat).or_default().push((score, *item));
                    }
                }
                for (c, mut v) in per_cat {
                    v.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
                    let list: Vec<String> =
                        v.iter().take(h.top_n).map(|(score, item)| format!("{item}:{score}")).collect();
                    if !list.is_empty() {
                        hot_out.insert(vec![scene.clone(), c.to_string(), list.join(" ")]);
                    }
                    for (score, item) in v.into_iter().take(h.top_n) {
                        hot_of.insert(item, (c, score));
                    }
                }
            }
            // recall_i2i of S: a -> b -> users (only the rows written)
            let mut i2i_of: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
            if let Some(r) = &sr.i2i {
                for (a, nb) in &pair_users {
                    if !Self::online(at, *a) {
                        continue;
                    }
                    let mut v: Vec<(u64, u64)> =
                        nb.iter().filter(|(b, _)| Self::online(at, **b)).map(|(b, u)| (*u, *b)).collect();
                    v.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
                    let list: Vec<String> = v.iter().take(r.top_n).map(|(users, b)| format!("{b}:{users}")).collect();
                    if !list.is_empty() {
                        i2i_out.insert(vec![scene.clone(), a.to_string(), list.join(" ")]);
                    }
                    for (users, b) in v.into_iter().take(r.top_n) {
                        i2i_of.entry(*a).or_default().insert(b, users);
                    }
                }
            }
            let Some(ur) = &sr.user else { continue };
            for (u, UserSignals { top, interacted, bought }) in &signals {
                // candidates: item -> (hot, i2i)
                let mut cand: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
                for (b, (c, score)) in &hot_of {
                    if top.contains(c) && *score > 0 {
                        cand.entry(*b).or_default().0 = *score;
                    }
                }
                for a in interacted {
                    if let Some(nb) = i2i_of.get(a) {
                        for (b, users) in nb {
                            let e = &mut cand.entry(*b).or_default().1;
                            *e = (*e).max(*users);
                        }
                    }
                }
                let mut rows: Vec<(u128, u64, &str)> = Vec::new();
                for (b, (h, i)) in cand {
                    if h == 0 && i == 0 {
                        continue;
                    }
                    if ur.exclude_bought && bought.contains(&b) {
                        continue;
                    }
                    let score = ur.hot_weight as u128 * h as u128 + ur.i2i_weight as u128 * i as u128;
                    if score == 0 {
                        continue;
                    }
                    let strategy = match (h > 0, i > 0) {
                        (true, true) => "hot+i2i",
                        (true, false) => "hot",
                        _ => "i2i",
                    };
                    rows.push((score, b, strategy));
                }
                rows.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
                for (score, b, strategy) in rows.into_iter().take(ur.top_k) {
                    user_out.insert(vec![
                        scene.clone(),
                        u.to_string(),
                        b.to_string(),
                        score.to_string(),
                        strategy.to_string(),
                    ]);
                }
            }
        }
        (hot_out, i2i_out, user_out)
    }

    // ---- ads_curated ----------------------------------------------------------------

    /// The plain state of `ads_curated` at s (any u64).
    fn ads_plain(&self, s: u64) -> OutState {
        let cat = self.inp.catalog_at(s);
        let prior = self.prior_at(s);
        let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for e in self.upto(s) {
            let c = counts.entry(e.item).or_default();
            match e.beh {
                Beh::Impression => c.0 += 1,
                Beh::Click => c.1 += 1,
                _ => {}
            }
        }
        let mut cand: Vec<(u128, u64, u64, u64, u128)> = Vec::new();
        for (item, info) in &cat {
            if !(info.online && info.is_ad && info.bid > 0) {
                continue;
            }
            let (imp, clk) = counts.get(item).copied().unwrap_or((0, 0));
            if imp < self.ads.min_impressions {
                continue;
            }
            let Some(m) = smoothed_ctr(imp, clk, prior) else { continue };
            if m < self.ads.min_pctr_micro {
                continue;
            }
            cand.push((info.bid as u128 * m * 1000, *item, info.cat, info.bid, m));
        }
        cand.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        cand.into_iter()
            .take(self.ads.set_size)
            .enumerate()
            .map(|(k, (ecpm, item, c, bid, m))| {
                vec![
                    (k + 1).to_string(),
                    item.to_string(),
                    c.to_string(),
                    bid.to_string(),
                    micro_text(m),
                    micro_text(ecpm),
                ]
            })
            .collect()
    }
}

// =====================================================================================
// Checker
// =====================================================================================

/// Accumulated state of a change stream up to a time.
pub struct Accumulator<'a> {
    stream: &'a [Change],
    pos: usize,
    acc: BTreeMap<Vec<String>, i64>,
}

impl<'a> Accumulator<'a> {
    pub fn new(stream: &'a [Change]) -> Accumulator<'a> {
        Accumulator { stream, pos: 0, acc: BTreeMap::new() }
    }

    /// Applies the changes with time <= t; returns the range of changes applied.
    pub fn advance(&mut self, t: u64) -> std::ops::Range<usize> {
        let start = self.pos;
        while self.pos < self.stream.len() && self.stream[self.pos].0 <= t {
            let (_, d, row) = &self.stream[self.pos];
            let e = self.acc.entry(row.clone()).or_insert(0);
            *e += d;
            if *e == 0 {
                self.acc.remove(row);
            }
            self.pos += 1;
        }
        start..self.pos
    }

    pub fn state(&self) -> OutState {
        self.acc.keys().cloned().collect()
    }

    pub fn bad_multiplicities(&self) -> Vec<(Vec<String>, i64)> {
        self.acc.iter().filter(|(_, &c)| c != 1).map(|(r, c)| (r.clone(), *c)).collect()
    }
}

/// Reads `<out>/<name>.csv` for a case output and checks the change-stream contract
/// (header, fields, ascending times, diffs ±1, consolidated) except the order of the rows
/// within a time (see `check_row_order`).
pub fn read_case_stream(out: &Path, name: &str) -> Result<Vec<Change>, String> {
    let cols = CASE_OUTPUTS[output_index(name)].1;
    parse_change_stream_with(&out.join(format!("{name}.csv")), cols, false)
}

/// The README's "sorted by row": within a time, rows ascend in typed column order
/// (numbers numerically, an empty field first, text as bytes). Kept apart from the
/// state comparison so that an order problem does not hide the states.
pub fn check_row_order(out: &Path, names: &[&str]) -> Result<(), String> {
    let errs: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let cols = CASE_OUTPUTS[output_index(name)].1;
            parse_change_stream(&out.join(format!("{name}.csv")), cols).err()
        })
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n  "))
    }
}

/// The accumulated state of a change stream at t.
pub fn stream_state_at(stream: &[Change], t: u64) -> OutState {
    let mut a = Accumulator::new(stream);
    a.advance(t);
    a.state()
}

/// What a successful comparison covered: the number of checked times, and per output at
/// how many of them the state was non-empty and its largest size.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    pub times: usize,
    pub outputs: BTreeMap<&'static str, (usize, usize)>,
    /// The first run's standard error (the run summary), when the binary ran.
    pub summary: String,
}

impl Coverage {
    /// Times at which `name`'s state was non-empty.
    pub fn nonempty(&self, name: &str) -> usize {
        self.outputs.get(name).map_or(0, |c| c.0)
    }
}

/// Compares the binary's change streams of `names` in `out` with the reference at every
/// time that matters below `before` (see the module doc); also fails on any change at
/// or after `before`.
pub fn compare_case_outputs(r: &CaseRef, out: &Path, names: &[&str], before: u64) -> Result<Coverage, String> {
    let mut errors = Vec::new();
    let mut want = [false; CASE_OUTPUTS.len()];
    let mut streams: Vec<(usize, Vec<Change>)> = Vec::new();
    for name in names {
        let o = output_index(name);
        match read_case_stream(out, name) {
            Ok(s) => {
                if let Some(c) = s.iter().find(|c| c.0 >= before) {
                    errors.push(format!("{name}: change at time {} at or after the cut-off {before}: {:?}", c.0, c));
                }
                want[o] = true;
                streams.push((o, s));
            }
            Err(e) => errors.push(e),
        }
    }
    let mut times = r.candidate_times();
    for (_, s) in &streams {
        times.extend(s.iter().map(|c| c.0));
    }
    let times: Vec<u64> = times.into_iter().filter(|&t| t < before).collect();
    let mut accs: Vec<Accumulator> = streams.iter().map(|(_, s)| Accumulator::new(s)).collect();
    let mut prev: Vec<OutState> = vec![OutState::new(); streams.len()];
    let mut first: Vec<Option<String>> = vec![None; streams.len()];
    let mut mismatches = vec![0usize; streams.len()];
    let mut nonempty = vec![0usize; streams.len()];
    let mut largest = vec![0usize; streams.len()];
    let mut prev_t: Option<u64> = None;
    for &t in &times {
        let states = r.states_at(t, &want);
        for (k, (o, stream)) in streams.iter().enumerate() {
            let applied = accs[k].advance(t);
            let got = accs[k].state();
            let want_state = &states[*o];
            nonempty[k] += !want_state.is_empty() as usize;
            largest[k] = largest[k].max(want_state.len());
            let bad = accs[k].bad_multiplicities();
            if &got != want_state || !bad.is_empty() {
                mismatches[k] += 1;
                if first[k].is_none() {
                    let (name, cols) = CASE_OUTPUTS[*o];
                    let mut m = format!("{name}: mismatch at t={t}");
                    m.push_str(&super::state_difference(cols, want_state, &got));
                    if !bad.is_empty() {
                        let _ = write!(m, "\n    rows with accumulated count != 1: {:?}", &bad[..bad.len().min(5)]);
                    }
                    let added: Vec<&Vec<String>> = want_state.difference(&prev[k]).collect();
                    let removed: Vec<&Vec<String>> = prev[k].difference(want_state).collect();
                    let _ = write!(
                        m,
                        "\n    reference change since the previous checked time: +{}{}\n      -{}{}",
                        added.len(),
                        show_rows(added.into_iter(), 6),
                        removed.len(),
                        show_rows(removed.into_iter(), 6)
                    );
                    let bin: Vec<Vec<String>> = stream[applied]
                        .iter()
                        .map(|(tt, d, row)| {
                            let mut v = vec![tt.to_string(), d.to_string()];
                            v.extend(row.iter().cloned());
                            v
                        })
                        .collect();
                    let since = prev_t.map_or("start".to_string(), |p| p.to_string());
                    let _ = write!(
                        m,
                        "\n    binary changes after {since} up to {t} ({}):{}",
                        bin.len(),
                        show_rows(bin.iter(), 12)
                    );
                    first[k] = Some(m);
                }
            }
            prev[k] = want_state.clone();
        }
        prev_t = Some(t);
    }
    for (k, (o, _)) in streams.iter().enumerate() {
        if let Some(m) = &first[k] {
            errors.push(format!(
                "{m}\n    ({} of {} checked times mismatch for {}; reference non-empty at {} of them)",
                mismatches[k],
                times.len(),
                CASE_OUTPUTS[*o].0,
                nonempty[k]
            ));
        }
    }
    if errors.is_empty() {
        let outputs =
            streams.iter().enumerate().map(|(k, (o, _))| (CASE_OUTPUTS[*o].0, (nonempty[k], largest[k]))).collect();
        Ok(Coverage { times: times.len(), outputs, summary: String::new() })
    } else {
        Err(errors.join("\n  "))
    }
}

/// Runs the binary on `spec` with each worker count: the first run is compared with the
/// reference at every time and its rejected.csv with the reference's rejected lines;
/// every other run must write byte-identical case outputs (rejected.csv: the same lines).
pub fn check_case(
    label: &str,
    dir: &Path,
    spec: &CaseSpec,
    r: &CaseRef,
    workers: &[usize],
) -> Result<Coverage, String> {
    let names = spec.output_names();
    let mut errors = Vec::new();
    let mut coverage = Coverage::default();
    let mut first_out: Option<(usize, PathBuf)> = None;
    for &w in workers {
        let (out, res) = match super::fresh_run(label, dir, w, |out, w| spec.run_binary(out, w)) {
            Ok(run) => run,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match &first_out {
            None => {
                match compare_case_outputs(r, &out, &names, u64::MAX) {
                    Ok(c) => coverage = Coverage { summary: String::from_utf8_lossy(&res.stderr).into_owned(), ..c },
                    Err(e) => errors.push(format!("{label} -w {w}:\n  {e}")),
                }
                if let Err(e) = compare_rejected_lines(&r.rejected, &r.files, &out) {
                    errors.push(format!("{label} -w {w}:\n  {e}"));
                }
                first_out = Some((w, out));
            }
            Some((w0, o0)) => {
                let mut differ = false;
                for name in &names {
                    let f = format!("{name}.csv");
                    if std::fs::read(o0.join(&f)).ok() != std::fs::read(out.join(&f)).ok() {
                        errors.push(format!("{label}: {f} differs between -w {w0} and -w {w}"));
                        differ = true;
                    }
                }
                let lines = |p: &Path| {
                    let s = std::fs::read_to_string(p.join("rejected.csv")).unwrap_or_default();
                    s.lines().map(String::from).collect::<BTreeSet<String>>()
                };
                if lines(o0) != lines(&out) {
                    errors.push(format!("{label}: rejected.csv differs between -w {w0} and -w {w}"));
                }
                if differ {
                    if let Err(e) = compare_case_outputs(r, &out, &names, u64::MAX) {
                        errors.push(format!("{label} -w {w}:\n  {e}"));
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(coverage)
    } else {
        Err(errors.join("\n"))
    }
}

/// What the run summary reports for `ads_curated` (contract, case 3): (refresh boundaries
/// from the first refresh at which the set changed to the last one at which it changed,
/// rows a full re-send at each of them would write, change rows written). `None` when
/// the set never changed.
pub fn ads_summary_expected(r: &CaseRef, stream: &[Change]) -> Option<(usize, usize, usize)> {
    let (first, last) = (stream.first()?.0, stream.last()?.0);
    let p = r.ads.refresh_ms;
    let mut boundaries = BTreeSet::new();
    let mut k = (first / p).saturating_sub(1);
    loop {
        let b = r.f(k * p, p);
        if b > last {
            break;
        }
        if b >= first {
            boundaries.insert(b);
        }
        k += 1;
    }
    let rows = boundaries.iter().map(|&b| stream_state_at(stream, b).len()).sum();
    Some((boundaries.len(), rows, stream.len()))
}

/// The unsigned integers of the summary line that starts with `<name>:`, in order.
pub fn summary_numbers(summary: &str, name: &str) -> Option<Vec<u64>> {
    let line = summary.lines().map(str::trim).find(|l| l.starts_with(&format!("{name}:")))?;
    let rest = &line[name.len() + 1..];
    Some(rest.split(|c: char| !c.is_ascii_digit()).filter(|x| !x.is_empty()).filter_map(|x| x.parse().ok()).collect())
}
