//! A real headless Chromium driven over the W3C WebDriver protocol (Debian's `chromium`
//! and `chromium-driver`, installed here with apt-get when missing). `SHOPFLOW_CHROMIUM` and
//! `SHOPFLOW_CHROMEDRIVER` override the paths.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A chromedriver child and one browser session in it.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

fn tool(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    if !Path::new(&path).exists() && std::env::var_os(var).is_none() {
        install();
    }
    assert!(Path::new(&path).exists(), "{path} is missing: `apt-get install chromium chromium-driver`, or set {var}");
    path
}

/// Installs Debian's chromium and chromium-driver (the test setup does, when missing).
fn install() {
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| {
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.args(["-n", "apt-get"]);
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").stdout(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    };
    eprintln!("installing chromium and chromium-driver (apt-get) for the dashboard test");
    let _ = apt(&["update", "-qq"]);
    assert!(
        apt(&["install", "-y", "-qq", "chromium", "chromium-driver"]),
        "cannot install chromium and chromium-driver"
    );
}

impl Browser {
    /// Starts chromedriver on a free port and a headless browser session (profile in `profile`).
    pub fn start(profile: &Path) -> Browser {
        let chromium = tool("SHOPFLOW_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("SHOPFLOW_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut browser = Browser { driver, base: format!("http://127.0.0.1:{port}"), session: String::new(), agent };
        let started = Instant::now();
        while browser.agent.get(format!("{}/status", browser.base)).call().is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--window-size=1400,1100", format!("--user-data-dir={}", profile.display())],
        }}}});
        let answer = browser.call("POST", "/session", Some(capabilities));
        browser.session =
            answer["sessionId"].as_str().unwrap_or_else(|| panic!("no browser session: {answer}")).to_string();
        browser
    }

    /// One WebDriver command: its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("POST", body) => self.agent.post(&url).send_json(body.unwrap_or_else(|| json!({}))),
            ("DELETE", _) => self.agent.delete(&url).call(),
            _ => self.agent.get(&url).call(),
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status().as_u16();
        let answer: Value = response.body_mut().read_json().expect("a WebDriver answer");
        assert_eq!(status, 200, "WebDriver {method} {path}: {answer}");
        answer.get("value").cloned().unwrap_or(answer)
    }

    fn command(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}/{what}", self.session), body)
    }

    /// Opens `url`.
    pub fn open(&self, url: &str) {
        self.command("POST", "url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page: what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.command("POST", "execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    /// The page as a PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let text = self.command("GET", "screenshot", None);
        base64::engine::general_purpose::STANDARD.decode(text.as_str().expect("a screenshot")).expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.agent.delete(format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
