//! The real binary, end to end: bad input, errors and exit codes, sinks, output
//! selection, UserBehavior input, and byte-identical output across workers and processes.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shopflow(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure is exactly one line on stderr, exit code 2, no panic.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line on stderr, got: {err}");
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}

use support::{scratch, BIN};

const EVENTS_HEADER: &str = "ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents";
const CATALOG_HEADER: &str = "ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents";

fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    path
}

/// A small native dataset with catalog churn, used by several tests.
fn small_dataset(dir: &Path) -> (PathBuf, PathBuf) {
    let mut events = vec![EVENTS_HEADER.to_string()];
    for i in 0..400u64 {
        let behavior = ["impression", "impression", "click", "fav", "cart", "buy"][(i * 7 % 6) as usize];
        let (q, a) = if behavior == "buy" { (1 + i % 3, 100 * (1 + i % 5)) } else { (0, 0) };
        let scene = ["search", "home_feed", "detail"][(i % 3) as usize];
        // mostly increasing, some out of order, a few beyond the lateness
        let ts = 1_000 * i + if i % 17 == 0 { 0 } else { 500 } - if i % 41 == 0 && i > 100 { 90_000 } else { 0 };
        events.push(format!("{ts},{},{},{scene},{behavior},{q},{a}", i * 13 % 23, i * 7 % 31));
    }
    let mut catalog = vec![CATALOG_HEADER.to_string()];
    for item in 0..25u64 {
        catalog.push(format!("0,upsert,{item},{},{},{},online,{},5", item % 4, item % 3, 100 + item, item % 2));
    }
    catalog.push("120000,upsert,3,9,1,100,offline,0,0".into());
    catalog.push("200000,delete,4,,,,,,".into());
    catalog.push("250000,upsert,30,2,1,100,online,0,0".into());
    catalog.push("250000,upsert,30,3,1,100,online,0,0".into());
    let e: Vec<&str> = events.iter().map(String::as_str).collect();
    let c: Vec<&str> = catalog.iter().map(String::as_str).collect();
    (write(dir, "events.csv", &e), write(dir, "catalog.csv", &c))
}

fn run_ok(args: &[&str]) -> Output {
    let o = shopflow(args);
    assert_eq!(o.status.code(), Some(0), "shopflow {args:?} failed: {}", stderr(&o));
    o
}

/// `shopflow run --events E --catalog C --out O <extra>`, which must succeed.
fn run_on(events: &str, catalog: &str, out: &Path, extra: &[&str]) -> Output {
    let args = [&["run", "--events", events, "--catalog", catalog, "--out", out.to_str().unwrap()][..], extra].concat();
    run_ok(&args)
}

/// `shopflow run --format userbehavior --events F --out O <extra>`, which must succeed.
fn run_ub(events: &Path, out: &Path, extra: &[&str]) -> Output {
    let args = [
        &["run", "--format", "userbehavior", "--events", events.to_str().unwrap(), "--out", out.to_str().unwrap()][..],
        extra,
    ]
    .concat();
    run_ok(&args)
}

/// The files of an output directory a run wrote, without its lock and manifest (they
/// name the run: its pid, arguments and times).
fn written_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".lock" && n != "MANIFEST.json")
        .collect();
    names.sort();
    names
}

fn manifest(dir: &Path) -> serde_json::Value {
    let text = fs::read_to_string(dir.join("MANIFEST.json")).expect("MANIFEST.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("MANIFEST.json: {e}: {text}"))
}

fn assert_same_dirs(a: &Path, b: &Path) {
    let names = written_files(a);
    assert!(names.len() >= 9, "outputs and rejected.csv in {a:?}");
    for name in names {
        let x = fs::read(a.join(&name)).unwrap();
        let y = fs::read(b.join(&name)).unwrap_or_else(|_| panic!("{name:?} missing in {b:?}"));
        assert!(x == y, "{name:?} differs between {a:?} and {b:?}");
    }
}

#[test]
fn help_lists_every_flag() {
    let o = run_ok(&["run", "--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--events",
        "--catalog",
        "--format",
        "--out",
        "--epoch-ms",
        "--lateness-ms",
        "--outputs",
        "--sink",
        "--envelope",
        "--strict",
        "--workers",
        "--processes",
        "--process",
        "--hostfile",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn bad_rows_go_to_rejected_csv_and_the_run_goes_on() {
    let dir = scratch("bad");
    let events = write(
        &dir,
        "events.csv",
        &[
            EVENTS_HEADER,
            "1000,1,10,search,click,0,0",
            "1000,1,10,search,click",
            "1000,1,10,search,like,0,0",
            "1000,x,10,search,click,0,0",
            "1000,1,-10,search,click,0,0",
            "",
            "1000,1,10,a_scene_name_that_is_too_long,click,0,0",
            "2000,2,10,search,buy,1,700",
        ],
    );
    let catalog = write(
        &dir,
        "catalog.csv",
        &[
            CATALOG_HEADER,
            "0,upsert,10,5,1,700,online,0,0",
            "0,move,10,5,1,700,online,0,0",
            "0,upsert,10,5,1,700,sleeping,0,0",
        ],
    );
    let out = dir.join("out");
    let o = run_ok(&[
        "run",
        "--events",
        events.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let rejected = fs::read_to_string(out.join("rejected.csv")).unwrap();
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines[0], "file,line,reason,raw");
    let expect = [
        (events.as_path(), 3, "expected 7 fields, found 5"),
        (events.as_path(), 4, "behavior: unknown `like`"),
        (events.as_path(), 5, "user_id: not a number"),
        (events.as_path(), 6, "item_id: negative"),
        (events.as_path(), 7, "empty line"),
        (events.as_path(), 8, "scene: must be 1 to 16 bytes"),
        (catalog.as_path(), 3, "op: unknown `move`"),
        (catalog.as_path(), 4, "status: unknown `sleeping`"),
    ];
    assert_eq!(lines.len(), 1 + expect.len(), "{rejected}");
    let mut reader = csv::Reader::from_path(out.join("rejected.csv")).unwrap();
    for (record, (file, line, reason)) in reader.records().zip(expect) {
        let record = record.unwrap();
        assert_eq!(&record[0], file.to_str().unwrap());
        assert_eq!(record[1].parse::<u64>().unwrap(), line);
        assert_eq!(&record[2], reason);
    }
    // The good rows are all counted.
    let items = fs::read_to_string(out.join("item_stats.csv")).unwrap();
    assert!(items.lines().any(|l| l == "2000,1,10,0,1,0,0,1,1,700,2,1"), "{items}");
    let err = stderr(&o);
    assert!(err.contains("rejected rows: 8"), "{err}");
}

#[test]
fn strict_stops_at_the_first_bad_row() {
    let dir = scratch("strict");
    let events = write(&dir, "events.csv", &[EVENTS_HEADER, "1000,1,10,search,click,0,0", "1000,1,10,search,oops,0,0"]);
    let o = shopflow(&[
        "run",
        "--events",
        events.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
        "--strict",
    ]);
    assert_clean_failure(&o, "events.csv:3: behavior: unknown `oops`");
}

/// `--strict` failing on a bad row leaves no empty, header-less output files behind:
/// only the manifest (saying why) and the lock.
#[test]
fn strict_failure_removes_the_outputs_it_created() {
    let dir = scratch("strict-clean");
    let events = write(&dir, "events.csv", &[EVENTS_HEADER, "1000,1,10,search,click,0,0", "1000,1,10,search,oops,0,0"]);
    let out = dir.join("out");
    for sink in ["csv", "jsonl"] {
        let o = shopflow(&[
            "run",
            "--events",
            events.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--strict",
            "--sink",
            sink,
        ]);
        assert_clean_failure(&o, "behavior: unknown `oops`");
        assert_eq!(written_files(&out), Vec::<String>::new(), "--sink {sink}");
        let m = manifest(&out);
        assert_eq!(m["status"], "failed", "{m}");
        assert!(m["message"].as_str().unwrap().contains("behavior: unknown `oops` (--strict)"), "{m}");
    }
}

/// The output directory: stale files of outputs not written and an old rejected.csv are
/// removed (other files stay); the manifest names the run and, at its end, says
/// `complete` with the rows written per output.
#[test]
fn a_run_owns_its_output_directory_and_describes_it_in_a_manifest() {
    let dir = scratch("manifest");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    let out = dir.join("out");
    run_on(events, catalog, &out, &["-q"]);
    fs::write(out.join("item_stats.jsonl"), "{}\n").unwrap();
    fs::write(out.join("rejected.csv"), "file,line,reason,raw\nold,1,stale,\n").unwrap();
    fs::write(out.join("notes.txt"), "mine\n").unwrap();
    run_on(events, catalog, &out, &["--outputs", "untagged,item_stats", "-q"]);
    assert_eq!(written_files(&out), ["item_stats.csv", "notes.txt", "rejected.csv", "untagged.csv"]);
    assert_eq!(fs::read_to_string(out.join("rejected.csv")).unwrap(), "file,line,reason,raw\n");
    let m = manifest(&out);
    assert_eq!(m["status"], "complete", "{m}");
    assert_eq!(m["outputs"], serde_json::json!(["item_stats", "untagged"]));
    assert_eq!(m["files"], serde_json::json!(["item_stats.csv", "untagged.csv", "rejected.csv"]));
    assert_eq!(m["sink"], "csv");
    assert_eq!(m["inputs"], serde_json::json!([events, catalog]));
    assert!(m["argv"].as_array().unwrap().iter().any(|a| a == "untagged,item_stats"), "{m}");
    for name in ["item_stats", "untagged"] {
        let lines = fs::read_to_string(out.join(format!("{name}.csv"))).unwrap().lines().count() as u64;
        assert_eq!(m["rows"][name].as_u64(), Some(lines - 1), "{name}: {m}");
    }
    let (started, ended) = (m["started_ms"].as_u64().unwrap(), m["ended_ms"].as_u64().unwrap());
    assert!(started <= ended && ended - started < 60_000, "{m}");
    assert_eq!(m["started"].as_str().unwrap().len(), "2026-12-01 00:00:00".len(), "{m}");
    assert!(m.get("cutoff_ms").is_none() && m.get("message").is_none(), "{m}");
}

#[test]
fn missing_files_bad_headers_and_bad_flags_are_one_line_errors() {
    let dir = scratch("errors");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    assert_clean_failure(
        &shopflow(&["run", "--events", "/nonexistent/events.csv", "--out", out]),
        "cannot open /nonexistent/events.csv",
    );
    let headerless = write(&dir, "noheader.csv", &["1000,1,10,search,click,0,0"]);
    assert_clean_failure(
        &shopflow(&["run", "--events", headerless.to_str().unwrap(), "--out", out]),
        "first line must be the header",
    );
    let (events, catalog) = small_dataset(&dir);
    let events = events.to_str().unwrap();
    assert_clean_failure(&shopflow(&["run", "--events", events, "--bogus"]), "--bogus");
    assert_clean_failure(&shopflow(&["run", "--events", events, "--epoch-ms", "0"]), "--epoch-ms");
    assert_clean_failure(&shopflow(&["run", "--events", events, "--outputs", "item_stats,nope"]), "nope");
    assert_clean_failure(&shopflow(&["run", "--events", events, "--sink", "kafka"]), "kafka");
    assert_clean_failure(&shopflow(&["run", "--events", events, "-n", "2", "-p", "2"]), "--process");
    assert_clean_failure(&shopflow(&["run", "--events", events, "--catalog", dir.to_str().unwrap()]), "directory");
    // An output directory that cannot be created: a path below a regular file.
    let blocked = format!("{}/sub", catalog.to_str().unwrap());
    assert_clean_failure(&shopflow(&["run", "--events", events, "--out", &blocked]), "cannot create");
    assert_clean_failure(&shopflow(&["frobnicate"]), "frobnicate");
}

#[test]
fn outputs_flag_selects_and_sinks_agree() {
    let dir = scratch("sinks");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    let csv_out = dir.join("csv");
    run_on(events, catalog, &csv_out, &["--outputs", "item_stats,untagged"]);
    assert_eq!(written_files(&csv_out), ["item_stats.csv", "rejected.csv", "untagged.csv"]);

    let json_out = dir.join("json");
    run_on(events, catalog, &json_out, &["--outputs", "item_stats", "--sink", "jsonl"]);
    let csv_rows: Vec<String> =
        fs::read_to_string(csv_out.join("item_stats.csv")).unwrap().lines().skip(1).map(String::from).collect();
    let json_rows: Vec<String> = fs::read_to_string(json_out.join("item_stats.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            [
                "time",
                "diff",
                "item_id",
                "impressions",
                "clicks",
                "favs",
                "carts",
                "buys",
                "units",
                "gmv_cents",
                "uv",
                "buyers",
            ]
            .iter()
            .map(|k| v[k].to_string())
            .collect::<Vec<_>>()
            .join(",")
        })
        .collect();
    assert!(!csv_rows.is_empty());
    assert_eq!(csv_rows, json_rows);

    let o = run_on(events, catalog, &dir.join("so"), &["--outputs", "item_stats", "--sink", "stdout", "-q"]);
    let stdout_rows: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.strip_prefix("item_stats,").expect("prefixed").to_string())
        .collect();
    assert_eq!(csv_rows, stdout_rows);
}

#[test]
fn userbehavior_end_to_end() {
    let dir = scratch("ub");
    // an item's first row names its category: item 7 stays in category 3
    let ub = write(
        &dir,
        "UserBehavior.csv",
        &["1,7,3,pv,1000", "2,7,4,buy,1001", "1,8,4,cart,1002", "3,8,4,fav,1003", "bad,row", "2,8,4,pv,-1"],
    );
    let out = dir.join("out");
    let o = run_ub(&ub, &out, &["--epoch-ms", "10000"]);
    let cats = fs::read_to_string(out.join("category_stats.csv")).unwrap();
    assert_eq!(
        cats,
        "time,diff,category_id,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers\n\
         1000000,1,3,0,1,0,0,1,1,0,2,1\n\
         1000000,1,4,0,0,1,1,0,0,0,2,0\n"
    );
    let rejected = fs::read_to_string(out.join("rejected.csv")).unwrap();
    assert!(
        rejected.contains(",5,\"expected 5 fields, found 2\",") && rejected.contains(",6,timestamp: negative,"),
        "{rejected}"
    );
    assert!(stderr(&o).contains("rejected rows: 2"));
    // The arranged state once the rows are in: the four recent (item, user) interests
    // arranged by item and the two items' categories (tagging arranges no events, and the
    // catalog rows are not arranged whole: 13 updates, not 15); the same with two workers
    // (summed).
    let arranged = |o: &Output| {
        stderr(o).lines().find(|l| l.contains("arranged state at end of input:")).unwrap_or("").to_string()
    };
    let line = arranged(&o);
    assert!(
        line.contains("13 updates in 7 arrangements")
            && line.contains("RecentInterestByItem 4")
            && line.contains("ItemCategory 2"),
        "{line}"
    );
    assert_eq!(arranged(&run_ub(&ub, &dir.join("out2"), &["--epoch-ms", "10000", "-w", "2"])), line);
    assert_clean_failure(
        &shopflow(&[
            "run",
            "--format",
            "userbehavior",
            "--events",
            ub.to_str().unwrap(),
            "--catalog",
            ub.to_str().unwrap(),
        ]),
        "--catalog",
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `shopflow <args> -n 2 -p P -h HOSTFILE` as a cluster of two processes on this host (a
/// fresh hostfile `dir/<name>.hosts`), both of which must succeed; process 0's output.
fn run_two_processes(dir: &Path, name: &str, args: &[&str]) -> Output {
    let hostfile = dir.join(format!("{name}.hosts"));
    fs::write(&hostfile, format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port())).unwrap();
    let h = hostfile.to_str().unwrap();
    let with = |p: &'static str| [args, &["-n", "2", "-p", p, "-h", h]].concat();
    // Process 1 says little on stderr (a pipe it could fill would stall the cluster).
    let p1 = Command::new(BIN)
        .args(with("1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let p0 = Command::new(BIN).args(with("0")).output().unwrap();
    let p1 = p1.wait_with_output().unwrap();
    assert_eq!(p0.status.code(), Some(0), "process 0: {}", stderr(&p0));
    assert_eq!(p1.status.code(), Some(0), "process 1: {}", stderr(&p1));
    p0
}

#[test]
fn workers_and_processes_give_identical_files() {
    let dir = scratch("cluster");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    let base = ["run", "--events", events, "--catalog", catalog, "--epoch-ms", "5000", "--lateness-ms", "30000", "-q"];
    let out1 = dir.join("w1");
    run_ok(&[&base[..], &["--out", out1.to_str().unwrap(), "-w", "1"]].concat());
    let out2 = dir.join("w2");
    run_ok(&[&base[..], &["--out", out2.to_str().unwrap(), "-w", "2"]].concat());
    assert_same_dirs(&out1, &out2);
    let out3 = dir.join("w3b");
    run_ok(&[&base[..], &["--out", out3.to_str().unwrap(), "-w", "3", "--batch-lines", "50"]].concat());
    assert_same_dirs(&out1, &out3);

    for threads in ["1", "2"] {
        let out = dir.join(format!("p2w{threads}"));
        run_two_processes(
            &dir,
            &format!("w{threads}"),
            &[&base[..], &["--out", out.to_str().unwrap(), "-w", threads]].concat(),
        );
        assert_same_dirs(&out1, &out);
    }
}

/// The run summary's arranged state without its peak (peaks add up over processes,
/// which need not peak at the same moment).
fn arranged_totals(o: &Output) -> String {
    let err = stderr(o);
    let line = err.lines().find(|l| l.contains("arranged state at end of input:")).unwrap_or_else(|| panic!("{err}"));
    let (totals, rest) = line.split_once("; peak").unwrap();
    format!("{totals}; largest{}", rest.split_once("; largest").unwrap().1)
}

/// With two processes the summary's arranged state is the total of both, as with two
/// worker threads in one process.
#[test]
fn two_processes_report_the_arranged_state_of_both() {
    let dir = scratch("arranged-n2");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    let one = run_on(events, catalog, &dir.join("w2"), &["-w", "2"]);
    let out = dir.join("n2");
    let p0 = run_two_processes(
        &dir,
        "n2",
        &["run", "--events", events, "--catalog", catalog, "--out", out.to_str().unwrap()],
    );
    assert_eq!(arranged_totals(&p0), arranged_totals(&one));
    assert!(stderr(&p0).contains("(the sum of the 2 processes' peaks)"), "{}", stderr(&p0));
}

/// The "late" column of the summary's row for `file`.
fn late_rows(o: &Output, file: &Path) -> u64 {
    let err = stderr(o);
    let row =
        err.lines().find(|l| l.trim_start().starts_with(file.to_str().unwrap())).unwrap_or_else(|| panic!("{err}"));
    row.split_whitespace().nth(4).unwrap().parse().unwrap()
}

/// `shopflow sort`: a UserBehavior file grouped by user (as the public one is) comes out
/// in timestamp order, stable, rows without a timestamp last, in bounded memory (several
/// runs); read sorted, no row is late. A native file keeps its header first.
#[test]
fn sort_orders_a_file_grouped_by_user() {
    let dir = scratch("sort");
    // 60 users, each with their rows in time order; 60,000 rows (about 1.7 MB: more
    // than --memory-mb 1); timestamps repeat (ties).
    let mut lines: Vec<String> = Vec::new();
    for user in 0..60u64 {
        for i in 0..1000u64 {
            let ts = 1_511_539_200 + i * 60 + (user * 7919 + i) % 45;
            lines.push(format!("{user},{},{},pv,{ts}", 1000 + (user * 31 + i) % 500, (user + i) % 9));
        }
    }
    lines.insert(30_000, "7,8,9,pv,soon".to_string());
    let grouped = write(&dir, "grouped.csv", &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let sorted = dir.join("sorted.csv");
    let o = shopflow(&[
        "sort",
        "--format",
        "userbehavior",
        "--in",
        grouped.to_str().unwrap(),
        "--out",
        sorted.to_str().unwrap(),
        "--memory-mb",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("60001 lines (1 without a timestamp, placed last), 2 sorted runs merged"),
        "{}",
        stderr(&o)
    );
    let ts = |l: &String| l.rsplit(',').next().unwrap().parse::<u64>().unwrap_or(u64::MAX);
    let mut expected = lines.clone();
    expected.sort_by_key(ts);
    assert_eq!(fs::read_to_string(&sorted).unwrap(), expected.iter().map(|l| format!("{l}\n")).collect::<String>());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "temporary files are removed");
    assert!(late_rows(&run_ub(&grouped, &dir.join("o1"), &["--outputs", "item_stats"]), &grouped) > 50_000);
    assert_eq!(late_rows(&run_ub(&sorted, &dir.join("o2"), &["--outputs", "item_stats"]), &sorted), 0);

    let native = write(
        &dir,
        "native.csv",
        &[EVENTS_HEADER, "3000,1,2,s,click,0,0", "1000,1,2,s,click,0,0", "2000,2,2,s,click,0,0"],
    );
    let o = shopflow(&["sort", "--in", native.to_str().unwrap(), "--out", native.to_str().unwrap(), "-q"]);
    assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(0), ""));
    assert_eq!(
        fs::read_to_string(&native).unwrap(),
        format!("{EVENTS_HEADER}\n1000,1,2,s,click,0,0\n2000,2,2,s,click,0,0\n3000,1,2,s,click,0,0\n")
    );
    let out = dir.join("x.csv");
    assert_clean_failure(
        &shopflow(&["sort", "--in", grouped.to_str().unwrap(), "--out", out.to_str().unwrap()]),
        "first line must be the header",
    );
    assert!(!out.exists());
}

/// `--min-ts`/`--max-ts`: rows outside go to rejected.csv with the reason and do not move
/// the watermark (a malformed row's timestamp still does); the same with several workers.
/// Without them, a row far ahead makes the later rows late, with one warning naming its line.
#[test]
fn timestamps_outside_the_window_are_rejected_and_leave_the_watermark_alone() {
    let dir = scratch("ts-window");
    let mut lines = vec![EVENTS_HEADER.to_string()];
    for i in 0..3000u64 {
        lines.push(format!("{},{},{},s,click,0,0", 1_700_000_000_000 + i * 1000, i % 7, i % 11));
        match i {
            100 => lines.push("32503680000000,1,2,s,click,0,0".into()), // the year 3000
            200 => lines.push("1700000100,1,2,s,click,0,0".into()),     // seconds, not ms
            300 => lines.push("18446744073709551615,1,2,s,click,0,0".into()),
            _ => {}
        }
    }
    let events = write(&dir, "events.csv", &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let e = events.to_str().unwrap();
    let window = ["--min-ts", "1600000000000", "--max-ts", "4102444799999", "--outputs", "item_stats,user_stats"];
    let run = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let args = [&["run", "--events", e, "--out", out.to_str().unwrap()][..], &window, extra].concat();
        run_ok(&args)
    };
    let o = run("w1", &[]);
    assert_eq!(late_rows(&o, &events), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let rejected = fs::read_to_string(dir.join("w1/rejected.csv")).unwrap();
    for (line, ts) in [(103, "32503680000000"), (204, "1700000100"), (305, "18446744073709551615")] {
        let reason =
            format!("{e},{line},ts_ms: outside --min-ts/--max-ts ({ts} not in 1600000000000..=4102444799999),");
        assert!(rejected.contains(&reason), "{reason} in {rejected}");
    }
    assert_eq!(rejected.lines().count(), 4, "{rejected}");
    run("w3", &["-w", "3", "--batch-lines", "100"]);
    for f in ["item_stats.csv", "user_stats.csv", "rejected.csv"] {
        assert!(fs::read(dir.join("w1").join(f)).unwrap() == fs::read(dir.join("w3").join(f)).unwrap(), "{f}");
    }

    // No window: the row of the year 3000 moves the watermark; every later row is late.
    let o = run_ok(&["run", "--events", e, "--out", dir.join("open").to_str().unwrap(), "--outputs", "item_stats"]);
    let err = stderr(&o);
    assert!(late_rows(&o, &events) > 2800, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("events.csv:103: timestamp 32503680000000 (3000-01-01 00:00:00 UTC)"), "{err}");
    let quiet = ["--jump-warn-ms", "18446744073709551615", "-q", "--outputs", "item_stats"];
    let o = run_ok(&[&["run", "--events", e, "--out", dir.join("q").to_str().unwrap()][..], &quiet].concat());
    assert_eq!(stderr(&o), "");
    assert_clean_failure(
        &shopflow(&["run", "--events", e, "--min-ts", "5", "--max-ts", "4"]),
        "--min-ts 5 is after --max-ts 4",
    );
}

/// Negative or out-of-range numbers get a clear reason (not "unexpected argument"); a bare
/// `-h` (the hostfile, as in timely) points to `--help`.
#[test]
fn flags_say_what_a_value_must_be() {
    for (flag, value, needle) in [
        ("--speed", "-1", "must be a positive number, got `-1`"),
        ("--rate", "-5", "must be a positive number, got `-5`"),
        ("--ad-min-pctr", "-1", "must be a non-negative decimal of at most 1"),
        ("--ad-min-pctr", "1.5", "must be a non-negative decimal of at most 1"),
    ] {
        assert_clean_failure(&shopflow(&["run", flag, value]), needle);
    }
    for args in [&["run", "-h"][..], &["run", "--events", "x.csv", "-h"], &["run", "-h", "-w", "2"]] {
        let o = shopflow(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), "shopflow: -h is the hostfile (as in timely); use --help\n", "{args:?}");
    }
    let dir = scratch("pctr-one");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    run_on(events, catalog, &dir.join("out"), &["--ad-min-pctr", "1", "--outputs", "ads_curated", "-q"]);
}

/// Configuration and input that are valid but probably not what was meant get one
/// warning line each: a rules scene no event was read in (at the end of the run), a
/// base row with more buyers than orders (when loaded), events without a catalog when
/// an output needs one.
#[test]
fn likely_mistakes_are_warned_about() {
    let dir = scratch("warnings");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    let rules = write(
        &dir,
        "rules.toml",
        &["[scenes.home_feed]", "i2i = { top_n = 3 }", "[scenes.live]", "i2i = { top_n = 3 }"],
    );
    let base = write(
        &dir,
        "base.csv",
        &["cutoff_ms,item_id,sales_30d,units_30d,gmv_30d_cents,buyers_30d", "100000,1,2,2,500,1", "100000,2,1,1,100,3"],
    );
    let args = ["--rules", rules.to_str().unwrap(), "--base", base.to_str().unwrap(), "-q"];
    let o = run_on(events, catalog, &dir.join("out"), &args);
    let lines: Vec<String> = stderr(&o).lines().map(String::from).collect();
    assert_eq!(
        lines,
        [
            format!(
                "shopflow: warning: base {}:3: buyers_30d 3 is more than sales_30d 1 (every buyer placed an order)",
                base.display()
            ),
            format!(
                "shopflow: warning: rules {}: scene `live` had no events in this run: its recall outputs are empty",
                rules.display()
            ),
        ]
    );
    // The same with two processes' worth of workers: one warning, not one per worker.
    let o = run_on(events, catalog, &dir.join("out3"), &[&args[..], &["-w", "3"]].concat());
    assert_eq!(stderr(&o).lines().count(), 2, "{}", stderr(&o));

    let o = run_ok(&["run", "--events", events, "--out", dir.join("nocat").to_str().unwrap(), "-q"]);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("shopflow: warning: --events without --catalog:") && err.contains("category_stats, "),
        "{err}"
    );
    assert!(!err.contains("item_stats") && err.contains("ads_curated are empty"), "{err}");
    let o = run_ok(&[
        "run",
        "--events",
        events,
        "--out",
        dir.join("nocat2").to_str().unwrap(),
        "--outputs",
        "item_stats",
        "-q",
    ]);
    assert_eq!(stderr(&o), "", "no output needs the catalog");
}

/// On a terminal, the progress line shows the input frontier as a UTC date-time.
#[test]
fn progress_shows_the_input_frontier_as_a_date_time() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to give the run a terminal");
        return;
    }
    let dir = scratch("progress");
    let (events, catalog) = small_dataset(&dir);
    let out = dir.join("out");
    let command = format!(
        "{BIN} run --events {} --catalog {} --out {} --rate 250 --outputs item_stats",
        events.display(),
        catalog.display(),
        out.display()
    );
    let o = Command::new("script").args(["-qc", &command, "/dev/null"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    // small_dataset's rows are at 0..400 s: the frontier is a time on 1970-01-01.
    assert!(text.contains("input at 1970-01-01 00:0"), "{text}");
    assert!(!text.contains("/s, epoch "), "{text}");
}

/// The number after `word` in `text` ("… 37 bad rows …" → 37 for "bad rows").
fn count_before(text: &str, word: &str) -> u64 {
    let at = text.find(word).unwrap_or_else(|| panic!("{word:?} in {text}"));
    text[..at].trim_end().rsplit([' ', ',']).next().unwrap().parse().unwrap()
}

#[test]
fn generated_bad_rows_are_exactly_the_rejected_rows() {
    for format in ["native", "userbehavior"] {
        let dir = scratch(&format!("genbad-{format}"));
        let gen = shopflow(&[
            "gen",
            "--events",
            "20000",
            "--bad-rows",
            "0.01",
            "--seed",
            "3",
            "--format",
            format,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(gen.status.code(), Some(0), "{}", stderr(&gen));
        let said = stderr(&gen);
        let (bad, catalog_rows) = (count_before(&said, "bad rows"), count_before(&said, "catalog rows"));
        assert!(bad > 100, "{said}");
        let out = dir.join("out");
        let run = if format == "native" {
            let (events, catalog) = (dir.join("events.csv"), dir.join("catalog.csv"));
            run_on(events.to_str().unwrap(), catalog.to_str().unwrap(), &out, &[])
        } else {
            let ub = dir.join("UserBehavior.csv");
            run_ub(&ub, &out, &[])
        };
        let summary = stderr(&run);
        let rejected = csv::Reader::from_path(out.join("rejected.csv")).unwrap().records().count() as u64;
        assert_eq!(rejected, bad, "every generated bad row is rejected, nothing else: {summary}");
        let valid: u64 = summary
            .lines()
            .filter(|l| l.contains(".csv ") && !l.contains("rejected rows"))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(valid, 20_000 + catalog_rows, "{summary}");
    }
}

/// The key columns of each output (how many of its first columns): at any time at most one
/// row per key, so the upsert envelope can carry it.
const KEY_COLUMNS: &[(&str, usize)] = &[
    ("item_stats", 1),
    ("category_stats", 1),
    ("scene_stats", 1),
    ("user_stats", 1),
    ("category_top_items", 2),
    ("user_top_categories", 2),
    ("hourly_stats", 2),
    ("untagged", 1),
    ("item_display_stats", 1),
    ("item_rank_features", 1),
    ("category_hot_items", 2),
    ("ctr_cvr_prior", 0),
    ("scene_category_ctr_cvr", 2),
    ("scene_traffic", 1),
    ("rules", 2),
    ("recall_hot", 2),
    ("recall_i2i", 2),
    ("recall_user_signals", 1),
    ("ads_curated", 1),
];

/// `(time, second column, rest)` of each line after the header.
fn records(path: &Path) -> (String, Vec<(u64, String, Vec<String>)>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let rows = lines
        .map(|l| {
            let mut f = l.split(',').map(str::to_string);
            let time = f.next().unwrap().parse().unwrap();
            let op = f.next().unwrap();
            (time, op, f.collect())
        })
        .collect();
    (header, rows)
}

/// The upsert envelope carries the same states as the diff envelope at every time, for
/// every output (catalog moves and deletes, rules, several workers), with one record per
/// changed key; in JSON lines a delete names only the key.
#[test]
fn upsert_envelope_matches_the_diff_stream_at_every_time() {
    let (diff, upsert, jsonl) = (scratch("env-diff"), scratch("env-upsert"), scratch("env-jsonl"));
    run_ok(&["run", "--out", diff.to_str().unwrap(), "-w", "2"]);
    run_ok(&["run", "--out", upsert.to_str().unwrap(), "-w", "2", "--envelope", "upsert"]);
    run_ok(&["run", "--out", jsonl.to_str().unwrap(), "--envelope", "upsert", "--sink", "jsonl"]);
    // recall_user, merged from the csv files by `shopflow recall`, in each file's envelope.
    run_ok(&["recall", "--changes", "-q", "--out", diff.to_str().unwrap()]);
    run_ok(&["recall", "--changes", "-q", "--out", upsert.to_str().unwrap()]);
    let mut deletes = 0;
    for (name, key) in KEY_COLUMNS.iter().chain(&[("recall_user", 3)]) {
        let (dh, drows) = records(&diff.join(format!("{name}.csv")));
        let (uh, urows) = records(&upsert.join(format!("{name}.csv")));
        assert_eq!(uh, dh.replacen("time,diff,", "time,op,", 1), "{name}: header");
        assert!(urows.len() <= drows.len(), "{name}: more upsert records than diff rows");
        let mut times: Vec<u64> = drows.iter().chain(&urows).map(|r| r.0).collect();
        times.dedup();
        let (mut state, mut table) =
            (std::collections::BTreeMap::<Vec<String>, i64>::new(), std::collections::BTreeMap::new());
        let (mut d, mut u) = (drows.iter().peekable(), urows.iter().peekable());
        for t in times {
            while let Some((_, diff, row)) = d.next_if(|r| r.0 == t) {
                *state.entry(row.clone()).or_default() += diff.parse::<i64>().unwrap();
            }
            state.retain(|_, n| *n != 0);
            let mut seen = std::collections::BTreeSet::new();
            while let Some((_, op, row)) = u.next_if(|r| r.0 == t) {
                assert!(seen.insert(row[..*key].to_vec()), "{name}: two records for key {:?} at {t}", &row[..*key]);
                match op.as_str() {
                    "upsert" => table.insert(row[..*key].to_vec(), row.clone()),
                    "delete" => {
                        deletes += 1;
                        assert!(row[*key..].iter().all(String::is_empty), "{name}: delete with values {row:?}");
                        table.remove(&row[..*key])
                    }
                    other => panic!("{name}: op {other:?}"),
                };
            }
            assert!(state.values().all(|n| *n == 1), "{name}: diff state at {t} is not a set");
            let want: Vec<&Vec<String>> = state.keys().collect();
            let got: Vec<&Vec<String>> = table.values().collect();
            assert_eq!(got, want, "{name}: upsert and diff states differ at time {t}");
        }
        if *name == "recall_user" {
            continue;
        }
        let json = fs::read_to_string(jsonl.join(format!("{name}.jsonl"))).unwrap();
        assert_eq!(json.lines().count(), urows.len(), "{name}: JSON lines records");
        for line in json.lines().filter(|l| l.contains("\"op\":\"delete\"")) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v.as_object().unwrap().len(), 2 + key, "{name}: a delete names time, op and the key: {line}");
        }
    }
    assert!(deletes > 0, "the sample data deletes some keys");
}

/// `shopflow recall --user U --at T` prints U's lists as of T: the state of the merged
/// change stream at T, ranked by score desc, item asc, per scene; without the parts'
/// files it is a one-line error (exit 2).
#[test]
fn recall_prints_a_users_lists_as_of_a_time() {
    let out = scratch("recall");
    let dir = out.to_str().unwrap();
    run_ok(&["run", "--out", dir, "--outputs", "rules,recall_hot,recall_i2i,recall_user_signals", "-q"]);
    run_ok(&["recall", "--changes", "-q", "--out", dir]);
    let (_, rows) = records(&out.join("recall_user.csv"));
    // A time in the middle of the stream and the user with the longest lists then.
    let t = rows[rows.len() / 2].0;
    let mut state = std::collections::BTreeSet::new();
    for (_, diff, row) in rows.iter().filter(|r| r.0 <= t) {
        if diff == "1" {
            state.insert(row.clone());
        } else {
            assert!(state.remove(row), "retraction of a row not in the state: {row:?}");
        }
    }
    let mut per_user: std::collections::BTreeMap<&str, usize> = Default::default();
    state.iter().for_each(|r| *per_user.entry(r[1].as_str()).or_default() += 1);
    let (user, n) = per_user.iter().max_by_key(|(_, n)| **n).map(|(u, n)| (u.to_string(), *n)).unwrap();
    assert!(n >= 2, "no user with two rows at {t}");
    let o = run_ok(&["recall", "--out", dir, "--user", &user, "--at", &t.to_string()]);
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("scene,user_id,rank,item_id,score,strategy"));
    let printed: Vec<Vec<String>> = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(printed.len(), n, "rows printed for user {user} at {t}:\n{text}");
    for w in printed.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a[0] == b[0] {
            let rank: u32 = b[2].parse().unwrap();
            assert_eq!(rank, a[2].parse::<u32>().unwrap() + 1, "ranks count up: {text}");
            let (sa, sb): (i64, i64) = (a[4].parse().unwrap(), b[4].parse().unwrap());
            assert!(sa > sb || (sa == sb && a[3].parse::<u64>().unwrap() < b[3].parse().unwrap()), "order: {text}");
        } else {
            assert_eq!(b[2], "1", "a scene's list starts at rank 1: {text}");
        }
    }
    let got: std::collections::BTreeSet<Vec<String>> = printed
        .into_iter()
        .map(|r| vec![r[0].clone(), r[1].clone(), r[3].clone(), r[4].clone(), r[5].clone()])
        .collect();
    let want: std::collections::BTreeSet<Vec<String>> = state.into_iter().filter(|r| r[1] == user).collect();
    assert_eq!(got, want, "user {user} at {t}");
    // Without the parts: one line, exit 2.
    let empty = scratch("recall-empty");
    let o = shopflow(&["recall", "--out", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("recall_user_signals.csv not found"), "{}", stderr(&o));
}

/// `shopflow run --sink stdout | head -2`: the reader closing standard output ends the
/// run quietly with exit code 0 (as a CLI tool does), not with "Broken pipe".
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(["run", "--sink", "stdout", "--outputs", "item_stats", "-w", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        assert!(lines.next().unwrap().unwrap().starts_with("item_stats,"));
    }
    drop(lines);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stderr(&o), "", "nothing on stderr");
}

/// A write that fails (here: the file-size limit) ends the run at the next epoch with one
/// line and exit code 2 — also under `--follow`, which otherwise runs until stopped.
#[test]
fn a_failing_sink_ends_a_followed_run_at_once() {
    let dir = scratch("sink-fails");
    let out = dir.join("out");
    let started = std::time::Instant::now();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -f 64; exec timeout 60 {BIN} run --follow -q --out {}", out.display()))
        .output()
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "the run did not end by itself");
    assert_clean_failure(&o, "File too large");
    assert!(stderr(&o).contains(&out.display().to_string()), "names the path: {}", stderr(&o));
    assert_eq!(manifest(&out)["status"], "failed");
}

/// A profile's rows: `(worker, operator name, busy ms, schedules)`.
fn profile_rows(path: &Path) -> Vec<(usize, String, f64, u64)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("worker,operator,name,address,busy_ms,schedules\n"), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].parse().unwrap(), r[2].to_string(), r[4].parse().unwrap(), r[5].parse().unwrap())
        })
        .collect()
}

/// `--profile FILE`: every worker's operators with their busy time, the busiest first; the
/// outputs are what a run without it writes; each process of a cluster writes its own
/// workers; a path that cannot be written is a one-line error.
#[test]
fn profile_lists_each_workers_operators_busiest_first() {
    let dir = scratch("profile");
    let (events, catalog) = small_dataset(&dir);
    let (events, catalog) = (events.to_str().unwrap(), catalog.to_str().unwrap());
    let plain = dir.join("plain");
    run_on(events, catalog, &plain, &["-w", "2", "-q"]);
    let profiled = dir.join("profiled");
    let file = dir.join("profile.csv");
    run_on(events, catalog, &profiled, &["-w", "2", "-q", "--profile", file.to_str().unwrap()]);
    assert_same_dirs(&plain, &profiled);
    let rows = profile_rows(&file);
    for w in 0..2 {
        let names: Vec<&str> = rows.iter().filter(|r| r.0 == w).map(|r| r.1.as_str()).collect();
        for name in ["TagByItem", "ByUser", "item_stats"] {
            assert!(names.contains(&name), "worker {w} lacks {name}: {names:?}");
        }
    }
    assert!(rows.windows(2).all(|p| p[0].2 >= p[1].2), "busiest first: {rows:?}");
    assert!(rows.iter().all(|r| r.3 > 0 && r.2 >= 0.0));
    assert!(rows[0].2 > 0.0, "{rows:?}");

    // Two processes of one worker each: FILE.0 and FILE.1, each with its own worker.
    let out = dir.join("n2");
    let file = dir.join("cluster.csv");
    let (o, f) = (out.to_str().unwrap(), file.to_str().unwrap());
    run_two_processes(&dir, "n2", &["run", "--events", events, "--catalog", catalog, "--out", o, "--profile", f, "-q"]);
    assert!(!file.exists(), "a cluster writes FILE.<process>, not FILE");
    for (p, worker) in [("0", 0), ("1", 1)] {
        let rows = profile_rows(&dir.join(format!("cluster.csv.{p}")));
        assert!(rows.iter().all(|r| r.0 == worker), "process {p} writes its own worker {worker}: {rows:?}");
        assert!(rows.iter().any(|r| r.1 == "TagByItem"), "process {p}: {rows:?}");
    }

    let o = shopflow(&[
        "run",
        "--events",
        events,
        "--catalog",
        catalog,
        "--out",
        dir.join("bad").to_str().unwrap(),
        "--profile",
        dir.join("no/such/dir/p.csv").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "cannot write the profile");
}
