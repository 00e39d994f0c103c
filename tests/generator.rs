//! Tests of the data generator (`shopflow gen`): determinism, statistics, malformed rows,
//! catalog consistency. Kept fast: the biggest run is 1 M native events.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use generator::*;

// ------------------------------------------------------------------------------- helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("shopflow-gen-{}-{}", name, std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Lines as the README numbers them: the final newline does not start a line.
fn lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let mut v: Vec<String> = text.split('\n').map(|s| s.to_string()).collect();
    if text.ends_with('\n') {
        v.pop();
    }
    v
}

fn unsigned(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[derive(Debug, Clone)]
struct Event {
    ts: u64,
    user: u64,
    item: u64,
    scene: String,
    behavior: String,
    qty: u64,
    amount: u64,
}

/// Native event row per the README contract.
fn parse_event(line: &str) -> Option<Event> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 7 {
        return None;
    }
    let scene = f[3];
    if scene.is_empty() || scene.len() > 16 || scene.contains('"') {
        return None;
    }
    if !["impression", "click", "fav", "cart", "buy"].contains(&f[4]) {
        return None;
    }
    let qty = unsigned(f[5])?;
    if qty > u32::MAX as u64 {
        return None;
    }
    Some(Event {
        ts: unsigned(f[0])?,
        user: unsigned(f[1])?,
        item: unsigned(f[2])?,
        scene: scene.to_string(),
        behavior: f[4].to_string(),
        qty,
        amount: unsigned(f[6])?,
    })
}

#[derive(Debug, Clone, PartialEq)]
struct CatRow {
    ts: u64,
    delete: bool,
    item: u64,
    category: u64,
    seller: u64,
    price: u64,
    online: bool,
    is_ad: bool,
    bid: u64,
}

/// Catalog row per the README contract.
fn parse_catalog(line: &str) -> Option<CatRow> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 9 {
        return None;
    }
    let ts = unsigned(f[0])?;
    let item = unsigned(f[2])?;
    match f[1] {
        "delete" => Some(CatRow {
            ts,
            delete: true,
            item,
            category: 0,
            seller: 0,
            price: 0,
            online: false,
            is_ad: false,
            bid: 0,
        }),
        "upsert" => {
            let online = match f[6] {
                "online" => true,
                "offline" => false,
                _ => return None,
            };
            let is_ad = match f[7] {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return None,
            };
            Some(CatRow {
                ts,
                delete: false,
                item,
                category: unsigned(f[3])?,
                seller: unsigned(f[4])?,
                price: unsigned(f[5])?,
                online,
                is_ad,
                bid: unsigned(f[8])?,
            })
        }
        _ => None,
    }
}

#[derive(Debug, Clone)]
struct UbRow {
    item: u64,
    category: u64,
    behavior: String,
    ts_s: u64,
}

fn parse_ub(line: &str) -> Option<UbRow> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 5 {
        return None;
    }
    if !["pv", "fav", "cart", "buy"].contains(&f[3]) {
        return None;
    }
    unsigned(f[0])?;
    Some(UbRow { item: unsigned(f[1])?, category: unsigned(f[2])?, behavior: f[3].to_string(), ts_s: unsigned(f[4])? })
}

/// Why a malformed line is malformed (used to check that every kind occurs).
fn bad_kind(line: &str, cols: usize, words: &[&str], word_col: usize) -> &'static str {
    if line.is_empty() {
        return "empty";
    }
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != cols {
        return "columns";
    }
    if !words.contains(&f[word_col]) {
        return "word";
    }
    if f.iter().any(|x| x.starts_with('-')) {
        return "negative";
    }
    if f.iter()
        .any(|x| !x.is_empty() && x.bytes().any(|b| b.is_ascii_digit()) && x.bytes().any(|b| !b.is_ascii_digit()))
        || f.iter().any(|x| ["abc", "NaN", "#"].contains(x))
    {
        return "non-numeric";
    }
    "other"
}

const EVENTS_HEADER: &str = "ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents";
const CATALOG_HEADER: &str = "ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents";

// ------------------------------------------------------------------------------- tests

#[test]
fn defaults() {
    let cfg = GenConfig::default_with(10_000_000, 7, PathBuf::from("x"));
    assert_eq!(cfg.format, GenFormat::Native);
    assert_eq!(cfg.start_ms, 1_700_000_000_000 - (1_700_000_000_000 % 86_400_000));
    assert_eq!(cfg.start_ms % 86_400_000, 0);
    assert_eq!(cfg.days, 9.0);
    assert_eq!(cfg.late_fraction, 0.02);
    assert_eq!(cfg.bad_rows, 0.0);
    assert_eq!(cfg.sale_hour, None);
    assert!(!cfg.progress);
    assert_eq!((cfg.users, cfg.items, cfg.categories, cfg.sellers), (100_000, 200_000, 1_000, 10_000));
    let tiny = GenConfig::default_with(0, 7, PathBuf::from("x"));
    assert!(tiny.users >= 1 && tiny.items >= 1 && tiny.categories >= 1 && tiny.sellers >= 1);
}

#[test]
fn invalid_configs_are_errors() {
    let dir = TempDir::new("invalid");
    let base = GenConfig::default_with(1000, 1, dir.path());
    let mut c = base.clone();
    c.items = 0;
    assert!(generate(&c).is_err());
    let mut c = base.clone();
    c.bad_rows = 1.0;
    assert!(generate(&c).is_err());
    let mut c = base.clone();
    c.days = 0.0;
    assert!(generate(&c).is_err());
    let mut c = base.clone();
    c.sale_hour = Some(9 * 24);
    assert!(generate(&c).is_err());
    let mut c = base.clone();
    c.users = u32::MAX as u64 + 1;
    assert!(generate(&c).is_err());
}

#[test]
fn tiny_configs_work() {
    let dir = TempDir::new("tiny");
    for (events, items) in [(0u64, 1u64), (1, 1), (50, 2), (1000, 3)] {
        let mut c = GenConfig::default_with(events, 3, dir.path());
        c.items = items;
        c.users = 1;
        c.categories = 1;
        c.sellers = 1;
        c.days = 0.01;
        c.bad_rows = 0.1;
        let s = generate(&c).unwrap();
        assert_eq!(s.events_written, events);
        let ev = lines(&dir.path().join("events.csv"));
        assert_eq!(ev[0], EVENTS_HEADER);
        assert_eq!(ev[1..].iter().filter(|l| parse_event(l).is_some()).count() as u64, events);
    }
}

#[test]
fn determinism() {
    let a = TempDir::new("det-a");
    let b = TempDir::new("det-b");
    let c = TempDir::new("det-c");
    for format in [GenFormat::Native, GenFormat::UserBehavior] {
        let mk = |seed: u64, dir: PathBuf| {
            let mut cfg = GenConfig::default_with(200_000, seed, dir);
            cfg.format = format;
            cfg.bad_rows = 0.01;
            cfg.sale_hour = Some(44);
            cfg
        };
        let sa = generate(&mk(11, a.path())).unwrap();
        let sb = generate(&mk(11, b.path())).unwrap();
        generate(&mk(12, c.path())).unwrap();
        assert_eq!(sa.events_written, sb.events_written);
        assert_eq!(sa.catalog_rows, sb.catalog_rows);
        assert_eq!(sa.bad_rows, sb.bad_rows);
        assert_eq!(sa.late_events, sb.late_events);
        let names: &[&str] = match format {
            GenFormat::Native => &["events.csv", "catalog.csv"],
            GenFormat::UserBehavior => &["UserBehavior.csv"],
        };
        assert_eq!(sa.files.len(), names.len());
        for name in names {
            let fa = fs::read(a.path().join(name)).unwrap();
            let fb = fs::read(b.path().join(name)).unwrap();
            let fc = fs::read(c.path().join(name)).unwrap();
            assert!(fa.len() > 1000);
            assert!(fa == fb, "{name}: same seed, different bytes");
            assert!(fa != fc, "{name}: different seeds, same bytes");
        }
    }
}

/// The main statistical test: 1 M native events with the defaults.
#[test]
fn native_statistics_and_catalog_consistency() {
    let dir = TempDir::new("stats");
    // GEN_TEST_SEED lets one sweep seeds by hand; CI uses the fixed default
    let seed = std::env::var("GEN_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(2024);
    let cfg = GenConfig::default_with(1_000_000, seed, dir.path());
    let summary = generate(&cfg).unwrap();
    assert_eq!(summary.events_written, 1_000_000);
    assert_eq!(summary.bad_rows, 0);
    assert_eq!(summary.files, vec![dir.path().join("events.csv"), dir.path().join("catalog.csv")]);

    // ---- parse
    let ev_lines = lines(&dir.path().join("events.csv"));
    assert_eq!(ev_lines[0], EVENTS_HEADER);
    let events: Vec<Event> =
        ev_lines[1..].iter().map(|l| parse_event(l).unwrap_or_else(|| panic!("invalid event row {l:?}"))).collect();
    assert_eq!(events.len() as u64, summary.events_written);
    let cat_lines = lines(&dir.path().join("catalog.csv"));
    assert_eq!(cat_lines[0], CATALOG_HEADER);
    let catalog: Vec<CatRow> = cat_lines[1..]
        .iter()
        .map(|l| parse_catalog(l).unwrap_or_else(|| panic!("invalid catalog row {l:?}")))
        .collect();
    assert_eq!(catalog.len() as u64, summary.catalog_rows);

    // ---- time span
    let end = cfg.start_ms + (cfg.days * 86_400_000.0) as u64;
    assert!(events.iter().all(|e| e.ts >= cfg.start_ms && e.ts < end));
    assert!(catalog.iter().all(|r| r.ts >= cfg.start_ms && r.ts < end));
    assert!(events.iter().map(|e| e.ts).max().unwrap() > end - 3_600_000);

    // ---- behaviour mix of non-impression actions: within ±1.5 points
    let mut by_behavior: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &events {
        *by_behavior.entry(e.behavior.as_str()).or_default() += 1;
    }
    let actions: u64 = by_behavior.iter().filter(|(b, _)| **b != "impression").map(|(_, n)| n).sum();
    for (b, target) in TARGET_MIX {
        let share = by_behavior[b] as f64 / actions as f64;
        assert!((share - target).abs() <= 0.015, "{b}: {share:.4} vs {target}");
    }
    let imp_share = by_behavior["impression"] as f64 / events.len() as f64;
    assert!(imp_share > 0.9 && imp_share < 0.99, "impression share {imp_share}");

    // ---- CTR per scene: within ±15 % (relative) of the model's value
    let mut imps: BTreeMap<&str, u64> = BTreeMap::new();
    let mut clicks: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &events {
        match e.behavior.as_str() {
            "impression" => *imps.entry(e.scene.as_str()).or_default() += 1,
            "click" => *clicks.entry(e.scene.as_str()).or_default() += 1,
            _ => {}
        }
    }
    assert_eq!(imps.keys().copied().collect::<Vec<_>>().len(), SCENES.len());
    for (scene, ctr) in SCENES.iter().zip(SCENE_CTR) {
        let got = clicks[scene] as f64 / imps[scene] as f64;
        assert!((got / ctr - 1.0).abs() < 0.15, "CTR {scene}: {got:.4} vs {ctr}");
    }
    assert!(clicks["search"] as f64 / (imps["search"] as f64) > 2.0 * clicks["ad"] as f64 / imps["ad"] as f64);

    // ---- non-buy rows carry 0/0; buys carry a positive quantity
    for e in &events {
        if e.behavior == "buy" {
            assert!(e.qty >= 1 && e.amount > 0, "{e:?}");
        } else {
            assert_eq!((e.qty, e.amount), (0, 0), "{e:?}");
        }
    }

    // ---- heavy tails
    let mut per_item: BTreeMap<u64, u64> = BTreeMap::new();
    let mut per_user: BTreeMap<u64, u64> = BTreeMap::new();
    for e in &events {
        *per_item.entry(e.item).or_default() += 1;
        *per_user.entry(e.user).or_default() += 1;
    }
    let mut counts: Vec<u64> = per_item.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top1: u64 = counts[..(cfg.items as usize / 100)].iter().sum();
    let top1_share = top1 as f64 / events.len() as f64;
    assert!(top1_share >= 0.20, "top 1 % of items: {top1_share:.3}");
    assert!((counts[0] as f64 / events.len() as f64) < 0.05, "one item dominates");
    let mut ucounts: Vec<u64> = per_user.values().copied().collect();
    ucounts.sort_unstable_by(|a, b| b.cmp(a));
    let utop: u64 = ucounts[..(cfg.users as usize / 100)].iter().sum();
    let utop_share = utop as f64 / events.len() as f64;
    assert!(utop_share >= 0.05, "top 1 % of users: {utop_share:.3}");
    assert!(ucounts[0] as f64 / (events.len() as f64) < 0.05, "one user dominates");

    // ---- diurnal shape: busiest hour of day ≥ 3× the quietest
    let mut by_hour = [0u64; 24];
    for e in &events {
        by_hour[((e.ts / 3_600_000) % 24) as usize] += 1;
    }
    let (mx, mn) = (*by_hour.iter().max().unwrap(), *by_hour.iter().min().unwrap());
    assert!(mx >= 3 * mn, "diurnal {by_hour:?}");
    let peak = by_hour.iter().position(|&c| c == mx).unwrap();
    assert!((17..=23).contains(&peak), "peak hour {peak}");

    // ---- out-of-order delivery
    let mut max_ts = 0;
    let mut late = 0u64;
    let mut beyond_60s = 0u64;
    let mut max_lateness = 0;
    for e in &events {
        if e.ts < max_ts {
            late += 1;
            let l = max_ts - e.ts;
            max_lateness = max_lateness.max(l);
            if l > 60_000 {
                beyond_60s += 1;
            }
        }
        max_ts = max_ts.max(e.ts);
    }
    assert_eq!(late, summary.late_events);
    let late_share = late as f64 / events.len() as f64;
    assert!((late_share / cfg.late_fraction - 1.0).abs() < 0.1, "late share {late_share}");
    let beyond = beyond_60s as f64 / late as f64;
    assert!(beyond > 0.08 && beyond < 0.3, "share of late events beyond 60 s: {beyond}");
    assert!(max_lateness <= 400_000, "max lateness {max_lateness}");

    // ---- catalog: time order, composition
    assert!(catalog.windows(2).all(|w| w[0].ts <= w[1].ts), "catalog not in time order");
    let initial: Vec<&CatRow> = catalog.iter().filter(|r| r.ts == cfg.start_ms).collect();
    assert!(initial.len() as f64 > 0.75 * cfg.items as f64);
    let ads = initial.iter().filter(|r| r.is_ad).count() as f64 / initial.len() as f64;
    assert!((0.035..0.065).contains(&ads), "ad share {ads}");
    assert!(initial.iter().all(|r| !r.delete && r.price > 0 && (r.bid > 0) == r.is_ad));
    assert!(initial.iter().all(|r| r.category >= 1 && r.category <= cfg.categories));
    assert!(initial.iter().all(|r| r.seller >= 1 && r.seller <= cfg.sellers));
    // items per category heavy-tailed
    let mut per_cat: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &initial {
        *per_cat.entry(r.category).or_default() += 1;
    }
    let mut pc: Vec<u64> = per_cat.values().copied().collect();
    pc.sort_unstable_by(|a, b| b.cmp(a));
    let median = pc[pc.len() / 2];
    assert!(pc[0] >= 10 * median.max(1), "items per category not heavy-tailed: {pc:?}");

    // ---- replay the catalog along the events (by timestamp) and check every reference
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].ts, i));
    let n_ids = (cfg.items as usize) * 2 + 100;
    let mut state: Vec<Option<CatRow>> = vec![None; n_ids];
    let mut ever: Vec<bool> = vec![false; n_ids];
    let (mut arrivals, mut price_changes, mut moves, mut offline, mut back_online, mut deletes) = (0, 0, 0, 0, 0, 0);
    let mut ci = 0;
    let mut unknown = 0u64;
    let mut buys_checked = 0u64;
    for &i in &order {
        let e = &events[i];
        while ci < catalog.len() && catalog[ci].ts <= e.ts {
            let r = &catalog[ci];
            let id = r.item as usize;
            assert!(r.item >= 1 && r.item <= cfg.items, "catalog item id {}", r.item);
            if r.delete {
                assert!(state[id].is_some(), "delete of a missing item {id}");
                deletes += 1;
                state[id] = None;
            } else {
                match &state[id] {
                    None => {
                        assert!(!ever[id], "item {id} upserted after its delete");
                        if r.ts > cfg.start_ms {
                            arrivals += 1;
                        }
                    }
                    Some(old) => {
                        if old.price != r.price {
                            price_changes += 1;
                        }
                        if old.category != r.category {
                            moves += 1;
                        }
                        if old.online && !r.online {
                            offline += 1;
                        }
                        if !old.online && r.online {
                            back_online += 1;
                        }
                    }
                }
                state[id] = Some(r.clone());
            }
            ever[id] = true;
            ci += 1;
        }
        let id = e.item as usize;
        match &state[id] {
            Some(row) => {
                if e.behavior == "buy" {
                    assert_eq!(e.amount, e.qty * row.price, "buy not at the current price {e:?}");
                    buys_checked += 1;
                }
            }
            None => {
                assert!(e.item > cfg.items, "event references item {} outside the catalog at {}", e.item, e.ts);
                unknown += 1;
            }
        }
    }
    // the unknown items never appear in the catalog
    assert!(catalog.iter().all(|r| r.item <= cfg.items));
    let unknown_share = unknown as f64 / events.len() as f64;
    assert!((unknown_share / UNKNOWN_ITEM_SHARE - 1.0).abs() < 0.3, "unknown-item share {unknown_share}");
    assert!(buys_checked > 500, "buys {buys_checked}");
    assert!(arrivals as f64 > 0.1 * cfg.items as f64, "arrivals {arrivals}");
    assert!(price_changes > 1000, "price changes {price_changes}");
    assert!(moves > 50, "category moves {moves}");
    assert!(offline > 100 && back_online > 50, "offline {offline} back {back_online}");
    assert!(deletes > 20, "deletes {deletes}");

    // ---- the same at the logical times the README defines (epoch 1000 ms, lateness 60 s):
    // an event is tagged iff its item has a catalog row at the event's logical time
    let epoch = |t: u64| t - t % 1000;
    let mut logical: Vec<(u64, usize)> = Vec::with_capacity(events.len());
    let mut max_ts: Option<u64> = None;
    for (i, e) in events.iter().enumerate() {
        let wm = max_ts.map(|m| m.saturating_sub(60_000)).unwrap_or(0);
        logical.push((epoch(e.ts).max(epoch(wm)), i));
        max_ts = Some(max_ts.map_or(e.ts, |m| m.max(e.ts)));
    }
    logical.sort_unstable();
    let mut exists = vec![false; n_ids];
    let mut ci = 0;
    let mut untagged = 0u64;
    for &(t, i) in &logical {
        while ci < catalog.len() && epoch(catalog[ci].ts) <= t {
            exists[catalog[ci].item as usize] = !catalog[ci].delete;
            ci += 1;
        }
        let e = &events[i];
        if !exists[e.item as usize] {
            assert!(e.item > cfg.items, "untagged known item {e:?} at logical time {t}");
            untagged += 1;
        }
    }
    assert_eq!(untagged, unknown);
}

fn check_bad_rows_native(dir: &Path, summary: &GenSummary) -> BTreeMap<&'static str, u64> {
    let mut kinds = BTreeMap::new();
    let mut bad = 0u64;
    let ev = lines(&dir.join("events.csv"));
    assert_eq!(ev[0], EVENTS_HEADER);
    let mut valid_events = 0u64;
    for l in &ev[1..] {
        if parse_event(l).is_some() {
            valid_events += 1;
        } else {
            bad += 1;
            let words = ["impression", "click", "fav", "cart", "buy"];
            let mut k = bad_kind(l, 7, &words, 4);
            if k == "other" {
                let scene = l.split(',').nth(3).unwrap();
                assert!(scene.is_empty() || scene.len() > 16, "unexpected bad row {l:?}");
                k = "scene";
            }
            *kinds.entry(k).or_default() += 1;
        }
    }
    assert_eq!(valid_events, summary.events_written);
    let cat = lines(&dir.join("catalog.csv"));
    assert_eq!(cat[0], CATALOG_HEADER);
    let mut valid_cat = 0u64;
    for l in &cat[1..] {
        if parse_catalog(l).is_some() {
            valid_cat += 1;
        } else {
            bad += 1;
            let mut k = bad_kind(l, 9, &["upsert", "delete"], 1);
            if k == "other" {
                let f: Vec<&str> = l.split(',').collect();
                assert!(
                    !["online", "offline"].contains(&f[6]) || !["0", "1"].contains(&f[7]),
                    "unexpected bad catalog row {l:?}"
                );
                k = "status/is_ad";
            }
            *kinds.entry(k).or_default() += 1;
        }
    }
    assert_eq!(valid_cat, summary.catalog_rows);
    assert_eq!(bad, summary.bad_rows, "reported bad rows");
    kinds
}

#[test]
fn bad_rows_are_malformed_and_counted() {
    let dir = TempDir::new("bad");
    let mut cfg = GenConfig::default_with(200_000, 5, dir.path());
    cfg.bad_rows = 0.02;
    let s = generate(&cfg).unwrap();
    assert_eq!(s.events_written, 200_000);
    let kinds = check_bad_rows_native(&dir.path(), &s);
    for k in ["empty", "columns", "word", "negative", "non-numeric", "scene", "status/is_ad"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no bad row of kind {k}: {kinds:?}");
    }
    let total_rows = s.events_written + s.catalog_rows + s.bad_rows;
    let share = s.bad_rows as f64 / total_rows as f64;
    assert!((share / cfg.bad_rows - 1.0).abs() < 0.1, "bad share {share}");
    // the catalog carries bad rows too
    let cat_bad = lines(&dir.path().join("catalog.csv"))[1..].iter().filter(|l| parse_catalog(l).is_none()).count();
    assert!(cat_bad > 10);

    // the valid rows are exactly those of the run without bad rows
    let clean = TempDir::new("bad-clean");
    let mut c2 = cfg.clone();
    c2.out_dir = clean.path();
    c2.bad_rows = 0.0;
    let s2 = generate(&c2).unwrap();
    assert_eq!(s2.bad_rows, 0);
    for (name, header) in [("events.csv", true), ("catalog.csv", true)] {
        let _ = header;
        let dirty: Vec<String> = lines(&dir.path().join(name))
            .into_iter()
            .filter(|l| if name == "events.csv" { parse_event(l).is_some() } else { parse_catalog(l).is_some() })
            .collect();
        let cl: Vec<String> = lines(&clean.path().join(name))[1..].to_vec();
        assert!(dirty == cl, "{name}: valid rows differ");
    }

    // UserBehavior
    let ub = TempDir::new("bad-ub");
    let mut cfg = GenConfig::default_with(100_000, 5, ub.path());
    cfg.format = GenFormat::UserBehavior;
    cfg.bad_rows = 0.03;
    let s = generate(&cfg).unwrap();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut valid = 0;
    for l in lines(&ub.path().join("UserBehavior.csv")) {
        if parse_ub(&l).is_some() {
            valid += 1;
        } else {
            let k = bad_kind(&l, 5, &["pv", "fav", "cart", "buy"], 3);
            assert_ne!(k, "other", "unexpected bad row {l:?}");
            *kinds.entry(k).or_default() += 1;
        }
    }
    assert_eq!(valid, s.events_written);
    assert_eq!(kinds.values().sum::<u64>(), s.bad_rows);
    assert_eq!(kinds.len(), 5, "{kinds:?}");
}

#[test]
fn userbehavior_format() {
    let dir = TempDir::new("ub");
    let mut cfg = GenConfig::default_with(300_000, 9, dir.path());
    cfg.format = GenFormat::UserBehavior;
    let s = generate(&cfg).unwrap();
    assert_eq!(s.files, vec![dir.path().join("UserBehavior.csv")]);
    assert_eq!(s.catalog_rows, 0);
    assert!(!dir.path().join("events.csv").exists());
    let rows: Vec<UbRow> = lines(&dir.path().join("UserBehavior.csv"))
        .iter()
        .map(|l| parse_ub(l).unwrap_or_else(|| panic!("invalid row {l:?}")))
        .collect();
    assert_eq!(rows.len(), 300_000);
    // 9 days by default
    let start_s = cfg.start_ms / 1000;
    let min = rows.iter().map(|r| r.ts_s).min().unwrap();
    let max = rows.iter().map(|r| r.ts_s).max().unwrap();
    assert!(min >= start_s && min < start_s + 600);
    assert!(max < start_s + 9 * 86_400 && max > start_s + 9 * 86_400 - 3_600);
    // the mix of pv/cart/fav/buy
    let mut mix: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rows {
        *mix.entry(r.behavior.as_str()).or_default() += 1;
    }
    for (b, target) in TARGET_MIX {
        let b = if b == "click" { "pv" } else { b };
        let share = mix[b] as f64 / rows.len() as f64;
        assert!((share - target).abs() <= 0.015, "{b}: {share:.4} vs {target}");
    }
    // each item keeps its category
    let mut cat: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &rows {
        assert!(r.item >= 1 && r.item <= cfg.items);
        assert_eq!(*cat.entry(r.item).or_insert(r.category), r.category, "item {} moved", r.item);
    }
    // out of order share
    let mut max_ts = 0;
    let mut late = 0;
    for r in &rows {
        if r.ts_s < max_ts {
            late += 1;
        }
        max_ts = max_ts.max(r.ts_s);
    }
    let share = late as f64 / rows.len() as f64;
    assert!(share > 0.5 * cfg.late_fraction && share <= cfg.late_fraction * 1.1, "late share {share}");
}

#[test]
fn sale_hour_spike() {
    let dir = TempDir::new("sale");
    let mut cfg = GenConfig::default_with(500_000, 77, dir.path());
    cfg.days = 3.0;
    let sale = 24 + 20; // day 2, 20:00
    cfg.sale_hour = Some(sale);
    let s = generate(&cfg).unwrap();
    let events: Vec<Event> =
        lines(&dir.path().join("events.csv"))[1..].iter().map(|l| parse_event(l).unwrap()).collect();
    assert_eq!(events.len() as u64, s.events_written);
    let hour = |ts: u64| (ts - cfg.start_ms) / 3_600_000;
    let in_sale = events.iter().filter(|e| hour(e.ts) == sale).count() as f64;
    let same_hour_other_days = events.iter().filter(|e| hour(e.ts) == 20 || hour(e.ts) == 68).count() as f64 / 2.0;
    assert!(in_sale > 6.0 * same_hour_other_days, "sale {in_sale} vs {same_hour_other_days}");
    // many new items and price cuts around the sale
    let catalog: Vec<CatRow> =
        lines(&dir.path().join("catalog.csv"))[1..].iter().map(|l| parse_catalog(l).unwrap()).collect();
    let sale_start = cfg.start_ms + sale * 3_600_000;
    let mut price: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut cuts, mut new_in_sale) = (0, 0);
    for r in &catalog {
        if r.delete {
            continue;
        }
        let near = r.ts + 30 * 60_000 >= sale_start && r.ts < sale_start + 3_600_000;
        match price.insert(r.item, r.price) {
            Some(old) if near && r.price < old => cuts += 1,
            None if near => new_in_sale += 1,
            _ => {}
        }
    }
    assert!(cuts as f64 > 0.1 * cfg.items as f64, "price cuts {cuts}");
    assert!(new_in_sale as f64 > 0.03 * cfg.items as f64, "new items {new_in_sale}");
}

/// A span that ends inside a minute (`--days` for 30 s, the live shape of the latency
/// bench): the events spread evenly over the seconds it covers; the last second holds no
/// more than any other (it used to hold every event of the minute's uncovered part).
#[test]
fn a_partial_last_minute_spreads_its_events() {
    let dir = TempDir::new("live");
    let mut cfg = GenConfig::default_with(60_000, 5, dir.path());
    cfg.format = GenFormat::UserBehavior;
    cfg.late_fraction = 0.0;
    cfg.days = 30.0 / 86_400.0;
    generate(&cfg).unwrap();
    let mut per_second: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines(&dir.path().join("UserBehavior.csv")) {
        *per_second.entry(parse_ub(&l).expect("a valid row").ts_s).or_default() += 1;
    }
    assert_eq!(per_second.len(), 30, "{per_second:?}");
    let (min, max) = (per_second.values().min().unwrap(), per_second.values().max().unwrap());
    assert!(*max < 2_400 && *min > 1_600, "events per second from {min} to {max}: {per_second:?}");
}
