//! Reference tests: the `shopflow run` binary against an independent, sequential
//! implementation of the README contract (tests/common/mod.rs), at every logical time.
//!
//! Run: `cargo test --release --test reference`
//! Environment: `SHOPFLOW_SEEDS=3,7` runs only these seeds (in every randomized test);
//! `SHOPFLOW_KEEP=1` keeps inputs/outputs under target/tmp/reference/ even on success
//! (they are always kept on failure).

mod common;
mod support;

use std::collections::BTreeSet;

use common::*;

fn rows(v: &[&str]) -> BTreeSet<Vec<String>> {
    v.iter().map(|r| r.split(',').map(String::from).collect()).collect()
}

/// Hand-computed example: checks the reference itself (no binary needed).
#[test]
fn reference_self_check() {
    let dir = scratch_dir("self_check", 0);
    let events = [
        NATIVE_HEADER,
        "5000,1,10,home,click,0,0",     // wm 0        -> t 5000
        "9000,2,10,home,buy,2,300",     // wm 3000     -> t 9000
        "6500,1,11,search,fav,0,0",     // wm 7000     -> late, t 7000
        "x,1,11,search,fav,0,0",        // rejected, ts does not parse
        "20000,1,10,home,purchase,0,0", // rejected, but pushes wm to 18000
        "12000,3,11,home,cart,5,5",     // late, t 18000 (non-buy quantity not counted)
        "",                             // rejected (empty line)
    ]
    .join("\n")
        + "\n";
    let catalog = [
        CATALOG_HEADER,
        "4000,upsert,10,7,1,100,online,0,0",     // t 4000
        "8000,upsert,11,8,1,100,offline,1,5",    // wm 2000 -> t 8000
        "8100,upsert,11,9,1,100,online,true,5",  // same epoch, later line wins -> 9
        "8200,delete,10,,,,,,",                  // t 8000 (but line 6 below wins from 8000 on)
        "7100,upsert,10,7,1,100,online,false,0", // wm 6200 -> t 7000 (not late)
    ]
    .join("\r\n");
    let gen = Generated { format: Format::Native, events: vec![events], catalog: Some(catalog) };
    let spec = RunSpec::write(&gen, &dir, 1000, 2000);
    let r = Reference::compute(&spec);
    assert_eq!(r.times, vec![4000, 5000, 7000, 8000, 9000, 18000]);
    assert_eq!(r.counts.late_events, 2);
    assert_eq!(r.counts.rejected, 3);
    let rej_lines: Vec<u64> = r.rejected.iter().map(|x| x.1).collect();
    assert_eq!(rej_lines, vec![5, 6, 8]);

    assert_eq!(r.state_at("untagged", 5000), rows(&[]));
    assert_eq!(r.state_at("untagged", 7000), rows(&["11,1"]));
    assert_eq!(r.state_at("untagged", 8000), rows(&[]));
    assert_eq!(r.state_at("category_stats", 8000), rows(&["7,0,1,0,0,0,0,0,1,0", "9,0,0,1,0,0,0,0,1,0"]));
    assert_eq!(r.state_at("category_stats", 9000), rows(&["7,0,1,0,0,1,2,300,2,1", "9,0,0,1,0,0,0,0,1,0"]));
    assert_eq!(r.state_at("category_top_items", 9000), rows(&["7,1,10,1,300"]));
    assert_eq!(r.state_at("user_top_categories", 9000), rows(&["1,1,9,3", "1,2,7,1", "2,1,7,10"]));
    assert_eq!(r.state_at("user_top_categories", 18000), rows(&["1,1,9,3", "1,2,7,1", "2,1,7,10", "3,1,9,5"]));
    assert_eq!(r.state_at("hourly_stats", 18000), rows(&["0,home,0,1,0,1,1,300", "0,search,0,0,1,0,0,0"]));
    assert_eq!(r.state_at("item_stats", 18000), rows(&["10,0,1,0,0,1,2,300,2,1", "11,0,0,1,1,0,0,0,2,0"]));
    assert_eq!(
        r.state_at("user_stats", 18000),
        rows(&["1,0,1,1,0,0,0,0,2", "2,0,0,0,0,1,2,300,1", "3,0,0,0,1,0,0,0,1"])
    );
    assert_eq!(r.state_at("scene_stats", 9000), rows(&["home,0,1,0,0,1,2,300,2,1", "search,0,0,1,0,0,0,0,1,0"]));

    // UserBehavior: smallest (file index, line) among rows with logical time <= t.
    let f0 = ["1,10,7,pv,100", "1,10,8,pv,110", "2,10,9,buy,50"].join("\n") + "\n"; // epoch 10 s, lateness 20 s
    let f1 = ["3,10,5,fav,60", "3,11,6,cart,200"].join("\n") + "\n";
    let gen = Generated { format: Format::UserBehavior, events: vec![f0, f1], catalog: None };
    let spec = RunSpec::write(&gen, &dir.join("ub"), 10_000, 20_000);
    let r = Reference::compute(&spec);
    // f0: line1 t=100000, line2 t=110000, line3 wm=90000 -> late, t=90000.
    // f1: line1 t=60000, line2 t=200000.
    assert_eq!(r.times, vec![60000, 90000, 100000, 110000, 200000]);
    assert_eq!(r.state_at("category_stats", 60000), rows(&["5,0,0,1,0,0,0,0,1,0"]));
    // At 90000 file 0 line 3 (cat 9) is the smallest position -> everything moves to 9.
    assert_eq!(r.state_at("category_stats", 90000), rows(&["9,0,0,1,0,1,1,0,2,1"]));
    // At 100000 file 0 line 1 (cat 7) wins.
    assert_eq!(r.state_at("category_stats", 100000), rows(&["7,0,1,1,0,1,1,0,3,1"]));
    assert_eq!(r.state_at("untagged", 200000), rows(&[]));
    assert_eq!(r.state_at("scene_stats", 200000), rows(&["taobao,0,2,1,1,1,1,0,3,1"]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The generator exercises what it should (no binary needed).
#[test]
fn generator_coverage() {
    let cfg = GenConfig { malformed: true, crlf: true, ..GenConfig::native(5) };
    let dir = scratch_dir("gen_coverage", 5);
    let gen = generate(&cfg);
    let spec = RunSpec::write(&gen, &dir, cfg.epoch_ms, cfg.lateness_ms);
    let r = Reference::compute(&spec);
    eprintln!("{:?}", r.counts);
    assert!(r.counts.late_events > 50, "{:?}", r.counts);
    assert!(r.counts.late_catalog > 5, "{:?}", r.counts);
    assert!(r.counts.rejected > 20, "{:?}", r.counts);
    assert!(r.counts.times > 150, "{:?}", r.counts);
    let last = r.states.last().unwrap();
    assert!(!last[7].is_empty(), "some items never in the catalog");
    // hourly windows: at least 3 distinct hours
    let hours: BTreeSet<&String> = last[6].iter().map(|row| &row[0]).collect();
    assert!(hours.len() >= 3, "{hours:?}");
    // category moves happen: some item's category differs between two times
    let mid = &r.states[r.times.len() / 2][4];
    assert!(!mid.is_empty());
    // untagged changes over time (items join the catalog after their first events)
    let untagged_sizes: BTreeSet<usize> = r.states.iter().map(|s| s[7].len()).collect();
    assert!(untagged_sizes.len() > 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The input configuration of each randomized test, by test name.
fn config(test: &str, seed: u64) -> GenConfig {
    match test {
        // seed 8: large files (many 1024-line segments per worker); seed 11: no catalog
        "native" if seed == 8 => GenConfig { events_per_file: 12_000, catalog_rows: 2_500, ..GenConfig::native(seed) },
        "native" if seed == 11 => GenConfig { catalog_rows: 0, ..GenConfig::native(seed) },
        // seed 12: 1 ms epochs (about two thousand logical times)
        "native" if seed == 12 => GenConfig {
            epoch_ms: 1,
            lateness_ms: 3_000,
            span_ms: 10 * 60_000,
            events_per_file: 1_500,
            catalog_rows: 300,
            ..GenConfig::native(seed)
        },
        "native" => GenConfig::native(seed),
        "native2" => GenConfig {
            n_event_files: if seed == 103 { 3 } else { 2 },
            events_per_file: 2500,
            ..GenConfig::native(seed)
        },
        "malformed" => GenConfig {
            malformed: true,
            crlf: true,
            n_event_files: if seed.is_multiple_of(2) { 2 } else { 1 },
            ..GenConfig::native(seed)
        },
        "userbehavior" => GenConfig { malformed: seed.is_multiple_of(2), ..GenConfig::userbehavior(seed) },
        _ => panic!("unknown test {test}"),
    }
}

/// Native format, one events file + catalog, 12 seeds; -w 1 / -w 2 (and -w 3 for some).
#[test]
fn native_random_seeds() {
    let s = seeds(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    check_seeds(
        "native",
        &s,
        |seed| config("native", seed),
        |seed| match seed % 4 {
            0 => vec![1, 2, 3],
            3 => vec![1, 2, 4],
            _ => vec![1, 2],
        },
    );
}

/// Native format, two events files (each with its own watermark) + catalog.
#[test]
fn native_two_event_files() {
    let s = seeds(&[101, 102, 103]);
    check_seeds(
        "native2",
        &s,
        |seed| config("native2", seed),
        |seed| {
            if seed == 101 {
                vec![1, 2, 3]
            } else {
                vec![1, 2]
            }
        },
    );
}

/// Malformed rows in every file, CRLF line ends, missing final newlines.
#[test]
fn native_malformed_rows() {
    let s = seeds(&[201, 202, 203]);
    let counts = check_seeds("malformed", &s, |seed| config("malformed", seed), |_| vec![1, 2]);
    for c in counts {
        assert!(c.rejected > 0);
    }
}

/// UserBehavior format, two files, no catalog; categories differ between rows of one item
/// (seed 302 also has malformed rows).
#[test]
fn userbehavior_two_files() {
    let s = seeds(&[301, 302]);
    check_seeds(
        "userbehavior",
        &s,
        |seed| config("userbehavior", seed),
        |seed| {
            if seed == 301 {
                vec![1, 2, 3]
            } else {
                vec![1, 2]
            }
        },
    );
}

/// Shrinks a failing randomized input to a small reproduction:
/// `SHOPFLOW_MIN=native:7:1 [SHOPFLOW_MIN_MATCH=category_stats] cargo test --release
///  --test reference minimize -- --ignored --nocapture`
/// (test name : seed : comma-separated worker counts). Prints the minimized files.
#[test]
#[ignore]
fn minimize_failure() {
    let spec = std::env::var("SHOPFLOW_MIN").expect("set SHOPFLOW_MIN=test:seed:workers");
    let parts: Vec<&str> = spec.split(':').collect();
    let (test, seed) = (parts[0], parts[1].parse::<u64>().unwrap());
    let workers: Vec<usize> = parts.get(2).unwrap_or(&"1").split(',').map(|w| w.parse().unwrap()).collect();
    let needle = std::env::var("SHOPFLOW_MIN_MATCH").unwrap_or_default();
    let cfg = config(test, seed);
    let dir = scratch_dir("minimize", seed);
    let input = RawInput::from_generated(&generate(&cfg));
    let fails = |inp: &RawInput| {
        failure_of(inp, &dir.join("try"), cfg.epoch_ms, cfg.lateness_ms, &workers).is_some_and(|m| m.contains(&needle))
    };
    assert!(fails(&input), "the input does not fail (with match {needle:?})");
    let min = minimize(input, fails);
    for (k, f) in min.files.iter().enumerate() {
        println!("--- file {k} ---\n{}", f.concat());
    }
    println!(
        "--- failure ---\n{}",
        failure_of(&min, &dir.join("final"), cfg.epoch_ms, cfg.lateness_ms, &workers).unwrap()
    );
    println!(
        "(epoch-ms {}, lateness-ms {}, files kept in {})",
        cfg.epoch_ms,
        cfg.lateness_ms,
        dir.join("final").display()
    );
}

/// The checker is not vacuous: mutated outputs of a correct run are rejected.
#[test]
fn checker_detects_mutations() {
    let cfg = GenConfig { events_per_file: 800, catalog_rows: 120, ..GenConfig::native(42) };
    let dir = scratch_dir("mutations", 42);
    let spec = RunSpec::write(&generate(&cfg), &dir.join("in"), cfg.epoch_ms, cfg.lateness_ms);
    let r = Reference::compute(&spec);
    let out = dir.join("out");
    let res = run_shopflow(&spec, &out, 1);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    if let Err(e) = compare_outputs(&r, &out) {
        panic!("the unmutated run must pass to test the checker:\n{e}");
    }
    let mutations = common::mutations(cfg.epoch_ms);
    for (name, _) in OUTPUTS.iter() {
        let path = out.join(format!("{name}.csv"));
        let orig = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = orig.lines().map(String::from).collect();
        if lines.len() < 6 {
            continue;
        }
        for (mname, m) in &mutations {
            let mut l = lines.clone();
            m(&mut l);
            std::fs::write(&path, l.join("\n") + "\n").unwrap();
            assert!(compare_outputs(&r, &out).is_err(), "mutation {mname:?} of {name} was not detected");
        }
        std::fs::write(&path, orig).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Edge shapes: an events file with only its header, a catalog with only its header,
/// no catalog at all, everything in one epoch.
#[test]
fn edge_shapes() {
    let dir = scratch_dir("edge_shapes", 0);
    let ev = format!("{NATIVE_HEADER}\n0,1,2,a,click,0,0\n0,1,2,a,click,0,0\n59999,3,2,a,buy,1,7\n");
    let cat_rows = format!("{CATALOG_HEADER}\n10,upsert,2,5,0,0,offline,true,0\n");
    let cases: Vec<(&str, Generated)> = vec![
        (
            "empty events",
            Generated {
                format: Format::Native,
                events: vec![format!("{NATIVE_HEADER}\n")],
                catalog: Some(cat_rows.clone()),
            },
        ),
        (
            "empty catalog",
            Generated {
                format: Format::Native,
                events: vec![ev.clone()],
                catalog: Some(format!("{CATALOG_HEADER}\n")),
            },
        ),
        ("no catalog", Generated { format: Format::Native, events: vec![ev.clone()], catalog: None }),
        (
            "one epoch",
            Generated { format: Format::Native, events: vec![ev.clone(), ev.clone()], catalog: Some(cat_rows.clone()) },
        ),
        (
            "header only, no newline",
            Generated { format: Format::Native, events: vec![NATIVE_HEADER.to_string()], catalog: None },
        ),
    ];
    let mut failures = Vec::new();
    for (k, (name, gen)) in cases.iter().enumerate() {
        let d = dir.join(format!("case{k}"));
        let spec = RunSpec::write(gen, &d.join("in"), 60_000, 1_000);
        let r = Reference::compute(&spec);
        if let Err(e) = check_spec(name, &d, &spec, &r, &[1, 2]) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_handmade(test: &str, gen: &Generated, epoch_ms: u64, lateness_ms: u64) {
    let dir = scratch_dir(test, 0);
    let spec = RunSpec::write(gen, &dir.join("in"), epoch_ms, lateness_ms);
    let r = Reference::compute(&spec);
    if let Err(e) = check_spec(test, &dir, &spec, &r, &[1, 2]) {
        panic!("{e}\n  (inputs and outputs kept in {})", dir.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Values at the edges of the contract: leading zeros, `+` signs, multi-byte scenes at
/// the 16-byte limit, quantities at u32::MAX (units beyond u32), ids and ts at u64::MAX.
#[test]
fn extreme_values() {
    let events = [
        NATIVE_HEADER,
        "007,0007,010,home,click,0,0",
        "5000,1,10,café_bär,click,0,0",
        "5000,1,10,éééééééé,click,0,0",  // 16 bytes: valid
        "5000,1,10,ééééééééé,click,0,0", // 18 bytes: rejected
        "+5000,1,10,home,click,0,0",
        "5000,+1,10,home,click,0,0",
        "5000,1,10,home,click,0,0 ",
        "5000,1,11,home,buy,4294967295,1",
        "5000,2,11,home,buy,4294967295,1",
        "5000,3,12,home,buy,4294967296,1",
        "5000,18446744073709551615,18446744073709551615,home,buy,1,2",
        "18446744073709551615,1,13,home,click,0,0",
        "6000,1,10,home,click,0,0",
    ]
    .join("\n")
        + "\n";
    let catalog = [
        CATALOG_HEADER,
        "0,upsert,10,18446744073709551615,0,0,online,1,0",
        "1000,upsert,011,05,18446744073709551615,18446744073709551615,offline,false,18446744073709551615",
        "1000,upsert,18446744073709551615,5,1,1,online,true,1",
    ]
    .join("\n")
        + "\n";
    let gen = Generated { format: Format::Native, events: vec![events], catalog: Some(catalog) };
    check_handmade("extreme_values", &gen, 1000, 60_000);
}

/// gmv_cents is a sum of u64 amounts (`amount_cents` fits u64): a buy of 2^63 cents, and
/// a sum above i64::MAX that still fits u64.
#[test]
fn gmv_beyond_i64() {
    let events = [
        NATIVE_HEADER,
        "5000,1,11,home,buy,1,1000000000000001",
        "6000,2,12,home,buy,1,1000000000000000",
        "6000,3,12,home,buy,1,1000000000000000",
    ]
    .join("\n")
        + "\n";
    let gen = Generated { format: Format::Native, events: vec![events], catalog: None };
    check_handmade("gmv_beyond_i64", &gen, 1000, 60_000);
}

/// Without --epoch-ms/--lateness-ms the documented defaults (1000, 60000) apply.
#[test]
fn default_epoch_and_lateness() {
    let cfg = GenConfig {
        epoch_ms: 1000,
        lateness_ms: 60_000,
        span_ms: 15 * 60_000,
        events_per_file: 2000,
        catalog_rows: 300,
        ..GenConfig::native(77)
    };
    let dir = scratch_dir("defaults", 77);
    let mut spec = RunSpec::write(&generate(&cfg), &dir.join("in"), cfg.epoch_ms, cfg.lateness_ms);
    spec.omit_time_flags = true;
    let r = Reference::compute(&spec);
    if let Err(e) = check_spec("defaults", &dir, &spec, &r, &[1, 2]) {
        panic!("{e}\n  (kept in {})", dir.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn exit_code(test: &str, events: &str, catalog: Option<&str>, extra: &[&str]) -> (Option<i32>, String) {
    let dir = scratch_dir(test, 0);
    let gen =
        Generated { format: Format::Native, events: vec![events.to_string()], catalog: catalog.map(String::from) };
    let mut spec = RunSpec::write(&gen, &dir.join("in"), 1000, 1000);
    spec.extra_args = extra.iter().map(|s| s.to_string()).collect();
    let out = run_shopflow(&spec, &dir.join("out"), 1);
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A file whose first line is not the header: one line on stderr, exit 2.
#[test]
fn bad_header_exits_2() {
    let good = format!("{NATIVE_HEADER}\n1000,1,2,home,click,0,0\n");
    let (c, e) =
        exit_code("bad_header1", "ts_ms,user_id,item_id,scene,behavior,quantity\n1000,1,2,home,click,0,0\n", None, &[]);
    assert_eq!(c, Some(2), "short header; stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line on stderr: {e}");
    let (c, e) = exit_code("bad_header2", "", None, &[]);
    assert_eq!(c, Some(2), "empty events file; stderr: {e}");
    let (c, e) = exit_code("bad_header3", &good, Some("ts_ms,op,item_id\n"), &[]);
    assert_eq!(c, Some(2), "bad catalog header; stderr: {e}");
    let (c, e) = exit_code("bad_header4", &good, None, &[]);
    assert_eq!(c, Some(0), "good file; stderr: {e}");
}

/// --strict: the first rejected row is a one-line error, exit 2.
#[test]
fn strict_mode() {
    let bad = format!("{NATIVE_HEADER}\n1000,1,2,home,click,0,0\n1000,1,2,home,klick,0,0\n");
    let (c, e) = exit_code("strict1", &bad, None, &["--strict"]);
    assert_eq!(c, Some(2), "stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line on stderr: {e}");
    let (c, e) = exit_code("strict2", &bad, None, &[]);
    assert_eq!(c, Some(0), "without --strict; stderr: {e}");
}

/// The minimizer (used by `minimize_failure`) shrinks to the lines a failure needs.
#[test]
fn minimizer_self_check() {
    let gen = generate(&GenConfig { events_per_file: 300, catalog_rows: 50, ..GenConfig::native(9) });
    let input = RawInput::from_generated(&gen);
    let a = input.files[0][17].clone();
    let b = input.files[1][30].clone();
    let min = minimize(input, |i| i.files[0].contains(&a) && i.files[1].contains(&b));
    assert_eq!(min.files[0].len(), 2, "header + one line");
    assert_eq!(min.files[1].len(), 2, "header + one line");
    assert_eq!(min.files[0][1], a);
    assert_eq!(min.files[1][1], b);
}
