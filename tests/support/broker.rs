//! A real Kafka-protocol broker on loopback for the Kafka tests: tansu (Apache-2.0, a
//! Rust crate), in-memory storage, one per test. `SHOPFLOW_TANSU` names its binary;
//! otherwise it is looked for in the cache (`$SHOPFLOW_CACHE` or `~/.cache/shopflow`,
//! `tansu/bin/tansu`) and on `PATH`, and when missing built once into the cache with
//! `cargo install` (a debug build, ~8-11 minutes cold on 2 cores; `.ci/run` does it first).

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu version the tests are run against.
const TANSU_VERSION: &str = "0.6.0";

fn cache() -> PathBuf {
    match std::env::var_os("SHOPFLOW_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/shopflow"),
    }
}

/// The broker binary: found, or installed into the cache (once, under a file lock, so
/// tests running in parallel wait for one build).
pub fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("SHOPFLOW_TANSU") {
        return PathBuf::from(path);
    }
    let root = cache().join("tansu");
    let bin = root.join("bin/tansu");
    if bin.exists() {
        return bin;
    }
    if let Some(on_path) = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("tansu")).find(|p| p.exists()))
    {
        return on_path;
    }
    std::fs::create_dir_all(cache()).unwrap();
    let lock = File::create(cache().join("tansu.lock")).unwrap();
    lock.lock().unwrap();
    if !bin.exists() {
        eprintln!("installing the tansu broker {TANSU_VERSION} into {} (cargo install, once)", root.display());
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["install", "tansu", "--version", TANSU_VERSION, "--features", "dynostore", "--debug", "--locked"])
            .arg("--root")
            .arg(&root)
            .env("CARGO_TARGET_DIR", cache().join("tansu-target"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo install tansu failed: install it and set SHOPFLOW_TANSU");
    }
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running broker; stopped when dropped.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
}

impl Broker {
    /// Starts a broker on a free loopback port, its log in `dir`; returns once it accepts
    /// connections.
    pub fn start(dir: &Path) -> Broker {
        let bin = tansu();
        let port = free_port();
        let listener = format!("tcp://127.0.0.1:{port}");
        let log = File::create(dir.join(format!("broker-{port}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the broker starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the broker did not listen on {port} within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child: Some(child), port }
    }

    /// `kafka://127.0.0.1:PORT/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("kafka://127.0.0.1:{}/{name}", self.port)
    }

    /// Kills the broker (its in-memory topics are gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
