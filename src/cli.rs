//! Command-line interface: typed flags (clap), and the configuration they map to (a run's
//! [`RunConfig`] and timely configuration, the generator's [`GenConfig`]), validated. The
//! commands themselves are in [`crate::commands`].

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use crate::run::{Pace, RunConfig, Serve};
use generator::{GenConfig, GenFormat};
use kafka::source::ValueFormat;
use kafka::KafkaUrl;
use platform::config_inputs::ConfigFiles;
use platform::source::{self, Format, SourceKind, SourceSpec, TsChecks};
use platform::{AdParams, Params};
use serving::store::Store;
use sinks::{Envelope, SinkKind};

use crate::run::reader::KafkaSources;

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
    /// Kafka topics beside a run: create one, produce a file's lines to it, read one.
    #[command(subcommand)]
    Kafka(KafkaCommand),
}

#[derive(Subcommand, Debug)]
pub enum KafkaCommand {
    /// Create a topic (nothing happens if it exists).
    Create {
        /// kafka://HOST:PORT/TOPIC
        url: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        partitions: i32,
        /// Log compaction (keep the latest record per key): for upsert outputs.
        #[arg(long)]
        compact: bool,
    },
    /// Produce each line of FILE (but a header line) as one message, keyed by a column:
    /// lines of one key go to one partition, in order.
    Produce {
        /// kafka://HOST:PORT/TOPIC (it must exist)
        url: String,
        file: PathBuf,
        /// Format of FILE (for the column names; a catalog file is recognised by its header).
        #[arg(long, value_enum, default_value = "native")]
        format: FormatArg,
        /// The column whose value keys each message (default: user_id; item_id for a catalog).
        #[arg(long, value_name = "NAME")]
        key_column: Option<String>,
    },
    /// Print every record of a topic up to its end now, as `partition<TAB>offset<TAB>key<TAB>value`.
    Read {
        /// kafka://HOST:PORT/TOPIC
        url: String,
    },
}

/// `--value-format`: how the messages of a Kafka source hold a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValueFormatArg {
    /// A line of the source's format (as in a file).
    Csv,
    /// A JSON object with the same fields.
    Json,
}

/// `--sink`: a kind, and for Kafka its address.
#[derive(Clone, Debug)]
pub struct SinkArg {
    pub kind: SinkKind,
    pub kafka: Option<KafkaUrl>,
}

fn sink_arg(s: &str) -> std::result::Result<SinkArg, String> {
    if KafkaUrl::is_kafka(s) {
        return Ok(SinkArg { kind: SinkKind::Kafka, kafka: Some(KafkaUrl::parse(s)?) });
    }
    let kind = SinkKind::from_str(s, false)
        .map_err(|_| format!("`{s}`: expected csv, jsonl, stdout or kafka://HOST:PORT/PREFIX"))?;
    Ok(SinkArg { kind, kafka: None })
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
    /// Events file(s) or Kafka topics (kafka://HOST:PORT/TOPIC); repeat the flag or list several. Default: the sample data in data/
    /// (data/events.csv with data/catalog.csv, or data/UserBehavior.csv with --format userbehavior).
    #[arg(long, value_name = "FILE", num_args = 1.., action = ArgAction::Append)]
    pub events: Vec<PathBuf>,
    /// Catalog changes (native format only): a file or kafka://HOST:PORT/TOPIC (keyed by
    /// item, so one item's changes stay in order).
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
    /// Where change streams go: csv, jsonl or stdout, or Kafka topics PREFIX.<output>
    /// (kafka://HOST:PORT/PREFIX; records keyed by the key columns, progress records,
    /// resumed without duplicates after a restart: README "Kafka").
    #[arg(long, value_name = "csv|jsonl|stdout|kafka://HOST:PORT/PREFIX", default_value = "csv", value_parser = sink_arg)]
    pub sink: SinkArg,
    /// Kafka sources: messages are lines of the format (csv) or JSON objects with the same fields.
    #[arg(long, value_enum, default_value = "csv")]
    pub value_format: ValueFormatArg,
    /// Kafka sources under --follow: a partition that sent nothing for MS no longer holds
    /// the outputs back (until it sends again; its rows may then be late).
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub kafka_idle_ms: u64,
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
    /// Everything read since the last step is in flight at once, fanned out by every
    /// operator: a small batch keeps that small (10 M events, every output: 2.8 GiB peak
    /// at 16 384 against 4.0–5.3 at 262 144, same wall time; BENCHMARKS.md).
    #[arg(long, value_name = "N", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..))]
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
    /// Write how long each dataflow operator ran, per worker, to FILE at the end (CSV
    /// `worker,operator,name,address,busy_ms,schedules`, busiest first; README "Where the
    /// time goes"). Each process of a multi-process run writes FILE.<process>.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Serve the outputs over HTTP at ADDR (e.g. 127.0.0.1:8080; port 0 picks one):
    /// lookups as of one complete time, change subscriptions, /metrics, /healthz,
    /// /readyz (README "Serving"). Process 0 serves; give it to every process. After the
    /// input ends the server stays up until Ctrl-C.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<std::net::SocketAddr>,
    /// How many of the most recent change times (over all outputs) `?as_of=` and
    /// `?since=` can ask for.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub serve_retention: u64,
    /// Threads answering HTTP requests (beside the dataflow's workers: on a machine the
    /// workers fill, more server threads answer more lookups and slow the ingest more).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub serve_threads: u64,
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

/// A positive, finite number (`--rate`, `--speed`).
fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("must be a positive number, got `{s}`")),
    }
}

/// A decimal from 0 to 1 with at most 6 decimals, in micro-units (`--ad-min-pctr`).
fn probability(s: &str) -> std::result::Result<i128, String> {
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

pub fn run_config(args: &RunArgs) -> Result<RunConfig> {
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
        return Err(Error::Usage(
            "--catalog is for the native format; UserBehavior rows carry their own category".into(),
        ));
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
        return Err(Error::Usage(format!("--min-ts {} is after --max-ts {}", checks.min_ms, checks.max_ms)));
    }
    for spec in &mut sources {
        spec.checks = checks;
    }
    let mut urls = Vec::with_capacity(sources.len());
    for spec in &sources {
        match spec.path.to_str().filter(|p| KafkaUrl::is_kafka(p)) {
            Some(p) => urls.push(Some(KafkaUrl::parse(p).map_err(Error::Usage)?)),
            None => {
                source::check(spec, args.follow).map_err(Error::Input)?;
                urls.push(None);
            }
        }
    }
    if urls.iter().any(Option::is_some) && (args.rate.is_some() || args.speed.is_some()) {
        return Err(Error::Usage(
            "--rate and --speed pace files; a Kafka source is read as its messages arrive".into(),
        ));
    }
    let kafka = KafkaSources {
        urls,
        format: match args.value_format {
            ValueFormatArg::Csv => ValueFormat::Csv,
            ValueFormatArg::Json => ValueFormat::Json,
        },
        idle: std::time::Duration::from_millis(args.kafka_idle_ms),
    };
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
    let config = ConfigFiles::load(rules, &args.base, sources.len() as u32).map_err(Error::Config)?;
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
    // This process's profile file, made now: one that could not be written at the end
    // would fail a run that is done.
    let profile = match &args.profile {
        None => None,
        Some(path) => {
            let path = crate::run::profile_path(path, args.process, args.processes);
            std::fs::File::create(&path)
                .map_err(|e| Error::Usage(format!("--profile {}: cannot write the profile: {e}", path.display())))?;
            Some((path, Default::default()))
        }
    };
    let serve = match args.serve {
        None => None,
        Some(addr) => {
            let tables = outputs.iter().map(|name| {
                let name = dataflows::ALL.iter().find(|n| *n == name).expect("a known output");
                (*name, dataflows::columns(name).expect("columns"), dataflows::key(name).expect("key"))
            });
            let catalog = serving::store::catalog_schema();
            let tables = tables.chain(std::iter::once((catalog.name, catalog.columns, catalog.key)));
            let store = Arc::new(Store::new(tables, args.serve_retention as usize));
            let feeder = Store::feeder(&store)
                .map_err(|e| Error::Internal(format!("cannot start the serving store's thread: {e}")))?;
            Some(Serve { addr, store, feeder: Arc::new(feeder), threads: args.serve_threads as usize })
        }
    };
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
        sink: args.sink.kind,
        sink_kafka: args.sink.kafka.clone(),
        sink_topics: None,
        kafka,
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
        profile,
        serve,
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
        ("--sink", args.sink.kind.name().to_string()),
        ("--envelope", args.envelope.name().to_string()),
        ("--rules", format!("{} rule(s), digest {:016x}", config.rules.len(), fnv1a(rules.as_bytes()))),
        ("--base", bases.join("; ")),
        ("--ad-refresh-ms", args.ad_refresh_ms.to_string()),
        ("--ad-min-impressions", args.ad_min_impressions.to_string()),
        ("--ad-min-pctr", args.ad_min_pctr.to_string()),
        ("--ad-set-size", args.ad_set_size.to_string()),
        ("--strict", args.strict.to_string()),
        ("--follow", args.follow.to_string()),
        ("--serve", args.serve.is_some().to_string()),
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

pub fn timely_config(args: &RunArgs) -> Result<timely::Config> {
    let threads = args.workers as usize;
    let processes = args.processes as usize;
    let process = args.process as usize;
    if process >= processes {
        return Err(Error::Usage(format!("--process {process} must be less than --processes {processes}")));
    }
    let communication = if processes > 1 || args.hostfile.is_some() {
        let addresses = match &args.hostfile {
            Some(path) => read_hostfile(path, processes).map_err(Error::Input)?,
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

fn read_hostfile(path: &Path, processes: usize) -> std::result::Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read hostfile {}: {e}", path.display()))?;
    let hosts: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if hosts.len() < processes {
        return Err(format!("hostfile {} lists {} hosts, --processes is {processes}", path.display(), hosts.len()));
    }
    Ok(hosts.into_iter().take(processes).collect())
}

/// The generator configuration of `shopflow gen`'s flags.
pub fn gen_config(args: GenArgs) -> GenConfig {
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
    cfg
}
