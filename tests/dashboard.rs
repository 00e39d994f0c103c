//! The live dashboard at `/`, in a real headless Chromium (tests/support/browser.rs):
//! under `shopflow run --follow --serve`, the page loads from the binary's own assets, each
//! panel shows exactly what the API answers as of the time the panel names (top items,
//! top categories, scene shares, the ad set), and the panels move on while rows are
//! appended to the followed file; `/v1/status` (what the charts plot) has its fields. A
//! screenshot is taken and checked to be a PNG.
//!
//! Run: `cargo test --release --test dashboard` (`SHOPFLOW_SCREENSHOT=path.png` keeps the
//! screenshot).

mod support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser::Browser;
use support::scratch;
use support::server::Server;

/// What the page shows: per panel its `as of` and its table's cells; the input rows.
const SNAPSHOT: &str = r##"
const panel = (id) => {
  const s = document.querySelector(id);
  return { asOf: s.dataset.asOf ?? null,
           rows: [...s.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)) };
};
return { items: panel("#top-items"), categories: panel("#top-categories"), scenes: panel("#scene-traffic"),
         ads: panel("#ads"), input: document.querySelector("#input-rows").dataset.value ?? null,
         refresh: document.querySelector("#ads-refresh").textContent };
"##;

/// The panels: the element's key in the snapshot, and the output it shows.
const PANELS: [(&str, &str); 4] = [
    ("items", "category_top_items"),
    ("categories", "category_stats"),
    ("scenes", "scene_traffic"),
    ("ads", "ads_curated"),
];

fn money(v: &Value) -> String {
    let cents = v.as_i64().unwrap();
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, (cents / 100).abs(), (cents % 100).abs())
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn share(v: &Value) -> String {
    if v.is_null() {
        "–".into()
    } else {
        format!("{:.2} %", num(v) * 100.0)
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The cells a panel must show for `rows` of its output, by the page's documented order.
fn expected(panel: &str, mut rows: Vec<Value>) -> Vec<Vec<String>> {
    let by = |r: &Value, c: &str| r[c].as_i64().unwrap_or(0);
    match panel {
        "items" => {
            rows.sort_by_key(|r| (-by(r, "buys"), -by(r, "gmv_cents"), by(r, "item_id")));
            rows.iter()
                .take(10)
                .map(|r| {
                    vec![plain(&r["item_id"]), plain(&r["category_id"]), plain(&r["buys"]), money(&r["gmv_cents"])]
                })
                .collect()
        }
        "categories" => {
            rows.sort_by_key(|r| (-by(r, "gmv_cents"), by(r, "category_id")));
            rows.iter()
                .take(10)
                .map(|r| {
                    ["category_id", "impressions", "clicks", "buys"]
                        .iter()
                        .map(|c| plain(&r[*c]))
                        .chain([money(&r["gmv_cents"]), plain(&r["uv"])])
                        .collect()
                })
                .collect()
        }
        "scenes" => {
            rows.sort_by(|a, b| {
                num(&b["impressions_share"])
                    .total_cmp(&num(&a["impressions_share"]))
                    .then(plain(&a["scene"]).cmp(&plain(&b["scene"])))
            });
            rows.iter()
                .map(|r| {
                    vec![
                        plain(&r["scene"]),
                        share(&r["impressions_share"]),
                        share(&r["clicks_share"]),
                        share(&r["gmv_share"]),
                    ]
                })
                .collect()
        }
        _ => {
            rows.sort_by_key(|r| by(r, "rank"));
            rows.iter()
                .map(|r| {
                    vec![
                        plain(&r["rank"]),
                        plain(&r["item_id"]),
                        plain(&r["category_id"]),
                        money(&r["bid_cents"]),
                        plain(&r["pctr"]),
                        plain(&r["ecpm"]),
                    ]
                })
                .collect()
        }
    }
}

/// Cells equal: the same text; a share (`N.NN %`) may be one rounding step off, as
/// JavaScript and Rust may round a tie differently. Every other cell is exact.
fn same(got: &str, want: &str) -> bool {
    let share = |s: &str| s.strip_suffix(" %").and_then(|n| n.parse::<f64>().ok());
    got == want || matches!((share(got), share(want)), (Some(a), Some(b)) if (a - b).abs() <= 0.0100001)
}

/// Waits until every panel shows a time, then checks each against the API as of that
/// time: the panels' times.
fn panels_match(browser: &Browser, server: &Server, after: &[u64; 4], limit: Duration) -> [u64; 4] {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        let page = browser.run(SNAPSHOT);
        let mut times = [0u64; 4];
        let mut all = true;
        for (i, (panel, output)) in PANELS.iter().enumerate() {
            let shown = &page[*panel];
            let Some(at) = shown["asOf"].as_str().and_then(|t| t.parse::<u64>().ok()).filter(|t| *t > after[i]) else {
                all = false;
                last = format!("{panel}: no new time yet ({})", shown["asOf"]);
                break;
            };
            let Ok(rows) = server.rows(output, at, 1000) else {
                all = false;
                last = format!("{panel}: {at} not complete everywhere yet");
                break;
            };
            let want = expected(panel, rows);
            let got: Vec<Vec<String>> = shown["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect())
                .collect();
            let equal = got.len() == want.len()
                && got.iter().zip(&want).all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same(a, b)));
            if want.is_empty() {
                // Nothing to compare yet: an empty panel proves nothing.
                all = false;
                last = format!("{panel} as of {at}: no rows yet");
                break;
            }
            if !equal {
                // The page may have moved on between the snapshot and now: look again.
                all = false;
                last = format!("{panel} as of {at}: the page shows {got:?}, the API {want:?}");
                break;
            }
            times[i] = at;
        }
        // The input count comes from a poll of `/v1/status` each second, apart from the
        // panels' subscriptions: it may arrive after them.
        let input = page["input"].as_str().map(|n| n.parse::<u64>().unwrap());
        if all && input.is_some_and(|n| n > 0) {
            return times;
        }
        if all {
            last = format!("no input rows shown yet: {page}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the dashboard never matched the API within {limit:?}: {last}");
}

#[test]
fn dashboard_shows_the_api_and_follows_the_run() {
    let dir = scratch("live");
    let events: Vec<String> = std::fs::read_to_string("data/events.csv").unwrap().lines().map(str::to_string).collect();
    let (head, tail) = events.split_at(events.len() / 2);
    let file = dir.join("events.csv");
    std::fs::write(&file, head.join("\n") + "\n").unwrap();
    let mut cmd = support::run_command(&file, Path::new("data/catalog.csv"), &dir.join("out"));
    cmd.args(["--follow", "--rules", "data/recall_rules.toml", "-w", "2", "--serve-retention", "100000"]);
    let server = Server::start(cmd);

    // The page and its assets come from the binary.
    let agent = &server.agent;
    let mut page = agent.get(format!("{}/", server.base)).call().unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.body_mut().read_to_string().unwrap().contains("/assets/dashboard.js"));
    for asset in ["dashboard.js", "dashboard.css"] {
        assert_eq!(agent.get(format!("{}/assets/{asset}", server.base)).call().unwrap().status(), 200, "{asset}");
    }
    assert_eq!(server.get("/assets/nope.js").0, 404);

    // What the page plots comes from `/v1/status`.
    let ready = Instant::now();
    while server.get("/readyz").0 != 200 {
        assert!(ready.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = server.ok("/v1/status");
    assert!(status["input_rows"]["valid"].as_u64().unwrap() > 0, "no valid rows in {status}");
    assert!(status["files"].as_object().unwrap().keys().any(|f| f.ends_with("events.csv")), "{status}");
    for field in ["as_of", "input_frontier_ms", "lag_event_ms", "lag_wall_seconds", "epochs", "resident_bytes"] {
        assert!(!status[field].is_null(), "/v1/status lacks {field}: {status}");
    }

    let browser = Browser::start(&dir.join("profile"));
    browser.open(&format!("{}/", server.base));
    let first = panels_match(&browser, &server, &[0; 4], Duration::from_secs(90));

    // Rows appended to the followed file: the panels move on and still match.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all((tail.join("\n") + "\n").as_bytes()).unwrap();
    drop(f);
    let second = panels_match(&browser, &server, &[first[0], first[1], 0, 0], Duration::from_secs(90));
    assert!(second[1] > first[1], "top categories did not move: {first:?} → {second:?}");

    // What a user sees: a real picture of the page.
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "not a screenshot ({} bytes)", png.len());
    if let Ok(path) = std::env::var("SHOPFLOW_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }
    drop(browser);
    server.stop();
}
