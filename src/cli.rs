//! Command-line interface: typed flags (clap), their validation, the timely
//! configuration they imply, and the run summary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::manifest::OutDir;
use crate::run::{self, Pace, RunConfig, RunReport};
use generator::{self, GenConfig, GenFormat};
use platform::config_inputs::ConfigFiles;
use platform::source::{self, Format, SourceKind, SourceSpec, TsChecks};
use platform::spool::{self, Spool};
use platform::{AdParams, Params};
use sinks::{Envelope, SinkKind};

#[derive(Parser, Debug)]
#[command(name = "shopflow", version, about = "Real-time e-commerce aggregates as differential dataflows")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every dataflow over events and catalog changes; write change streams.
    Run(RunArgs),
    /// Generate a realistic marketplace dataset (events and catalog changes).
    Gen(GenArgs),
    /// Sort an events file by timestamp in bounded memory (the public UserBehavior.csv is
    /// grouped by user): stable, a native file's header first, lines without a numeric
    /// timestamp last.
    Sort(SortArgs),
    /// Merge `recall_user` from a run's output files (recall_user_signals, recall_hot,
    /// recall_i2i, rules): users' ranked lists as of a time, or the whole change stream.
    Recall(RecallArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// `ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents` with header.
    Native,
    /// Taobao UserBehavior: `user_id,item_id,category_id,behavior_type,timestamp`, no header.
    Userbehavior,
}

#[derive(Args, Debug)]
#[command(
    disable_help_flag = true,
    after_help = "Stopping: Ctrl-C (SIGINT) or SIGTERM stops a run cleanly, with or without --follow: \
reading stops, every epoch complete at that point is written, later (partial) epochs are not, \
rejected.csv and the summary are written as usual, and the exit code is 0. A second Ctrl-C (half a \
second or more after the first) aborts at once: exit code 130, outputs may then be incomplete."
)]
pub struct RunArgs {
    /// Events file(s); repeat the flag or list several. Default: the sample data in data/
    /// (data/events.csv with data/catalog.csv, or data/UserBehavior.csv with --format userbehavior).
    #[arg(long, value_name = "FILE", num_args = 1.., action = ArgAction::Append)]
    pub events: Vec<PathBuf>,
    /// Catalog changes (native format only).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Format of the events files.
    #[arg(long, value_enum, default_value = "native")]
    pub format: FormatArg,
    /// Directory for the change streams and rejected.csv (created if missing).
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Epoch length in ms: outputs report a time per epoch.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub epoch_ms: u64,
    /// Allowed lateness in ms; a row later than this joins the earliest open epoch and is counted as late.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub lateness_ms: u64,
    /// Outputs to compute, comma-separated (default: all).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(dataflows::ALL))]
    pub outputs: Vec<String>,
    /// Where change streams go.
    #[arg(long, value_enum, default_value = "csv")]
    pub sink: SinkKind,
    /// How changes are written: `diff` rows (`time,diff,<columns>`, +1/-1 per row) or
    /// `upsert` records (`time,op,<columns>`: per changed key its new row, or a delete).
    #[arg(long, value_enum, default_value = "diff")]
    pub envelope: Envelope,
    /// Recall rules (TOML; see README "Case 2"); `none` for no rules. Default: with the
    /// sample data, data/recall_rules.toml (data/recall_rules_taobao.toml for
    /// --format userbehavior); otherwise none. Watched under --follow.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Batch base for item_display_stats (CSV `cutoff_ms,item_id,sales_30d,units_30d,gmv_30d_cents,buyers_30d`);
    /// repeatable; a newer cut-off replaces an older one. Watched under --follow.
    #[arg(long, value_name = "FILE", action = ArgAction::Append)]
    pub base: Vec<PathBuf>,
    /// ads_curated: refresh period in ms of event time.
    #[arg(long, value_name = "MS", default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ad_refresh_ms: u64,
    /// ads_curated: minimum all-time impressions of an ad item.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub ad_min_impressions: u64,
    /// ads_curated: minimum smoothed pCTR (a decimal with at most 6 decimals).
    #[arg(long, value_name = "X", default_value = "0.01", value_parser = probability, allow_negative_numbers = true)]
    pub ad_min_pctr: i128,
    /// ads_curated: size of the ad set.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub ad_set_size: u64,
    /// Reject rows (of the events and catalog files) with a timestamp before MS (ms since
    /// the Unix epoch; UserBehavior seconds × 1000): they go to rejected.csv and do not
    /// move the watermark. Default: none.
    #[arg(long, value_name = "MS")]
    pub min_ts: Option<u64>,
    /// Reject rows with a timestamp after MS (as --min-ts). Default: none.
    #[arg(long, value_name = "MS")]
    pub max_ts: Option<u64>,
    /// Warn (once per file, with the line) when one row moves the watermark forward by
    /// more than MS at once.
    #[arg(long, value_name = "MS", default_value_t = source::DEFAULT_JUMP_WARN_MS)]
    pub jump_warn_ms: u64,
    /// Stop at the first malformed row (exit code 2) instead of rejecting it and going on.
    #[arg(long)]
    pub strict: bool,
    /// Lines read between worker steps (the physical batch; does not change results).
    #[arg(long, value_name = "N", default_value_t = 262_144, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_lines: u64,
    /// Pace the input at N event rows per second of wall-clock time (lines of the events
    /// files, all workers together). Default: as fast as possible.
    #[arg(long, value_name = "N", value_parser = positive_f64, conflicts_with = "speed", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Replay event time X times faster than real time (1440: a day per minute): a line
    /// with timestamp ts is read no sooner than (ts - first ts) / X after the start.
    #[arg(long, value_name = "X", value_parser = positive_f64, allow_negative_numbers = true)]
    pub speed: Option<f64>,
    /// Keep reading the events files as they grow, like `tail -f` (a line counts once
    /// its newline is written); the run ends on Ctrl-C or SIGTERM. The catalog file is
    /// read to its end, not followed. Outputs advance with the slowest events file.
    #[arg(long)]
    pub follow: bool,
    /// Write the end-to-end latency of every input-frontier advance to FILE
    /// (`frontier_ms,latency_us`: from worker 0 reading the epoch's last line to every
    /// output having written it). Used by `cargo bench --bench latency`.
    #[arg(long, value_name = "FILE")]
    pub latency_log: Option<PathBuf>,
    /// Worker threads per process.
    #[arg(short = 'w', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// Number of processes (timely cluster mode).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub processes: u64,
    /// Index of this process, 0..N.
    #[arg(short = 'p', long, value_name = "I", default_value_t = 0)]
    pub process: u64,
    /// File with one `host:port` per process (default: localhost:2101, 2102, …).
    #[arg(short = 'h', long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// No run summary (and no progress line) on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Number of users (default: scaled from events).
    #[arg(long)]
    pub users: Option<u64>,
    /// Number of items (default: scaled from events).
    #[arg(long)]
    pub items: Option<u64>,
    /// Number of categories (default: scaled from items).
    #[arg(long)]
    pub categories: Option<u64>,
    /// Number of sellers (default: scaled from items).
    #[arg(long)]
    pub sellers: Option<u64>,
    /// Random seed: the same arguments give byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "gen")]
    pub out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value = "native")]
    pub format: FormatArg,
    /// Days spanned by the events.
    #[arg(long)]
    pub days: Option<f64>,
    /// Hour (from the start) of a major sales event: ×10 traffic, new items, price cuts.
    #[arg(long)]
    pub sale_hour: Option<u64>,
    /// Fraction of malformed rows to mix in.
    #[arg(long, default_value_t = 0.0)]
    pub bad_rows: f64,
    /// Fraction of events written out of order.
    #[arg(long)]
    pub late_fraction: Option<f64>,
}

#[derive(Args, Debug)]
pub struct SortArgs {
    /// Format of the file.
    #[arg(long, value_enum, default_value = "native")]
    pub format: FormatArg,
    /// The file to sort (`-`: standard input).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// The sorted file (written beside its place, then renamed; may be the input).
    #[arg(long = "out", value_name = "FILE")]
    pub output: PathBuf,
    /// Memory for lines in MiB; a larger input is sorted in runs (temporary files beside
    /// the output), then merged.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub memory_mb: u64,
    /// No progress bar and no summary line.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RecallArgs {
    /// The output directory of a run with the csv sink.
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Only these users (repeat or list several; default: every user with signals).
    #[arg(long, value_name = "ID", value_delimiter = ',', action = ArgAction::Append)]
    pub user: Vec<u64>,
    /// As of this time (ms; every change at or before it counts). Default: the files' last
    /// time — for a run still going, give a time every file has passed.
    #[arg(long, value_name = "MS")]
    pub at: Option<u64>,
    /// Write the whole change stream to <DIR>/recall_user.csv instead (in the files'
    /// envelope: the rows the dataflow would write if it merged the lists itself).
    #[arg(long, conflicts_with_all = ["user", "at"])]
    pub changes: bool,
    /// No summary line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `shopflow recall`.
pub fn recall(args: RecallArgs) -> Result<(), String> {
    use std::io::Write as _;
    if args.changes {
        let started = std::time::Instant::now();
        let derived = serving::recall::derive(&args.out)?;
        if !args.quiet {
            eprintln!(
                "shopflow recall: {} records at {} times ({} envelope) in {:.2} s -> {}",
                derived.records,
                derived.times,
                derived.envelope.name(),
                started.elapsed().as_secs_f64(),
                args.out.join("recall_user.csv").display()
            );
        }
        return Ok(());
    }
    let (state, last) = serving::recall::state_as_of(&args.out, args.at)?;
    let as_of = args.at.or(last).unwrap_or(0);
    let users: Vec<u64> = if args.user.is_empty() { state.users().collect() } else { args.user.clone() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = (|| -> std::io::Result<usize> {
        writeln!(out, "scene,user_id,rank,item_id,score,strategy")?;
        let mut rows = 0;
        for user in users {
            let mut rank = 0;
            let mut scene = None;
            for (s, u, item, score, source) in state.lists(user) {
                rank = if scene == Some(s) { rank + 1 } else { 1 };
                scene = Some(s);
                writeln!(out, "{},{u},{rank},{item},{score},{}", s.as_str(), source.label())?;
                rows += 1;
            }
        }
        out.flush()?;
        Ok(rows)
    })();
    match written {
        Ok(rows) if !args.quiet => {
            eprintln!("shopflow recall: {rows} rows as of {as_of} ({})", platform::utc::date_time(as_of));
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// `shopflow sort`.
pub fn sort(args: SortArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    let cfg = crate::sort::SortConfig {
        kind: SourceKind::Events(match args.format {
            FormatArg::Native => Format::Native,
            FormatArg::Userbehavior => Format::UserBehavior,
        }),
        input: args.input,
        output: args.output,
        memory_bytes: (args.memory_mb << 20) as usize,
        progress: !args.quiet,
    };
    let report = crate::sort::sort(&cfg)?;
    if !args.quiet {
        eprintln!(
            "shopflow sort: {} lines ({} without a timestamp, placed last), {} in {:.2} s -> {}",
            report.lines,
            report.untimed,
            match report.runs {
                0 => "sorted in memory".to_string(),
                n => format!("{n} sorted runs merged"),
            },
            started.elapsed().as_secs_f64(),
            cfg.output.display()
        );
    }
    Ok(())
}

/// A positive, finite number (`--rate`, `--speed`).
fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("must be a positive number, got `{s}`")),
    }
}

/// A decimal from 0 to 1 with at most 6 decimals, in micro-units (`--ad-min-pctr`).
fn probability(s: &str) -> Result<i128, String> {
    let bad = || format!("must be a non-negative decimal of at most 1 with at most 6 decimals, got `{s}`");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let frac: i128 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().map_err(|_| bad())? };
    int.checked_mul(1_000_000).and_then(|i| i.checked_add(frac)).filter(|v| *v <= 1_000_000).ok_or_else(bad)
}

/// `shopflow run`.
pub fn run(args: RunArgs) -> Result<(), String> {
    let cfg = run_config(&args)?;
    let timely_cfg = timely_config(&args)?;
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| format!("cannot create {}: {e}", cfg.out_dir.display()))?;
    // Process 0 writes the outputs: it holds the output directory for the run.
    let out = match args.process {
        0 => {
            let inputs = cfg.sources.iter().map(|s| s.display()).collect();
            Some(Arc::new(OutDir::claim(&cfg.out_dir, inputs, &cfg.outputs, cfg.sink)?))
        }
        _ => None,
    };
    let result = run_in(&args, cfg, timely_cfg, out.clone());
    if let (Err(message), Some(out)) = (&result, &out) {
        out.failed(message, true);
    }
    result
}

/// `shopflow run` once the output directory is held (by process 0: `out`).
fn run_in(
    args: &RunArgs,
    mut cfg: RunConfig,
    timely_cfg: timely::Config,
    out: Option<Arc<OutDir>>,
) -> Result<(), String> {
    // Pipes, FIFOs and standard input are copied to a spool file every worker reads.
    for (i, spec) in cfg.sources.iter_mut().enumerate() {
        if spool::needs_spool(&spec.path) {
            spec.spool = Some(Spool::start(&spec.path, cfg.out_dir.join(format!(".spool-{i}")))?);
        }
    }
    let cfg = Arc::new(cfg);
    // Ctrl-C / SIGTERM: a clean stop (see `run::worker`); a second one aborts.
    // A signal within half a second of the first is the same request delivered twice
    // (e.g. `timeout` signals the child and its process group).
    let stop = cfg.stop.clone();
    let quiet = args.quiet;
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
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    if args.processes > 1 {
        exit_when_a_peer_is_lost(out.clone());
    }
    let worker_cfg = cfg.clone();
    let worker_out = out.clone();
    let (builders, others) = connect(timely_cfg.communication, args.quiet)?;
    let guards = timely::execute::execute_from(builders, others, timely_cfg.worker, move |worker| {
        match run::worker(worker, &worker_cfg) {
            Ok(report) => report,
            Err(run::RunError(message)) => {
                // Every error is fatal for the whole run: stop all workers now (one
                // line, whichever worker gets here first).
                static REPORTED: AtomicBool = AtomicBool::new(false);
                if !REPORTED.swap(true, Ordering::SeqCst) {
                    eprintln!("shopflow: error: {message}");
                    if let Some(out) = &worker_out {
                        out.failed(&message, true);
                    }
                    std::process::exit(2);
                }
                loop {
                    std::thread::park();
                }
            }
        }
    })?;
    let mut report = None;
    for result in guards.join() {
        if let Some(r) = result.map_err(|e| format!("worker failed: {e}"))? {
            report = Some(r);
        }
    }
    for spool in cfg.sources.iter().filter_map(|s| s.spool.as_ref()) {
        let _ = std::fs::remove_file(&spool.path);
    }
    if let (Some(report), false) = (&report, args.quiet) {
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
        eprintln!("shopflow: error: {message}");
        if let Some(out) = &out {
            out.failed(&message, false);
        }
        std::process::exit(1);
    }
    if let (Some(out), Some(report)) = (&out, &report) {
        let rows = report.written.iter().map(|(name, log)| (name.to_string(), log.rows)).collect();
        if let Err(e) = out.finished(rows, report.stopped_at) {
            // The outputs are complete: keep them, but say the manifest could not.
            eprintln!("shopflow: error: {e}");
            std::process::exit(2);
        }
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
/// that one line on stderr and exit code 1 instead: the run cannot go on without the
/// peer, and its outputs are recomputed from the start by the same command (every
/// output file is rewritten from scratch, so nothing is lost or doubled). Other panics
/// (bugs) keep the default report.
fn exit_when_a_peer_is_lost(out: Option<Arc<OutDir>>) {
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
        if run::SETTINGS_MISMATCH.load(Ordering::SeqCst) {
            // The peer stopped because the settings differ: this process says so itself.
            loop {
                std::thread::park();
            }
        }
        static REPORTED: AtomicBool = AtomicBool::new(false);
        if !REPORTED.swap(true, Ordering::SeqCst) {
            let cause = message.strip_prefix("timely communication error: ").unwrap_or("it broke off mid-message");
            let message = format!(
                "lost the connection to another process of this run ({cause}); \
                 stopping: start every process again with the same command to rewrite the outputs"
            );
            eprintln!("shopflow: error: {message}");
            if let Some(out) = &out {
                out.failed(&message, false);
            }
        }
        std::process::exit(1);
    }));
}

fn run_config(args: &RunArgs) -> Result<RunConfig, String> {
    let format = match args.format {
        FormatArg::Native => Format::Native,
        FormatArg::Userbehavior => Format::UserBehavior,
    };
    let sample = args.events.is_empty();
    let (events, catalog) = if sample {
        match format {
            Format::Native => (
                vec![PathBuf::from("data/events.csv")],
                Some(args.catalog.clone().unwrap_or("data/catalog.csv".into())),
            ),
            Format::UserBehavior => (vec![PathBuf::from("data/UserBehavior.csv")], args.catalog.clone()),
        }
    } else {
        (args.events.clone(), args.catalog.clone())
    };
    if format == Format::UserBehavior && catalog.is_some() {
        return Err("--catalog is for the native format; UserBehavior rows carry their own category".into());
    }

    let mut sources: Vec<SourceSpec> =
        events.into_iter().map(|path| SourceSpec::new(path, SourceKind::Events(format))).collect();
    sources.extend(catalog.map(|path| SourceSpec::new(path, SourceKind::Catalog)));
    let checks = TsChecks {
        min_ms: args.min_ts.unwrap_or(0),
        max_ms: args.max_ts.unwrap_or(u64::MAX),
        jump_warn_ms: args.jump_warn_ms,
    };
    if checks.min_ms > checks.max_ms {
        return Err(format!("--min-ts {} is after --max-ts {}", checks.min_ms, checks.max_ms));
    }
    for spec in &mut sources {
        spec.checks = checks;
    }
    for spec in &sources {
        source::check(spec, args.follow)?;
    }
    let rules = match &args.rules {
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p.clone()),
        None => {
            let default = match format {
                Format::Native => "data/recall_rules.toml",
                Format::UserBehavior => "data/recall_rules_taobao.toml",
            };
            Some(PathBuf::from(default)).filter(|p| sample && p.exists())
        }
    };
    let config = ConfigFiles::load(rules, &args.base, sources.len() as u32)?;
    let mut outputs = args.outputs.clone();
    if outputs.is_empty() {
        outputs = dataflows::ALL.iter().map(|s| s.to_string()).collect();
    }
    outputs.sort_by_key(|o| dataflows::ALL.iter().position(|a| a == o));
    outputs.dedup();
    let need_catalog: Vec<&str> = outputs.iter().map(String::as_str).filter(|o| dataflows::needs_catalog(o)).collect();
    let mut warnings = Vec::new();
    if format == Format::Native && !sources.iter().any(|s| s.kind == SourceKind::Catalog) && !need_catalog.is_empty() {
        warnings.push(format!(
            "--events without --catalog: no item has a catalog row (category, online, ad), so {} are empty \
             (untagged counts the events)",
            need_catalog.join(", ")
        ));
    }
    Ok(RunConfig {
        arranged: Default::default(),
        sink_log: Arc::new(sinks::SinkLog::new(args.latency_log.is_some())),
        process: args.process,
        warnings,
        processes: args.processes,
        settings: settings(args, &sources, &config, &outputs),
        sources,
        out_dir: args.out.clone(),
        epoch_ms: args.epoch_ms,
        lateness_ms: args.lateness_ms,
        outputs,
        sink: args.sink,
        envelope: args.envelope,
        strict: args.strict,
        batch_lines: args.batch_lines,
        pace: match (args.rate, args.speed) {
            (Some(rate), _) => Pace::Rate(rate),
            (None, Some(speed)) => Pace::Speed(speed),
            (None, None) => Pace::Unpaced,
        },
        follow: args.follow,
        progress: !args.quiet,
        stop: Arc::new(AtomicBool::new(false)),
        failure: Arc::default(),
        config,
        latency_log: args.latency_log.clone(),
        params: Params {
            epoch_ms: args.epoch_ms,
            ads: AdParams {
                refresh_ms: args.ad_refresh_ms,
                min_impressions: args.ad_min_impressions.min(i64::MAX as u64) as i64,
                min_pctr: args.ad_min_pctr,
                set_size: args.ad_set_size as usize,
            },
        },
    })
}

/// The flags that decide the results, as `(flag, value)` pairs: every process of a run
/// must agree on them (file paths may differ between hosts; their number and kind not).
fn settings(args: &RunArgs, sources: &[SourceSpec], config: &ConfigFiles, outputs: &[String]) -> Vec<(String, String)> {
    let kinds: Vec<String> = sources.iter().map(|s| format!("{:?}", s.kind)).collect();
    let rules = format!("{:?}", config.rules);
    let bases: Vec<String> =
        config.bases.iter().map(|(_, _, b)| format!("cut-off {} with {} rows", b.cutoff, b.rows.len())).collect();
    [
        ("input files", kinds.join(" ")),
        ("--epoch-ms", args.epoch_ms.to_string()),
        ("--lateness-ms", args.lateness_ms.to_string()),
        ("--min-ts", format!("{:?}", args.min_ts)),
        ("--max-ts", format!("{:?}", args.max_ts)),
        ("--outputs", outputs.join(",")),
        ("--sink", args.sink.name().to_string()),
        ("--envelope", args.envelope.name().to_string()),
        ("--rules", format!("{} rule(s), digest {:016x}", config.rules.len(), fnv1a(rules.as_bytes()))),
        ("--base", bases.join("; ")),
        ("--ad-refresh-ms", args.ad_refresh_ms.to_string()),
        ("--ad-min-impressions", args.ad_min_impressions.to_string()),
        ("--ad-min-pctr", args.ad_min_pctr.to_string()),
        ("--ad-set-size", args.ad_set_size.to_string()),
        ("--strict", args.strict.to_string()),
        ("--follow", args.follow.to_string()),
        ("--workers", args.workers.to_string()),
        ("--processes", args.processes.to_string()),
        ("version", env!("CARGO_PKG_VERSION").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// FNV-1a: a digest that is the same in every process and build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn timely_config(args: &RunArgs) -> Result<timely::Config, String> {
    let threads = args.workers as usize;
    let processes = args.processes as usize;
    let process = args.process as usize;
    if process >= processes {
        return Err(format!("--process {process} must be less than --processes {processes}"));
    }
    let communication = if processes > 1 || args.hostfile.is_some() {
        let addresses = match &args.hostfile {
            Some(path) => read_hostfile(path, processes)?,
            None => (0..processes).map(|i| format!("localhost:{}", 2101 + i)).collect(),
        };
        timely::CommunicationConfig::Cluster { threads, process, addresses, report: false, zerocopy: false }
    } else if threads > 1 {
        timely::CommunicationConfig::Process(threads)
    } else {
        timely::CommunicationConfig::Thread
    };
    Ok(timely::Config { communication, worker: timely::WorkerConfig::default() })
}

fn read_hostfile(path: &Path, processes: usize) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read hostfile {}: {e}", path.display()))?;
    let hosts: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if hosts.len() < processes {
        return Err(format!("hostfile {} lists {} hosts, --processes is {processes}", path.display(), hosts.len()));
    }
    Ok(hosts.into_iter().take(processes).collect())
}

/// The one-screen run summary.
pub fn summary(cfg: &RunConfig, r: &RunReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "shopflow run: {} worker(s), epoch {} ms, lateness {} ms",
        r.workers, cfg.epoch_ms, cfg.lateness_ms
    );
    let width = r.files.iter().map(|f| f.path.display().to_string().len()).max().unwrap_or(4).max(4);
    let _ = writeln!(s, "  {:<width$} {:>12} {:>12} {:>10} {:>10}", "file", "rows", "valid", "rejected", "late");
    for f in &r.files {
        let _ = writeln!(
            s,
            "  {:<width$} {:>12} {:>12} {:>10} {:>10}",
            f.path.display(),
            f.lines,
            f.valid,
            f.rejected,
            f.late
        );
    }
    let events: u64 = cfg
        .sources
        .iter()
        .zip(&r.files)
        .filter(|(s, _)| matches!(s.kind, SourceKind::Events(_)))
        .map(|(_, f)| f.valid)
        .sum();
    let rejected: u64 = r.files.iter().map(|f| f.rejected).sum();
    let span = match (r.first_epoch, r.last_epoch) {
        (Some(a), Some(b)) => format!(", from {a} to {b} ms"),
        _ => String::new(),
    };
    let _ = writeln!(s, "  epochs with changes: {}{span}", r.epochs);
    if let Some(cutoff) = r.stopped_at {
        let _ = writeln!(
            s,
            "  stopped early: outputs are complete for every time < {cutoff} ms; later epochs were not written"
        );
    }
    let _ = writeln!(
        s,
        "  outputs: {} change stream(s) ({}, {} envelope) in {}: {} rows, writing took {:.2} s",
        cfg.outputs.len(),
        cfg.sink.name(),
        cfg.envelope.name(),
        cfg.out_dir.display(),
        r.rows_written,
        r.write_time.as_secs_f64()
    );
    if let Some(log) = r.written.get("ads_curated") {
        let (refreshes, full) =
            dataflows::ads_curated::full_refresh_rows(&log.net, cfg.params.ads.refresh_ms, cfg.params.epoch_ms);
        let _ = writeln!(
            s,
            "  ads_curated: {refreshes} refreshes; a full re-send at each would write {full} rows, changes written: {} ({:.1} %)",
            log.rows,
            100.0 * log.rows as f64 / full.max(1) as f64
        );
    }
    let a = &r.arranged;
    let largest: Vec<String> = a
        .arrangements
        .iter()
        .take(3)
        .map(|(name, n, _)| format!("{} {n}", name.trim_start_matches("Arrange: ")))
        .collect();
    let peak = match cfg.processes {
        1 => String::new(),
        n => format!(" (the sum of the {n} processes' peaks)"),
    };
    let _ = writeln!(
        s,
        "  arranged state at end of input: {} updates in {} arrangements, {:.1} MiB as (key, value, time, diff) updates; peak {} updates{peak}; largest: {}",
        a.updates,
        a.arrangements.len(),
        a.bytes as f64 / (1 << 20) as f64,
        a.peak_updates,
        if largest.is_empty() { "-".to_string() } else { largest.join(", ") }
    );
    let _ = writeln!(s, "  rejected rows: {rejected} (see {})", cfg.out_dir.join("rejected.csv").display());
    let secs = r.wall.as_secs_f64();
    let _ = writeln!(s, "  wall time: {secs:.2} s, {:.0} events/s", events as f64 / secs.max(1e-9));
    s
}

/// `shopflow gen`.
pub fn gen(args: GenArgs) -> Result<(), String> {
    let mut cfg = GenConfig::default_with(args.events, args.seed, args.out.clone());
    cfg.format = match args.format {
        FormatArg::Native => GenFormat::Native,
        FormatArg::Userbehavior => GenFormat::UserBehavior,
    };
    if let Some(v) = args.users {
        cfg.users = v;
    }
    if let Some(v) = args.items {
        // Categories and sellers scale from items unless given.
        cfg.items = v;
        cfg.categories = (v / 200).clamp(5, 20_000);
        cfg.sellers = (v / 20).max(3);
    }
    if let Some(v) = args.categories {
        cfg.categories = v;
    }
    if let Some(v) = args.sellers {
        cfg.sellers = v;
    }
    if let Some(v) = args.days {
        cfg.days = v;
    }
    if let Some(v) = args.late_fraction {
        cfg.late_fraction = v;
    }
    cfg.sale_hour = args.sale_hour;
    cfg.bad_rows = args.bad_rows;
    cfg.progress = true;
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| format!("cannot create {}: {e}", cfg.out_dir.display()))?;
    let started = std::time::Instant::now();
    let summary =
        generator::generate(&cfg).map_err(|e| format!("cannot generate into {}: {e}", cfg.out_dir.display()))?;
    eprintln!(
        "shopflow gen: {} events, {} catalog rows, {} bad rows, {} out of order in {:.2} s -> {}",
        summary.events_written,
        summary.catalog_rows,
        summary.bad_rows,
        summary.late_events,
        started.elapsed().as_secs_f64(),
        summary.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
