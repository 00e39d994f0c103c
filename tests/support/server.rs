//! A `shopflow run --serve` child for the tests of the HTTP API and the dashboard.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::finish;

/// A `shopflow run --serve 127.0.0.1:0` child, its address, and its stderr lines.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    lines: mpsc::Receiver<String>,
    pub agent: ureq::Agent,
}

impl Server {
    /// Starts `cmd` (a `shopflow run` without --serve) serving on a free port.
    pub fn start(mut cmd: Command) -> Server {
        cmd.arg("--serve").arg("127.0.0.1:0").stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start shopflow");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            lines,
            agent: ureq::Agent::config_builder().http_status_as_error(false).build().into(),
        };
        let line = server.wait_line("shopflow: serving http://", Duration::from_secs(30));
        server.base = line.trim_start_matches("shopflow: serving ").to_string();
        server
    }

    /// Waits for a stderr line starting with `prefix`.
    pub fn wait_line(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no stderr line {prefix:?} within {limit:?}; stderr:\n{}", seen.join("\n"));
    }

    /// `GET path`: the status and the JSON body.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self.agent.get(format!("{}{path}", self.base)).call().expect("a response");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("a body");
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}")))
    }

    /// `GET path`, which must answer 200.
    pub fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .expect("a response");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("a body");
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: not JSON ({e}): {text}")))
    }

    /// Every row of output `name` as of `at`, read in pages of `page` rows; `Err(body)`
    /// when `at` is not complete in every output yet (400 with `latest_as_of`).
    pub fn rows(&self, name: &str, at: u64, page: usize) -> Result<Vec<Value>, Value> {
        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_ref().map(|a| format!("&after={}", encode(a))).unwrap_or_default();
            let (status, body) = self.get(&format!("/v1/outputs/{name}?as_of={at}&limit={page}{cursor}"));
            if status == 400 && body.get("latest_as_of").is_some() {
                return Err(body);
            }
            assert_eq!(status, 200, "{name} as of {at}: {body}");
            assert_eq!(body["as_of"], at, "{name}: as_of");
            rows.extend(body["rows"].as_array().unwrap().iter().cloned());
            match body["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return Ok(rows),
            }
        }
    }

    /// SIGTERM, then the exit status must be success.
    pub fn stop(mut self) -> String {
        let child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let (status, _) = finish(child, Duration::from_secs(60));
        assert!(status.success(), "the serving run exited with {status}");
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            rest.push(line);
        }
        rest.join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a query value (ids, scenes with spaces or non-ASCII).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.,".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
