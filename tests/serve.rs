//! `shopflow run --serve`: the HTTP API against the independent references
//! (tests/common: the eight platform outputs and the case outputs), and its live behaviour.
//!
//! - `lookups_equal_the_reference_at_many_times`: a generated case (catalog churn, late
//!   rows, rules), -w2; once the input is read, every output listed (in pages) `?as_of=`
//!   many times equals the reference state at that time; users' recall lists (merged at
//!   read time) equal the reference `recall_user`; items' smoothed CTR/CVR equal the
//!   contract's formula over the reference counters and prior; a batch equals single
//!   lookups; the SSE stream of an output, summed, equals its state, in both envelopes;
//! - `live_run_serves_consistent_times`: under `--follow` with rows appended and a rules
//!   edit: every response's values belong to its one `as_of` (two outputs that count the
//!   same thing agree in every response), `as_of` advances, lookups equal the files the
//!   run wrote up to `as_of`; a subscriber that does not read is disconnected with an
//!   `error` event while the run goes on; `/metrics` and `/readyz`;
//! - `bad_requests_get_json_errors`: 400, 404, 410, 413 and 503, each a JSON error.
//!
//! Run: `cargo test --release --test serve`

mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cases::*;
use common::*;
use serde_json::Value;
use support::server::Server;
use support::{finish, scratch, BIN};

/// Every row of output `name` as of `at`, read in pages of `page` rows, as CSV fields.
fn state(server: &Server, name: &str, columns: &[&str], at: u64, page: usize) -> OutState {
    let rows = server.rows(name, at, page).unwrap_or_else(|body| panic!("{name} as of {at}: {body}"));
    rows.iter().map(|row| csv_fields(row, columns)).collect()
}

/// A JSON row as the CSV sink writes its fields: fixed-point numbers with six decimals,
/// an empty field for null.
fn csv_fields(row: &Value, columns: &[&str]) -> Vec<String> {
    columns
        .iter()
        .map(|c| match &row[*c] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_f64() => format!("{:.6}", n.as_f64().unwrap()),
            Value::Number(n) => n.to_string(),
            other => panic!("column {c}: unexpected {other}"),
        })
        .collect()
}

fn columns_of(list: &[(&'static str, &'static str)], name: &str) -> Vec<&'static str> {
    list.iter().find(|(n, _)| *n == name).map(|(_, c)| c.split(',').collect()).unwrap()
}

/// The reference rules of the generated case: every strategy, several scenes.
fn rules() -> Rules {
    let mut r = Rules::new();
    r.insert(
        "home".into(),
        SceneRules {
            hot: Some(HotRule::new(3, 1, 3, 5, 10)),
            i2i: Some(I2iRule { top_n: 4 }),
            user: Some(UserRule::new(5, 1, 2, true)),
        },
    );
    r.insert(
        "search".into(),
        SceneRules {
            hot: Some(HotRule::new(5, 1, 1, 1, 1)),
            i2i: Some(I2iRule { top_n: 3 }),
            user: Some(UserRule::new(4, 1, 3, false)),
        },
    );
    r.insert("x".into(), SceneRules { hot: None, i2i: None, user: Some(UserRule::new(6, 1, 1, true)) });
    r
}

/// Up to `n` times spread evenly over `times`, and its last.
fn spread(times: &BTreeSet<u64>, n: usize) -> Vec<u64> {
    let all: Vec<u64> = times.iter().copied().collect();
    let step = (all.len() / n).max(1);
    let mut picked: Vec<u64> = all.iter().copied().step_by(step).collect();
    picked.extend(all.last());
    picked.dedup();
    picked
}

#[test]
fn lookups_equal_the_reference_at_many_times() {
    let dir = scratch("reference");
    let cfg = GenConfig { n_scenes: 4, ..GenConfig::native(4) };
    let gen = generate(&cfg);
    let mut run = RunSpec::write(&gen, &dir.join("in"), cfg.epoch_ms, cfg.lateness_ms);
    let mut spec = CaseSpec::new(run.clone(), &dir.join("in"), Some(&rules()));
    spec.ads = AdParams { refresh_ms: 600_000, min_impressions: 2, min_pctr_micro: 1_000, set_size: 5 };
    let mut cmd = Command::new(BIN);
    cmd.arg("run");
    for e in &run.events {
        cmd.arg("--events").arg(e);
    }
    cmd.arg("--catalog").arg(run.catalog.as_ref().unwrap());
    cmd.args(["--epoch-ms", &run.epoch_ms.to_string(), "--lateness-ms", &run.lateness_ms.to_string()]);
    // Every output (no --outputs): the platform ones and the case ones, with the case
    // flags of the spec (rules, ads).
    cmd.args(spec.args().iter().skip(2)).args(["--out"]).arg(dir.join("out")).args([
        "-w",
        "2",
        "--serve-retention",
        "100000",
    ]);
    let server = Server::start(cmd);
    server.wait_line("shopflow: the run is complete", Duration::from_secs(120));
    run.extra_args.clear();
    let platform = Reference::compute(&run);
    let cases = CaseRef::compute(&spec);

    let mut times: BTreeSet<u64> = platform.times.iter().copied().collect();
    times.extend(cases.candidate_times().into_iter().filter(|t| *t >= platform.times[0]));
    let checked = spread(&times, 12);
    let mut failures = Vec::new();
    let mut nonempty: BTreeMap<&str, usize> = BTreeMap::new();
    for &t in &checked {
        // The eight platform outputs: the reference's state at its latest time <= t.
        let k = platform.times.partition_point(|&x| x <= t);
        for (o, (name, cols)) in OUTPUTS.iter().enumerate() {
            let want = if k == 0 { OutState::new() } else { platform.states[k - 1][o].clone() };
            let cols: Vec<&str> = cols.split(',').collect();
            let got = state(&server, name, &cols, t, 7);
            *nonempty.entry(name).or_default() += !want.is_empty() as usize;
            if got != want {
                failures.push(format!("{name} at {t}:\n{}", state_difference(&cols.join(","), &want, &got)));
            }
        }
        for (name, cols) in CASE_OUTPUTS.iter().filter(|(n, _)| *n != "recall_user") {
            let want = cases.state(name, t);
            let cols: Vec<&str> = cols.split(',').collect();
            let got = state(&server, name, &cols, t, 100);
            *nonempty.entry(name).or_default() += !want.is_empty() as usize;
            if got != want {
                failures.push(format!("{name} at {t}:\n{}", state_difference(&cols.join(","), &want, &got)));
            }
        }
        // recall_user: merged by the server from the parts, per user.
        let want = cases.state("recall_user", t);
        *nonempty.entry("recall_user").or_default() += !want.is_empty() as usize;
        let users: BTreeSet<String> = want.iter().map(|r| r[1].clone()).collect();
        let mut got = OutState::new();
        for user in &users {
            let body = server.ok(&format!("/v1/users/{user}?as_of={t}"));
            for (scene, list) in body["recall"].as_object().unwrap() {
                for c in list.as_array().unwrap() {
                    let mut row = vec![scene.clone(), user.clone()];
                    row.extend(csv_fields(c, &["item_id", "score", "strategy"]));
                    got.insert(row);
                }
            }
        }
        if got != want {
            let cols = columns_of(&CASE_OUTPUTS, "recall_user").join(",");
            failures.push(format!("recall_user at {t}:\n{}", state_difference(&cols, &want, &got)));
        }
        // Items: CTR/CVR smoothed at read time with the prior at t (the contract's formula).
        let prior = cases.state("ctr_cvr_prior", t).into_iter().next();
        // The counters: the reference's item_stats (impressions, clicks, …, buys).
        let stats = if k == 0 { OutState::new() } else { platform.states[k - 1][0].clone() };
        let counters: Vec<Vec<String>> =
            stats.iter().map(|r| vec![r[0].clone(), r[1].clone(), r[2].clone(), r[5].clone()]).collect();
        let ids: Vec<&String> = counters.iter().map(|r| &r[0]).take(15).collect();
        for row in &counters {
            if !ids.contains(&&row[0]) {
                continue;
            }
            let n = |s: &String| s.parse::<u128>().unwrap();
            let (i, c, b) = (n(&row[1]), n(&row[2]), n(&row[3]));
            let (want_ctr, want_cvr) = match &prior {
                Some(p) => {
                    let (gi, gc, gb) = (n(&p[0]), n(&p[1]), n(&p[2]));
                    let ctr = (gi > 0).then(|| fixed_micro(c * gi + 100 * gc, (i + 100) * gi)).flatten();
                    let cvr = (gc > 0).then(|| fixed_micro(b * gc + 100 * gb, (c + 100) * gc)).flatten();
                    (ctr.map(micro_text).unwrap_or_default(), cvr.map(micro_text).unwrap_or_default())
                }
                None => (String::new(), String::new()),
            };
            let body = server.ok(&format!("/v1/items/{}?as_of={t}", row[0]));
            let got = csv_fields(&body["item"]["ctr_cvr"], &["impressions", "clicks", "buys", "ctr", "cvr"]);
            let want = vec![row[1].clone(), row[2].clone(), row[3].clone(), want_ctr, want_cvr];
            if got != want {
                failures.push(format!("item {} at {t}: ctr_cvr {got:?}, expected {want:?}", row[0]));
            }
        }
        // Category ranks: an item's rank on its category's top list (its category the
        // served catalog row's), the reference's category_top_items at t; null when off it.
        let top = if k == 0 { OutState::new() } else { platform.states[k - 1][4].clone() };
        let on_lists: Vec<&String> = top.iter().map(|r| &r[2]).take(20).collect();
        for id in on_lists.iter().chain(ids.iter()) {
            let body = server.ok(&format!("/v1/items/{id}?as_of={t}"));
            let category = body["item"]["catalog"]["category_id"].to_string();
            let want = match top.iter().find(|r| r[0] == category && &r[2] == *id) {
                Some(r) => {
                    serde_json::json!({"category_id": r[0].parse::<u64>().unwrap(), "rank": r[1].parse::<i64>().unwrap()})
                }
                None => Value::Null,
            };
            *nonempty.entry("category_rank").or_default() += !want.is_null() as usize;
            if body["item"]["category_rank"] != want {
                failures.push(format!(
                    "item {id} at {t}: category_rank {}, expected {want}",
                    body["item"]["category_rank"]
                ));
            }
        }
        // A batch is the single lookups, as of one time.
        let list: Vec<String> = ids.iter().map(|s| s.to_string()).chain(["123456789".into()]).collect();
        let (status, batch) =
            server.post(&format!("/v1/items:batch?as_of={t}"), &format!("{{\"ids\":[{}]}}", list.join(",")));
        assert_eq!(status, 200, "{batch}");
        for (id, item) in list.iter().zip(batch["items"].as_array().unwrap()) {
            let (status, single) = server.get(&format!("/v1/items/{id}?as_of={t}"));
            match status {
                200 => assert_eq!(item, &single["item"], "item {id} at {t}: batch and single lookup differ"),
                _ => assert!(item.is_null(), "item {id} at {t}: unknown alone, {item} in a batch"),
            }
        }
    }
    assert!(failures.is_empty(), "{} difference(s):\n{}", failures.len(), failures.join("\n\n"));
    // Not vacuous: every output had rows at some checked time.
    for (name, n) in &nonempty {
        assert!(*n > 0, "{name} is empty at every checked time (test too weak): {nonempty:?}");
    }

    // Subscriptions: every change from the start, summed (diff) or applied (upsert),
    // equals the state at the end.
    let end = *checked.last().unwrap();
    for (name, cols) in [("item_stats", OUTPUTS[0].1), ("category_hot_items", CASE_OUTPUTS[2].1)] {
        let cols: Vec<&str> = cols.split(',').collect();
        let want = state(&server, name, &cols, end, 1000);
        let key = server.ok("/v1/outputs")["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .map(|o| o["key_columns"].as_array().unwrap().len())
            .unwrap();
        for envelope in ["diff", "upsert"] {
            let events = read_events(&server.base, &format!("/v1/outputs/{name}/changes?since=0&envelope={envelope}"));
            let mut diffs: BTreeMap<Vec<String>, i64> = BTreeMap::new();
            let mut upserts: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
            let mut last = 0;
            // A progress event promises every change before it has come.
            let mut complete = 0;
            for (kind, data) in &events {
                if kind == "progress" {
                    complete = data["complete"].as_u64().unwrap();
                    continue;
                }
                assert_eq!(kind, "changes", "{name}: unexpected event {kind}: {data}");
                let time = data["time"].as_u64().unwrap();
                assert!(time >= complete, "{name}: changes at {time} after progress {complete}");
                assert!(time > last || last == 0, "{name}: times not ascending");
                last = time;
                for c in data["changes"].as_array().unwrap() {
                    match envelope {
                        "diff" => {
                            *diffs.entry(csv_fields(&c["row"], &cols)).or_default() += c["diff"].as_i64().unwrap()
                        }
                        _ if c["op"] == "upsert" => {
                            let row = csv_fields(&c["row"], &cols);
                            upserts.insert(row[..key].to_vec(), row);
                        }
                        _ => {
                            upserts.remove(&csv_fields(&c["key"], &cols[..key]));
                        }
                    }
                }
            }
            assert_eq!(complete, u64::MAX, "{name}: the stream of a finished run ends complete");
            let got: OutState = match envelope {
                "diff" => diffs
                    .into_iter()
                    .filter(|(_, d)| *d != 0)
                    .map(|(r, d)| {
                        assert_eq!(d, 1, "{name}: summed diff {d} for {r:?}");
                        r
                    })
                    .collect(),
                _ => upserts.into_values().collect(),
            };
            assert_eq!(got, want, "{name}: the {envelope} subscription summed differs from the lookup state");
        }
    }
    server.stop();
}

/// The events of an SSE response that ends (a finished run: everything is complete)
/// until a `progress` event for the end has come after the changes; `(event, data)`.
fn read_events(base: &str, path: &str) -> Vec<(String, Value)> {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut events = Vec::new();
    let mut event = String::new();
    let mut line = String::new();
    // Chunked transfer: chunk-size lines are skipped, as are blank and comment lines.
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return events,
            Ok(_) => {}
        }
        let l = line.trim_end();
        if let Some(e) = l.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = l.strip_prefix("data: ") {
            events.push((event.clone(), serde_json::from_str(d).unwrap()));
        }
    }
}

/// The state of output `name` in the run's CSV file up to `at`.
fn file_state(out: &Path, name: &str, columns: &str, at: u64) -> OutState {
    let stream = parse_change_stream_with(&out.join(format!("{name}.csv")), columns, false).unwrap();
    stream_state_at(&stream, at)
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(String::from).collect()
}

#[test]
fn live_run_serves_consistent_times() {
    let dir = scratch("live");
    let events: Vec<String> = lines_of(Path::new("data/events.csv"));
    let (head, tail) = events.split_at(events.len() / 3);
    let file = dir.join("events.csv");
    std::fs::write(&file, head.join("\n") + "\n").unwrap();
    let rules: PathBuf = dir.join("rules.toml");
    std::fs::copy("data/recall_rules.toml", &rules).unwrap();
    let out = dir.join("out");
    let mut cmd = support::run_command(&file, Path::new("data/catalog.csv"), &out);
    cmd.args(["--follow", "--rules"]).arg(&rules).args(["-w", "2", "--serve-retention", "100000"]);
    let server = Server::start(cmd);
    let ready = Instant::now();
    while server.get("/readyz").0 != 200 {
        assert!(ready.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = server.ok("/readyz")["as_of"].as_u64().unwrap();

    // A subscriber that never reads: the run must go on without it.
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(slow, "GET /v1/outputs/item_stats/changes HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();

    // Append the rest in a few slices, with a rules edit in between; keep the responses
    // meanwhile: each must hold two outputs as of its one `as_of` (checked against the
    // files below).
    let busy = ["45", "541", "510"];
    let mut seen_times = BTreeSet::new();
    let mut responses: Vec<(u64, serde_json::Value)> = Vec::new();
    let mut appended = head.len();
    for (k, slice) in tail.chunks(tail.len() / 3 + 1).enumerate() {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all((slice.join("\n") + "\n").as_bytes()).unwrap();
        drop(f);
        appended += slice.len();
        if k == 1 {
            let text = std::fs::read_to_string(&rules).unwrap();
            std::fs::write(&rules, text + "\n[scenes.detail.hot]\ntop_n = 2\nclick = 1\nfav = 1\ncart = 1\nbuy = 1\n")
                .unwrap();
        }
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            for id in busy {
                let (status, body) = server.get(&format!("/v1/items/{id}"));
                if status != 200 {
                    continue;
                }
                let as_of = body["as_of"].as_u64().unwrap();
                seen_times.insert(as_of);
                responses.push((as_of, body["item"].clone()));
            }
        }
    }
    assert_eq!(appended, events.len());
    // Everything appended is read: the input frontier reaches the last event's epoch.
    let last_ts: u64 = events.last().unwrap().split(',').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut at = first;
    while Instant::now() < deadline {
        at = server.ok("/readyz")["as_of"].as_u64().unwrap();
        let rules_rows = server.ok("/v1/outputs/rules?limit=1000")["rows"].as_array().unwrap().len();
        if at + 120_000 >= last_ts && rules_rows == 8 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(at > first && seen_times.len() > 1, "as_of did not advance: {first} → {at}, seen {seen_times:?}");
    let rules_now = server.ok(&format!("/v1/outputs/rules?as_of={at}&limit=1000"));
    assert!(
        rules_now["rows"].as_array().unwrap().iter().any(|r| r["scene"] == "detail" && r["strategy"] == "hot"),
        "the rules edit is not served: {rules_now}"
    );
    // Lookups equal the files the run wrote, as of the same time.
    for (name, cols) in OUTPUTS.iter().chain(CASE_OUTPUTS.iter().filter(|(n, _)| *n != "recall_user")) {
        let want = file_state(&out, name, cols, at);
        let columns: Vec<&str> = cols.split(',').collect();
        let got = state(&server, name, &columns, at, 1000);
        assert_eq!(
            got,
            want,
            "{name} at {at}: served state differs from the file:\n{}",
            state_difference(cols, &want, &got)
        );
    }

    // Each response's all-time stats and 1-hour rank features are the files' rows as of its
    // `as_of`: two outputs read at one time, while the run moved on.
    for (name, part) in [("item_stats", "stats"), ("item_rank_features", "rank_features")] {
        let mut all = OUTPUTS.iter().chain(CASE_OUTPUTS.iter());
        let cols: Vec<&str> = all.find(|(n, _)| *n == name).map(|(_, c)| c.split(',').collect()).unwrap();
        let mut files: BTreeMap<u64, OutState> = BTreeMap::new();
        for (as_of, item) in &responses {
            let state = files.entry(*as_of).or_insert_with(|| file_state(&out, name, &cols.join(","), *as_of));
            let id = item["item_id"].to_string();
            let want = state.iter().find(|r| r[0] == id);
            let got = (!item[part].is_null()).then(|| csv_fields(&item[part], &cols));
            assert_eq!(got.as_ref(), want, "item {id} as of {as_of}: {part} is not {name} at that time: {item}");
        }
    }

    // The slow subscriber was dropped with a clear final event, and counted.
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut text = Vec::new();
    let _ = slow.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("event: error") && text.contains("fell") && text.contains("behind"),
        "no final error event for the slow subscriber (read {} bytes)",
        text.len()
    );
    let metrics =
        server.agent.get(format!("{}/metrics", server.base)).call().unwrap().body_mut().read_to_string().unwrap();
    for name in [
        "shopflow_subscribers_dropped_total 1",
        "shopflow_input_rows_total{file=",
        "shopflow_output_changes_total{output=\"item_stats\"}",
        "shopflow_http_requests_total{route=\"/v1/items/{id}\",status=\"200\"}",
        "shopflow_http_request_duration_seconds_bucket{route=\"/v1/items/{id}\"",
        "shopflow_resident_bytes",
        "shopflow_output_lag_event_ms",
        "shopflow_epochs_total",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert_eq!(server.ok("/healthz")["status"], "ok");
    server.stop();
}

#[test]
fn bad_requests_get_json_errors() {
    let dir = scratch("errors");
    // Nothing to read yet under --follow: not ready, lookups answer 503.
    let file = dir.join("events.csv");
    std::fs::write(&file, lines_of(Path::new("data/events.csv"))[0].clone() + "\n").unwrap();
    let mut cmd = support::run_command(&file, Path::new("data/catalog.csv"), &dir.join("out"));
    cmd.args(["--follow", "--serve-retention", "3"]);
    let server = Server::start(cmd);
    assert_eq!(server.get("/readyz").0, 503);
    assert_eq!(server.get("/v1/items/1").0, 503);
    let events = lines_of(Path::new("data/events.csv"));
    // Appended, never rewritten: a followed file rewritten in place is an error by design.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all((events[1..4000].join("\n") + "\n").as_bytes()).unwrap();
    drop(f);
    let ready = Instant::now();
    while server.get("/readyz").0 != 200 {
        assert!(ready.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cases: [(&str, u16); 14] = [
        ("/v1/items/abc", 400),
        ("/v1/items/1?as_of=soon", 400),
        ("/v1/items/1?as_of=99999999999999999", 400),
        ("/v1/users/1?k=0", 400),
        ("/v1/users/1?k=1001", 400),
        ("/v1/users/1?scene=", 400),
        ("/v1/outputs/item_stats?key=1,2", 400),
        ("/v1/outputs/item_stats?limit=5000", 400),
        ("/v1/outputs/item_stats/changes?envelope=xml", 400),
        ("/v1/outputs/nope", 404),
        ("/v1/items/987654321", 404),
        ("/v1/outputs/item_stats?key=987654321", 404),
        ("/no/such/route", 404),
        ("/v1/items/1?as_of=1", 410),
    ];
    for (path, want) in cases {
        let (status, body) = server.get(path);
        assert_eq!(status, want, "GET {path}: {body}");
        assert!(body["error"].is_string(), "GET {path}: no JSON error: {body}");
    }
    let (status, body) = server.get("/v1/items/1?as_of=1");
    assert!(body["oldest_as_of"].is_u64(), "410 without oldest_as_of: {body}");
    assert_eq!(status, 410);
    let ids: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    for (body, want) in [
        (format!("{{\"ids\":[{}]}}", ids.join(",")), 413),
        (format!("{{\"ids\":[{}]}}", ids[..1001].join(",")), 400),
        ("{\"ids\":\"x\"}".to_string(), 400),
        ("not json".to_string(), 400),
    ] {
        let (status, answer) = server.post("/v1/items:batch", &body);
        assert_eq!(status, want, "POST of {} bytes: {answer}", body.len());
        assert!(answer["error"].is_string(), "no JSON error: {answer}");
    }
    // The server still answers.
    assert_eq!(server.get("/healthz").0, 200);
    server.stop();
}

/// Two processes: process 0 serves every output (the sinks all write there), and the
/// served state equals the files, which equal a one-process run's.
#[test]
fn two_processes_serve_from_process_0() {
    let dir = scratch("processes");
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1:{}\n127.0.0.1:{}\n", port(), port())).unwrap();
    let out = dir.join("out");
    let process = |p: &str| {
        let mut cmd = support::run_command("data/events.csv", Path::new("data/catalog.csv"), &out);
        cmd.args(["-n", "2", "-p", p, "-h"]).arg(&hosts).args(["-w", "2", "-q"]);
        cmd
    };
    let mut p1 = process("1");
    p1.args(["--serve", "127.0.0.1:0"]).stdout(Stdio::null()).stderr(Stdio::null());
    let p1 = p1.spawn().unwrap();
    let server = Server::start(process("0"));
    server.wait_line("shopflow: the run is complete", Duration::from_secs(120));
    let (status, _) = finish(p1, Duration::from_secs(60));
    assert!(status.success(), "process 1 exited with {status}");
    let at = server.ok("/readyz")["as_of"].as_u64().unwrap();
    for (name, cols) in OUTPUTS.iter().chain(CASE_OUTPUTS.iter().filter(|(n, _)| *n != "recall_user")) {
        let want = file_state(&out, name, cols, at);
        let columns: Vec<&str> = cols.split(',').collect();
        let got = state(&server, name, &columns, at, 1000);
        assert_eq!(got, want, "{name} at {at}:\n{}", state_difference(cols, &want, &got));
    }
    server.stop();
}
