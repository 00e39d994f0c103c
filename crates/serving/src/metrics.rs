//! `/metrics`: what a run and its server report, in the Prometheus text format.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use platform::model::Time;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The run's and the server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Valid, late and rejected rows per input file.
    pub events: IntCounterVec,
    /// Change records applied per output (the rows its sink wrote, in the diff envelope).
    rows: IntCounterVec,
    /// Times at which some output changed.
    pub epochs: prometheus::IntCounter,
    /// The input frontier (ms of event time): every epoch before it is read.
    input_frontier: IntGauge,
    /// The latest time complete in every output (ms), and how far it lags the input.
    complete: IntGauge,
    lag_event: IntGauge,
    lag_wall: prometheus::Gauge,
    /// Arranged updates held by the dataflows of this process.
    pub arranged: IntGauge,
    rss: IntGauge,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Subscriptions open, and those ended for falling behind.
    pub subscribers: IntGauge,
    pub dropped_subscribers: prometheus::IntCounter,
    /// When the input frontier reached each value (for the wall-clock lag).
    frontier_at: Mutex<VecDeque<(Time, Instant)>>,
}

/// How many input frontier advances are remembered for the wall-clock lag.
const FRONTIER_HISTORY: usize = 4096;

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a metric");
            registry.register(Box::new(c.clone())).expect("a new metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("a metric");
            registry.register(Box::new(g.clone())).expect("a new metric");
            g
        };
        let events = counter(
            "shopflow_input_rows_total",
            "Input rows per file, by outcome (valid, late, rejected).",
            &["file", "outcome"],
        );
        let rows = counter("shopflow_output_changes_total", "Change rows per output (diff envelope).", &["output"]);
        let requests =
            counter("shopflow_http_requests_total", "HTTP requests by route and status.", &["route", "status"]);
        let epochs = prometheus::IntCounter::new("shopflow_epochs_total", "Times at which some output changed.")
            .expect("a metric");
        registry.register(Box::new(epochs.clone())).expect("a new metric");
        let dropped = prometheus::IntCounter::new(
            "shopflow_subscribers_dropped_total",
            "Subscriptions ended because the client fell behind.",
        )
        .expect("a metric");
        registry.register(Box::new(dropped.clone())).expect("a new metric");
        let lag_wall = prometheus::Gauge::new(
            "shopflow_output_lag_wall_seconds",
            "Wall-clock seconds since the input frontier passed the latest complete time.",
        )
        .expect("a metric");
        registry.register(Box::new(lag_wall.clone())).expect("a new metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("shopflow_http_request_duration_seconds", "HTTP request latency by route.")
                .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
            &["route"],
        )
        .expect("a metric");
        registry.register(Box::new(latency.clone())).expect("a new metric");
        Metrics {
            events,
            rows,
            epochs,
            input_frontier: gauge("shopflow_input_frontier_ms", "Every epoch before this event time (ms) is read."),
            complete: gauge("shopflow_complete_time_ms", "The latest time complete in every output (ms, as_of)."),
            lag_event: gauge(
                "shopflow_output_lag_event_ms",
                "Input frontier minus the complete frontier (ms of event time).",
            ),
            lag_wall,
            arranged: gauge("shopflow_arranged_updates", "Updates held in arrangements by this process."),
            rss: gauge("shopflow_resident_bytes", "Resident set size of this process."),
            requests,
            latency,
            subscribers: gauge("shopflow_subscribers", "Open change subscriptions."),
            dropped_subscribers: dropped,
            registry,
            frontier_at: Mutex::default(),
        }
    }

    pub(crate) fn rows_applied(&self, output: &str, n: usize) {
        self.rows.with_label_values(&[output]).inc_by(n as u64);
    }

    /// The input frontier moved to `frontier` (worker 0).
    pub fn input_at(&self, frontier: Time) {
        self.input_frontier.set(frontier.min(i64::MAX as u64) as i64);
        let mut history = self.frontier_at.lock().unwrap_or_else(|p| p.into_inner());
        if history.back().is_none_or(|(f, _)| *f < frontier) {
            history.push_back((frontier, Instant::now()));
            if history.len() > FRONTIER_HISTORY {
                history.pop_front();
            }
        }
    }

    /// One request to `route` answered with `status` in `took`.
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.requests.with_label_values(&[route, &status.to_string()]).inc();
        self.latency.with_label_values(&[route]).observe(took.as_secs_f64());
    }

    /// Sets the gauges that are read at scrape time: `complete` (every time before it is
    /// complete in every output), the lags and the RSS.
    fn refresh(&self, complete: Time, latest: Option<Time>) {
        let input = self.input_frontier.get().max(0) as u64;
        if let Some(latest) = latest {
            self.complete.set(latest.min(i64::MAX as u64) as i64);
        }
        let complete = complete.min(input.max(complete));
        self.lag_event.set(input.saturating_sub(complete).min(i64::MAX as u64) as i64);
        let history = self.frontier_at.lock().unwrap_or_else(|p| p.into_inner());
        // The wall time since the input first passed what is complete now.
        let lag = history.iter().find(|(f, _)| *f > complete).map_or(0.0, |(_, at)| at.elapsed().as_secs_f64());
        drop(history);
        self.lag_wall.set(lag);
        self.rss.set(resident_bytes());
    }

    /// The text exposition.
    pub fn render(&self, complete: Time, latest: Option<Time>) -> String {
        self.refresh(complete, latest);
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The same figures as one JSON object (`GET /v1/status`, what the dashboard plots):
    /// input rows per file and outcome, their totals, the frontiers and lags.
    pub fn status(&self, complete: Time, latest: Option<Time>) -> serde_json::Value {
        self.refresh(complete, latest);
        let mut files: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
            Default::default();
        let mut totals: std::collections::BTreeMap<String, u64> =
            ["valid", "late", "rejected"].into_iter().map(|o| (o.to_string(), 0)).collect();
        for family in self.registry.gather().iter().filter(|f| f.name() == "shopflow_input_rows_total") {
            for metric in family.get_metric() {
                let label =
                    |name: &str| metric.get_label().iter().find(|l| l.name() == name).map(|l| l.value().to_string());
                let (Some(file), Some(outcome)) = (label("file"), label("outcome")) else { continue };
                let n = metric.get_counter().get_value() as u64;
                *totals.entry(outcome.clone()).or_default() += n;
                files.entry(file).or_default().insert(outcome, n.into());
            }
        }
        serde_json::json!({
            "as_of": latest,
            "input_rows": totals,
            "files": files,
            "epochs": self.epochs.get(),
            "input_frontier_ms": self.input_frontier.get(),
            "lag_event_ms": self.lag_event.get(),
            "lag_wall_seconds": self.lag_wall.get(),
            "resident_bytes": self.rss.get(),
            "subscribers": self.subscribers.get(),
        })
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// This process's resident set size in bytes (0 where /proc is not there).
fn resident_bytes() -> i64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: i64 = status.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64;
    pages * page
}
