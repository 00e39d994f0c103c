//! Reference.

use super::*;

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
pub enum Beh {
    Impression,
    Click,
    Fav,
    Cart,
    Buy,
}

#[derive(Clone, Debug)]
pub struct Ev {
    pub time: u64,
    pub ts: u64,
    pub user: u64,
    pub item: u64,
    pub scene: String,
    pub beh: Beh,
    pub qty: u64,
    pub amount: u64,
}

/// A catalog row (native catalog file, or derived from a UserBehavior row).
#[derive(Clone, Debug)]
pub struct CatRow {
    pub time: u64,
    pub file: usize,
    pub line: u64,
    pub item: u64,
    /// `None` = delete.
    pub cat: Option<u64>,
    /// The whole upsert (`None` = delete); `info.cat == cat`.
    pub info: Option<CatInfo>,
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
pub fn pu64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok()
}

pub fn pu32(s: &str) -> Option<u64> {
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
pub fn watermarks(ts_of_line: &[Option<u64>], lateness: u64) -> Vec<u64> {
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

pub fn parse_native(line: &str) -> Option<(u64, u64, u64, String, Beh, u64, u64)> {
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

pub fn parse_catalog(line: &str) -> Option<(u64, u64, Option<CatInfo>)> {
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

pub fn parse_ub(line: &str) -> Option<(u64, u64, u64, Beh, u64)> {
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
pub fn ts_field(format_ub: bool, line: &str) -> Option<u64> {
    if format_ub {
        line.split(',').nth(4).and_then(pu64).and_then(|s| s.checked_mul(1000))
    } else {
        line.split(',').next().and_then(pu64)
    }
}

#[derive(Default, Clone)]
pub struct Agg {
    /// impressions, clicks, favs, carts, buys, units, gmv
    pub c: [u64; 7],
    pub users: BTreeSet<u64>,
    pub buyers: BTreeSet<u64>,
    pub items: BTreeSet<u64>,
    pub events: u64,
}

impl Agg {
    pub fn add(&mut self, e: &Ev) {
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

    pub fn nonzero(&self) -> bool {
        self.c.iter().any(|&x| x != 0) || !self.users.is_empty()
    }

    pub fn stats_row(&self, key: String) -> Vec<String> {
        let mut r = vec![key];
        r.extend(self.c.iter().map(|x| x.to_string()));
        r.push(self.users.len().to_string());
        r.push(self.buyers.len().to_string());
        r
    }
}

pub fn score(b: Beh) -> u64 {
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
pub fn outputs_at(evs: &[&Ev], cat_of: &BTreeMap<u64, u64>) -> Vec<OutState> {
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
    pub ub: bool,
    /// Valid events, sorted by logical time (stable: file order within a time).
    pub events: Vec<Ev>,
    /// Catalog rows in (file, line) order.
    pub cat_rows: Vec<CatRow>,
    pub rejected: BTreeSet<(PathBuf, u64, String)>,
    pub counts: Counts,
}

impl ParsedInputs {
    /// Catalog state at time `t` (any u64, not only an epoch start): item -> its row.
    pub fn catalog_at(&self, t: u64) -> BTreeMap<u64, CatInfo> {
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
