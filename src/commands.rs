//! The commands: each takes its configuration from [`crate::cli`] and does its work.

use generator::GenConfig;
use platform::source::{Format, SourceKind};

use crate::cli::{self, FormatArg, RecallArgs, RunArgs, SortArgs};
use crate::error::{Error, Result};

/// `shopflow run`.
pub fn run(args: RunArgs) -> Result<()> {
    let cfg = cli::run_config(&args)?;
    let timely_cfg = cli::timely_config(&args)?;
    crate::run::process::run(cfg, timely_cfg)
}

/// `shopflow recall`.
pub fn recall(args: RecallArgs) -> Result<()> {
    use std::io::Write as _;
    if args.changes {
        let started = std::time::Instant::now();
        let derived = serving::recall::derive(&args.out).map_err(Error::Input)?;
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
    let (state, last) = serving::recall::state_as_of(&args.out, args.at).map_err(Error::Input)?;
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
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::ClosedPipe),
        Err(e) => Err(Error::Sink(format!("cannot write to standard output: {e}"))),
    }
}

/// `shopflow sort`.
pub fn sort(args: SortArgs) -> Result<()> {
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
    let report = crate::sort::sort(&cfg).map_err(Error::Input)?;
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

/// `shopflow gen`.
pub fn gen(cfg: GenConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.out_dir)
        .map_err(|e| Error::Sink(format!("cannot create {}: {e}", cfg.out_dir.display())))?;
    let started = std::time::Instant::now();
    let summary = generator::generate(&cfg)
        .map_err(|e| Error::Sink(format!("cannot generate into {}: {e}", cfg.out_dir.display())))?;
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

/// `shopflow kafka create | produce | read`.
pub fn kafka(command: cli::KafkaCommand) -> Result<()> {
    use std::io::Write as _;
    let url = |s: &str| kafka::KafkaUrl::parse(s).map_err(Error::Usage);
    match command {
        cli::KafkaCommand::Create { url: u, partitions, compact } => {
            let u = url(&u)?;
            kafka::admin::create_topic(&u, partitions, compact).map_err(Error::Input)?;
            eprintln!("shopflow kafka: {u} has {partitions} partition(s) (created unless it existed)");
            Ok(())
        }
        cli::KafkaCommand::Produce { url: u, file, format, key_column } => {
            let u = url(&u)?;
            let kind = match format {
                FormatArg::Native => {
                    let first =
                        std::fs::read(&file).ok().and_then(|b| b.split(|c| *c == b'\n').next().map(<[u8]>::to_vec));
                    let catalog = first.is_some_and(|l| {
                        l.strip_suffix(b"\r").unwrap_or(&l) == platform::source::CATALOG_HEADER.as_bytes()
                    });
                    if catalog {
                        SourceKind::Catalog
                    } else {
                        SourceKind::Events(Format::Native)
                    }
                }
                FormatArg::Userbehavior => SourceKind::Events(Format::UserBehavior),
            };
            let key =
                key_column.unwrap_or_else(|| if kind == SourceKind::Catalog { "item_id" } else { "user_id" }.into());
            if !kind.columns().split(',').any(|c| c == key) {
                return Err(Error::Usage(format!(
                    "--key-column {key}: not a column of this format ({})",
                    kind.columns()
                )));
            }
            let n = kafka::admin::produce_file(&u, &file, kind.header(), kind.columns(), &key).map_err(Error::Input)?;
            eprintln!("shopflow kafka: {n} messages from {} to {u}", file.display());
            Ok(())
        }
        cli::KafkaCommand::Read { url: u } => {
            let records = kafka::admin::read_topic(&url(&u)?).map_err(Error::Input)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match kafka::admin::write_records(&mut out, &records).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::ClosedPipe),
                Err(e) => Err(Error::Sink(format!("cannot write to standard output: {e}"))),
                Ok(()) => Ok(()),
            }
        }
    }
}
