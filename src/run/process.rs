//! `shopflow run` in this process: holds the output directory, spools pipes, handles
//! Ctrl-C, connects to the other processes, runs the workers and turns their outcome into
//! one [`Error`] (or success). No worker ends the process: a failing worker hands its error
//! here and parks; the first error decides the exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use platform::spool::{self, Spool};

use super::report::summary;
use super::stop::SETTINGS_MISMATCH;
use super::{RunConfig, RunReport};
use crate::error::Error;
use crate::manifest::OutDir;

/// `shopflow run` with `cfg` in this process (process `cfg.process` of `cfg.processes`).
pub fn run(mut cfg: RunConfig, timely_cfg: timely::Config) -> Result<(), Error> {
    // Process 0 writes the outputs: with the Kafka sink, it makes the topics and reads
    // what an earlier run left in them before any worker starts.
    if let (0, Some(prefix)) = (cfg.process, &cfg.sink_kafka) {
        let compact = cfg.envelope == sinks::Envelope::Upsert;
        cfg.sink_topics = Some(kafka::sink::SinkTopics::prepare(prefix, &cfg.outputs, compact).map_err(Error::Sink)?);
    }
    std::fs::create_dir_all(&cfg.out_dir)
        .map_err(|e| Error::Sink(format!("cannot create {}: {e}", cfg.out_dir.display())))?;
    // Process 0 writes the outputs: it holds the output directory for the run.
    let out = match cfg.process {
        0 => {
            let inputs = cfg.sources.iter().map(|s| s.display()).collect();
            Some(Arc::new(OutDir::claim(&cfg.out_dir, inputs, &cfg.outputs, cfg.sink).map_err(Error::Sink)?))
        }
        _ => None,
    };
    let result = run_in(cfg, timely_cfg, out.clone());
    if let (Err(e), Some(out)) = (&result, &out) {
        // A run that failed outright wrote nothing a reader could use; one that ended
        // early (a source broke, a peer was lost, stdout closed) keeps its complete epochs.
        out.failed(&e.to_string(), e.exit_code() == 2);
    }
    result
}

/// How the workers of this process ended: the first error of any of them, or all joined.
enum Outcome {
    Failed(Error),
    Joined(Vec<Result<Option<RunReport>, String>>),
}

/// `shopflow run` once the output directory is held (by process 0: `out`).
fn run_in(mut cfg: RunConfig, timely_cfg: timely::Config, out: Option<Arc<OutDir>>) -> Result<(), Error> {
    // Pipes, FIFOs and standard input are copied to a spool file every worker reads.
    for (i, spec) in cfg.sources.iter_mut().enumerate() {
        if spool::needs_spool(&spec.path) {
            spec.spool = Some(Spool::start(&spec.path, cfg.out_dir.join(format!(".spool-{i}"))).map_err(Error::Input)?);
        }
    }
    let cfg = Arc::new(cfg);
    let quiet = !cfg.progress;
    // Process 0 serves (`--serve`); the address is said on stderr, even with -q (a port
    // 0 is only known once bound).
    let served = match (&cfg.serve, cfg.process) {
        (Some(serve), 0) => {
            let bound = super::serve::start(serve, &cfg)?;
            eprintln!("shopflow: serving http://{bound}");
            Some(bound)
        }
        _ => None,
    };
    // Ctrl-C / SIGTERM: a clean stop (see `super::stop`); a second one aborts.
    // A signal within half a second of the first is the same request delivered twice
    // (e.g. `timeout` signals the child and its process group).
    let stop = cfg.stop.clone();
    let mut first: Option<std::time::Instant> = None;
    let handler_out = out.clone();
    let abort = move |message: &str| {
        eprintln!("shopflow: {message}");
        if let Some(out) = &handler_out {
            out.failed(message, false);
        }
        std::process::exit(130);
    };
    ctrlc::set_handler(move || match first {
        // Still connecting to the other processes: nothing read, nothing to keep.
        _ if CONNECTING.load(Ordering::SeqCst) => {
            abort("interrupted while waiting for the other processes of this run")
        }
        Some(at) if at.elapsed() >= std::time::Duration::from_millis(500) => {
            abort("interrupted again: aborting, outputs may be incomplete")
        }
        Some(_) => {}
        None => {
            first = Some(std::time::Instant::now());
            stop.store(true, Ordering::SeqCst);
            if !quiet {
                eprintln!("shopflow: stopping: writing the complete epochs (Ctrl-C again to abort)");
            }
        }
    })
    .map_err(|e| Error::Usage(format!("cannot install the Ctrl-C handler: {e}")))?;
    let (outcome, outcomes) = mpsc::channel::<Outcome>();
    if cfg.processes > 1 {
        fail_when_a_peer_is_lost(outcome.clone());
    }
    let worker_cfg = cfg.clone();
    let failed = outcome.clone();
    let (builders, others) = connect(timely_cfg.communication, quiet).map_err(Error::Peer)?;
    let guards = timely::execute::execute_from(builders, others, timely_cfg.worker, move |worker| {
        match super::driver::worker(worker, &worker_cfg) {
            Ok(report) => report,
            Err(e) => {
                // Every error is fatal for the whole run, and the other workers may wait
                // for this one forever: hand the error over and park; the first error
                // received ends the process.
                let _ = failed.send(Outcome::Failed(e));
                loop {
                    std::thread::park();
                }
            }
        }
    })
    .map_err(Error::Usage)?;
    std::thread::spawn(move || {
        let _ = outcome.send(Outcome::Joined(guards.join()));
    });
    let joined = match outcomes.recv() {
        Ok(Outcome::Joined(joined)) => joined,
        Ok(Outcome::Failed(e)) => return Err(e),
        Err(_) => return Err(Error::Internal("the workers ended without a word".into())),
    };
    let mut report = None;
    for result in joined {
        if let Some(r) = result.map_err(|e| Error::Internal(format!("worker failed: {e}")))? {
            report = Some(r);
        }
    }
    for spool in cfg.sources.iter().filter_map(|s| s.spool.as_ref()) {
        let _ = std::fs::remove_file(&spool.path);
    }
    if let Some((path, profile)) = &cfg.profile {
        profile.write(path).map_err(|e| Error::Sink(format!("cannot write the profile {}: {e}", path.display())))?;
    }
    if let (Some(report), false) = (&report, quiet) {
        eprint!("{}", summary(&cfg, report));
    }
    if report.is_some() {
        for w in &cfg.warnings {
            eprintln!("shopflow: warning: {w}");
        }
    }
    // A source that broke mid-run (a followed file rewritten): the complete epochs are
    // written, and the run fails.
    if let Some(message) = cfg.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Err(Error::SourceBroken(message));
    }
    if let (Some(out), Some(report)) = (&out, &report) {
        let rows = report.written.iter().map(|(name, log)| (name.to_string(), log.rows)).collect();
        // The outputs are complete: keep them, but say the manifest could not.
        out.finished(rows, report.stopped_at).map_err(Error::Sink)?;
    }
    if let Some(bound) = served {
        super::serve::until_stopped(&cfg, bound);
    }
    Ok(())
}

/// Set while the processes of a run connect to each other: a Ctrl-C then ends the
/// process at once (there is nothing to keep yet).
static CONNECTING: AtomicBool = AtomicBool::new(false);

/// Builds timely's communication: in a multi-process run, connects to the other
/// processes. Timely reports its connection attempts on standard output, where they
/// would mix with `--sink stdout`: they go to stderr instead (nowhere with `-q`).
fn connect(
    communication: timely::CommunicationConfig,
    quiet: bool,
) -> Result<(Vec<timely::communication::allocator::AllocatorBuilder>, Box<dyn std::any::Any + Send>), String> {
    use std::io::Write;
    if !matches!(communication, timely::CommunicationConfig::Cluster { .. }) {
        return communication.try_build();
    }
    let _ = std::io::stdout().flush();
    // SAFETY: plain descriptor calls on descriptors this process owns; standard output
    // is restored before any worker starts.
    let saved = unsafe { libc::dup(1) };
    let target = if quiet {
        std::fs::OpenOptions::new().write(true).open("/dev/null").ok().map(std::os::fd::IntoRawFd::into_raw_fd)
    } else {
        None
    };
    unsafe { libc::dup2(target.unwrap_or(2), 1) };
    CONNECTING.store(true, Ordering::SeqCst);
    let built = communication.try_build();
    CONNECTING.store(false, Ordering::SeqCst);
    let _ = std::io::stdout().flush();
    unsafe {
        if saved >= 0 {
            libc::dup2(saved, 1);
            libc::close(saved);
        }
        if let Some(fd) = target {
            libc::close(fd);
        }
    }
    built
}

/// In a multi-process run, timely's network threads panic when a peer process goes
/// away (killed, crashed, host lost); the workers then abort with a long trace. Make
/// that the run's outcome instead, [`Error::Peer`] (one line, exit code 1): the run cannot
/// go on without the peer, and its outputs are recomputed from the start by the same
/// command (every output file is rewritten from scratch, so nothing is lost or doubled).
/// Other panics (bugs) keep the default report.
fn fail_when_a_peer_is_lost(outcome: mpsc::Sender<Outcome>) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // The network threads (`timely:send-N`, `timely:recv-N`) fail first; the workers
        // then find their queues from those threads poisoned.
        let thread = std::thread::current();
        let network = thread.name().is_some_and(|n| n.starts_with("timely:send-") || n.starts_with("timely:recv-"));
        if !network && !message.contains("MergeQueue poisoned") {
            return default(info);
        }
        if SETTINGS_MISMATCH.load(Ordering::SeqCst) {
            // The peer stopped because the settings differ: this process says so itself.
            loop {
                std::thread::park();
            }
        }
        let cause = message.strip_prefix("timely communication error: ").unwrap_or("it broke off mid-message");
        let _ = outcome.send(Outcome::Failed(Error::Peer(format!(
            "lost the connection to another process of this run ({cause}); \
             stopping: start every process again with the same command to rewrite the outputs"
        ))));
        // This thread ends here; the process ends with the first outcome received.
        loop {
            std::thread::park();
        }
    }));
}
