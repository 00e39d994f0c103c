//! Non-regular inputs (a pipe, a FIFO, standard input as `-`): every worker reads every
//! line of every source (see [`crate::source`]), which a stream read once cannot offer.
//! So one thread per process copies such a stream, as it arrives, into a spool file in
//! the output directory; the workers read the spool like a file that grows, until the
//! stream ends. Memory stays bounded; the spool is removed at the end of the run.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Whether `path` must be spooled: `-` (standard input) or anything that is not a
/// regular file (a pipe, a FIFO, a character device, `/dev/stdin`). A path that does
/// not exist is not: opening it reports the error.
pub fn needs_spool(path: &Path) -> bool {
    path.as_os_str() == "-" || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// A stream being copied into a spool file.
#[derive(Debug)]
pub struct Spool {
    /// The spool file the workers read.
    pub path: PathBuf,
    /// Set once the stream has ended (or failed) and every byte is in the file.
    done: AtomicBool,
    /// Why the stream could not be read to its end.
    error: Mutex<Option<String>>,
}

impl Spool {
    /// Creates the spool file `spool` and starts copying `source` into it.
    pub fn start(source: &Path, spool: PathBuf) -> Result<Arc<Spool>, String> {
        let mut out = File::create(&spool).map_err(|e| format!("cannot create {}: {e}", spool.display()))?;
        let state = Arc::new(Spool { path: spool, done: AtomicBool::new(false), error: Mutex::new(None) });
        let shared = state.clone();
        let source = source.to_path_buf();
        std::thread::Builder::new()
            .name("shopflow:spool".into())
            .spawn(move || {
                let result = copy(&source, &mut out);
                if let Err(e) = result {
                    let what =
                        if source.as_os_str() == "-" { "standard input".into() } else { source.display().to_string() };
                    *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("cannot read {what}: {e}"));
                }
                shared.done.store(true, Ordering::Release);
            })
            .map_err(|e| format!("cannot start a thread to read {}: {e}", state.path.display()))?;
        Ok(state)
    }

    /// Every byte of the stream is in the spool file (read this *before* reading the
    /// file: bytes are written before the flag is set).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The stream's read error, once finished.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Copies the stream in chunks as they arrive (a chunk is visible to readers at once).
fn copy(source: &Path, out: &mut File) -> io::Result<()> {
    let mut input: Box<dyn Read> =
        if source.as_os_str() == "-" { Box::new(io::stdin().lock()) } else { Box::new(File::open(source)?) };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
    }
}
