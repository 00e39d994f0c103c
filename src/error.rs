//! What can end a command, by kind, and the one mapping from a kind to an exit code.
//!
//! | kind | exit code | meaning |
//! |---|---|---|
//! | [`Error::Usage`] | 2 | bad flags or settings; nothing was read |
//! | [`Error::Input`] | 2 | an input cannot be read (missing, unreadable, a malformed row under `--strict`) |
//! | [`Error::Config`] | 2 | a configuration input (recall rules, a batch base) cannot be read or parsed |
//! | [`Error::Sink`] | 2 | an output cannot be written (the run stops at the next epoch) |
//! | [`Error::Internal`] | 2 | an operator met a negative multiplicity (upstream retracted what it never inserted): a bug |
//! | [`Error::SourceBroken`] | 1 | a followed source broke mid-run; the complete epochs were written |
//! | [`Error::Peer`] | 1 | another process of the run was lost; rerun every process with the same command |
//! | [`Error::ClosedPipe`] | 0 | standard output was closed by its reader (`… \| head`): a quiet end |
//!
//! Every error but the last is one line on stderr, `shopflow: error: …`.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Usage(String),
    Input(String),
    Config(String),
    Sink(String),
    Internal(String),
    SourceBroken(String),
    Peer(String),
    ClosedPipe,
}

impl Error {
    /// The process exit code of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Input(_) | Error::Config(_) | Error::Sink(_) | Error::Internal(_) => 2,
            Error::SourceBroken(_) | Error::Peer(_) => 1,
            Error::ClosedPipe => 0,
        }
    }

    /// The one line said on stderr, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Usage(m)
            | Error::Input(m)
            | Error::Config(m)
            | Error::Sink(m)
            | Error::Internal(m)
            | Error::SourceBroken(m)
            | Error::Peer(m) => Some(m),
            Error::ClosedPipe => None,
        }
    }

    /// Says the error on stderr and gives its exit code.
    pub fn report(&self) -> ExitCode {
        if let Some(m) = self.message() {
            eprintln!("shopflow: error: {m}");
        }
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("standard output closed"))
    }
}

/// The result of a command.
pub type Result<T> = std::result::Result<T, Error>;
