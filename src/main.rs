//! The `shopflow` command: parses a typed configuration first, then runs.
//! Every failure is one line on stderr and exit code 2.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod error;
mod manifest;
mod run;
mod sort;

use cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: the dataflow allocates and frees many small
/// buffers per event (exchange buffers, per-time batches, rows). Every output at 10 M events,
/// paired 3+3: wall A/B 0.92 (0.88–0.95), peak 3.08 against 2.79 GiB (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc returns pages it has not used for a while to the kernel (purging), and a state
/// that keeps growing faults them in, zeroed, again: keep them. Every output at 10 M
/// events, paired 3+3: wall A/B 0.89 (0.88–0.97), system time 5.0 vs 11.4 s, peak 3.15 vs
/// 3.08 GiB (BENCHMARKS.md).
fn keep_freed_pages() {
    // SAFETY: sets an allocator option; any thread may, at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

/// `mi_option_purge_delay` (ms; -1: never purge) is not among the crate's constants; in
/// mimalloc.h it directly precedes `mi_option_use_numa_nodes` (checked by the test below).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

#[cfg(test)]
mod tests {
    /// `PURGE_DELAY` names the purge delay: its value before `keep_freed_pages` is the
    /// bundled mimalloc's default for that option (1 000 ms; no neighbouring option has
    /// it), and -1 after.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an allocator option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(get(), 1_000);
        super::keep_freed_pages();
        assert_eq!(get(), -1);
    }
}

fn main() -> ExitCode {
    keep_freed_pages();
    // A file-size limit (`ulimit -f`) makes a write fail with EFBIG, reported with the
    // path, instead of killing the process silently.
    // SAFETY: sets a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // `-h` is the hostfile, as in timely's own binaries: a bare one is a request for help.
            let args: Vec<String> = std::env::args().collect();
            let bare_h = args
                .iter()
                .enumerate()
                .any(|(i, a)| a == "-h" && args.get(i + 1).is_none_or(|next| next.starts_with('-')));
            if bare_h && e.kind() == ErrorKind::InvalidValue {
                eprintln!("shopflow: -h is the hostfile (as in timely); use --help");
                return ExitCode::from(2);
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("shopflow: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(args) => commands::run(args),
        Command::Gen(args) => commands::gen(cli::gen_config(args)),
        Command::Sort(args) => commands::sort(args),
        Command::Recall(args) => commands::recall(args),
        Command::Kafka(command) => commands::kafka(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
