//! `shopflow sort`: orders an events file by timestamp in bounded memory, so that a file
//! grouped by user (the public Taobao UserBehavior.csv) can be read as a stream.
//!
//! An external merge sort: lines are read into a buffer of at most `--memory-mb`; each
//! full buffer is sorted and written as a run to a temporary file beside the output;
//! the runs are then merged k ways (in several passes when there are more than
//! [`MAX_FAN_IN`]). The sort is stable: lines with equal timestamps keep their order in
//! the file (within a run by the sort, across runs by the run's position; a pass merges
//! consecutive runs). A line whose timestamp field is not a number goes to the end, after
//! every timestamped line, in file order (`shopflow run` rejects it with the reason). A
//! native file's header stays first. Lines longer than [`MAX_LINE_BYTES`](platform::source::MAX_LINE_BYTES) are kept cut
//! to their first `MAX_LINE_BYTES + 1` bytes (`shopflow run` rejects them either way), so
//! memory stays bounded. The output is written beside its place and renamed there at the
//! end, so it is never seen half-written; the temporary files are removed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use platform::source::{check_header, read_capped_line, timestamp_field, SourceKind};

/// The most runs merged at once (each holds an open file and a read buffer).
pub const MAX_FAN_IN: usize = 64;

/// Bytes a buffered line costs besides its text: its (timestamp, start, end) entry.
const ENTRY_BYTES: usize = 24;

/// What `shopflow sort` is asked to do.
#[derive(Clone, Debug)]
pub struct SortConfig {
    pub kind: SourceKind,
    /// The input (`-`: standard input).
    pub input: PathBuf,
    pub output: PathBuf,
    /// The most bytes of lines (and their index) held in memory at once.
    pub memory_bytes: usize,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What a sort did.
#[derive(Debug, Default, PartialEq)]
pub struct SortReport {
    /// Data lines (without a header).
    pub lines: u64,
    /// Lines without a numeric timestamp (placed last).
    pub untimed: u64,
    /// Sorted runs written to temporary files (0: the input fit in memory).
    pub runs: usize,
}

/// Sorts `cfg.input` into `cfg.output`; the error is one line.
pub fn sort(cfg: &SortConfig) -> Result<SortReport, String> {
    let dir = cfg.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = cfg.output.file_name().map_or_else(|| "sorted".into(), |n| n.to_string_lossy().into_owned());
    let mut temps =
        Temps { dir: dir.to_path_buf(), stem: format!(".{name}.sort-{}", std::process::id()), paths: Vec::new() };
    let (input, size) = open_input(&cfg.input)?;
    let bar = progress_bar(cfg.progress, size);
    let report = sort_lines(cfg, input, &bar, &mut temps)?;
    bar.finish_and_clear();
    Ok(report)
}

/// Temporary files (runs, the output before its rename), removed when dropped.
struct Temps {
    dir: PathBuf,
    stem: String,
    paths: Vec<PathBuf>,
}

impl Temps {
    fn next(&mut self) -> PathBuf {
        let path = self.dir.join(format!("{}-{}", self.stem, self.paths.len()));
        self.paths.push(path.clone());
        path
    }
}

impl Drop for Temps {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn open_input(path: &Path) -> Result<(Box<dyn BufRead>, Option<u64>), String> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(BufReader::with_capacity(1 << 20, io::stdin())), None));
    }
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory, not a file", path.display()));
    }
    Ok((Box::new(BufReader::with_capacity(1 << 20, file)), meta.is_file().then_some(meta.len())))
}

fn progress_bar(enabled: bool, size: Option<u64>) -> ProgressBar {
    if !enabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match size {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = "{spinner} sort [{elapsed_precise}] {msg} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message("reading");
    bar
}

/// Reads one line (without its line end) into `line`, at most `MAX_LINE_BYTES + 1`
/// bytes of it; `false` at the end of the input.
fn read_line(input: &mut dyn BufRead, line: &mut Vec<u8>, bar: &ProgressBar) -> io::Result<bool> {
    line.clear();
    let n = read_capped_line(input, line)?;
    if n == 0 {
        return Ok(false);
    }
    bar.inc(n as u64);
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(true)
}

/// The sort key of a line: its timestamp in ms; a line without one sorts last.
fn key(line: &[u8], kind: SourceKind) -> u64 {
    timestamp_field(line, kind).unwrap_or(u64::MAX)
}

/// Lines held in memory: their text end to end, and (key, start, end) per line.
#[derive(Default)]
struct Buffer {
    text: Vec<u8>,
    index: Vec<(u64, usize, usize)>,
}

impl Buffer {
    fn bytes(&self) -> usize {
        self.text.len() + self.index.len() * ENTRY_BYTES
    }

    fn push(&mut self, key: u64, line: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(line);
        self.index.push((key, start, self.text.len()));
    }

    /// Writes the lines in (key, file order) order and empties the buffer.
    fn drain_sorted(&mut self, out: &mut impl Write) -> io::Result<()> {
        // Stable: equal keys keep their order.
        self.index.sort_by_key(|&(k, _, _)| k);
        for &(_, start, end) in &self.index {
            out.write_all(&self.text[start..end])?;
            out.write_all(b"\n")?;
        }
        self.text.clear();
        self.index.clear();
        Ok(())
    }
}

fn sort_lines(
    cfg: &SortConfig,
    mut input: Box<dyn BufRead>,
    bar: &ProgressBar,
    temps: &mut Temps,
) -> Result<SortReport, String> {
    let shown =
        if cfg.input.as_os_str() == "-" { "standard input".to_string() } else { cfg.input.display().to_string() };
    let unreadable = |e: io::Error| format!("cannot read {shown}: {e}");
    let mut line = Vec::new();
    let header = match cfg.kind.header() {
        Some(expected) => {
            read_line(&mut *input, &mut line, bar).map_err(unreadable)?;
            check_header(&shown, expected, &line)?;
            Some(expected)
        }
        None => None,
    };
    let mut report = SortReport::default();
    let mut buffer = Buffer::default();
    let mut runs: Vec<PathBuf> = Vec::new();
    while read_line(&mut *input, &mut line, bar).map_err(unreadable)? {
        let k = key(&line, cfg.kind);
        report.lines += 1;
        report.untimed += (k == u64::MAX) as u64;
        if !buffer.index.is_empty() && buffer.bytes() + line.len() + ENTRY_BYTES > cfg.memory_bytes {
            let path = temps.next();
            write_file(&path, None, |w| buffer.drain_sorted(w))?;
            runs.push(path);
        }
        buffer.push(k, &line);
    }
    report.runs = runs.len();
    let output = temps.next();
    if runs.is_empty() {
        write_file(&output, header, |w| buffer.drain_sorted(w))?;
    } else {
        let path = temps.next();
        write_file(&path, None, |w| buffer.drain_sorted(w))?;
        runs.push(path);
        drop(buffer);
        bar.set_message("merging");
        bar.set_position(0);
        bar.set_length(report.lines);
        // Merge consecutive runs until few enough are left, then into the output.
        while runs.len() > MAX_FAN_IN {
            let merged = temps.next();
            merge(cfg, &runs[..MAX_FAN_IN], &merged, None, &ProgressBar::hidden())?;
            for done in runs.drain(..MAX_FAN_IN) {
                let _ = std::fs::remove_file(done);
            }
            runs.insert(0, merged);
        }
        merge(cfg, &runs, &output, header, bar)?;
    }
    std::fs::rename(&output, &cfg.output).map_err(|e| format!("cannot write {}: {e}", cfg.output.display()))?;
    Ok(report)
}

/// Creates `path`, writes the header if any and what `body` writes, and flushes.
fn write_file(
    path: &Path,
    header: Option<&str>,
    body: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), String> {
    let write = || -> io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
        if let Some(h) = header {
            writeln!(w, "{h}")?;
        }
        body(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_data()
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Merges sorted runs (consecutive parts of the input, in order) into `into`: the least
/// key first, the earlier run first among equal keys.
fn merge(
    cfg: &SortConfig,
    runs: &[PathBuf],
    into: &Path,
    header: Option<&str>,
    bar: &ProgressBar,
) -> Result<(), String> {
    let capacity = (cfg.memory_bytes / (runs.len() + 1)).clamp(64 << 10, 8 << 20);
    let mut readers = Vec::with_capacity(runs.len());
    for path in runs {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        readers.push(BufReader::with_capacity(capacity, file));
    }
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); runs.len()];
    let mut heap = BinaryHeap::with_capacity(runs.len());
    let hidden = ProgressBar::hidden();
    let mut next = |i: usize, lines: &mut Vec<Vec<u8>>, heap: &mut BinaryHeap<Reverse<(u64, usize)>>| {
        let more = read_line(&mut readers[i], &mut lines[i], &hidden)
            .map_err(|e| format!("cannot read {}: {e}", runs[i].display()))?;
        if more {
            heap.push(Reverse((key(&lines[i], cfg.kind), i)));
        }
        Ok::<(), String>(())
    };
    for i in 0..runs.len() {
        next(i, &mut lines, &mut heap)?;
    }
    let mut failure = None;
    write_file(into, header, |w| {
        while let Some(Reverse((_, i))) = heap.pop() {
            w.write_all(&lines[i])?;
            w.write_all(b"\n")?;
            bar.inc(1);
            if let Err(e) = next(i, &mut lines, &mut heap) {
                failure = Some(e);
                break;
            }
        }
        Ok(())
    })?;
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::source::Format;

    /// Many runs (several merge passes), ties, untimed lines: the same as a stable
    /// in-memory sort.
    #[test]
    fn external_sort_equals_a_stable_sort() {
        let dir = std::env::temp_dir().join(format!("shopflow-sort-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines: Vec<String> = (0..6000u64)
            .map(|i| match i % 97 {
                0 => format!("{i},x,1,pv,notime"),
                _ => format!("{i},{},1,pv,{}", i % 13, (i * 7919) % 500),
            })
            .collect();
        let input = dir.join("in.csv");
        std::fs::write(&input, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        let kind = SourceKind::Events(Format::UserBehavior);
        let cfg = SortConfig { kind, input, output: dir.join("out.csv"), memory_bytes: 1500, progress: false };
        let report = sort(&cfg).unwrap();
        assert!(report.runs > MAX_FAN_IN * 2, "{report:?}");
        assert_eq!((report.lines, report.untimed), (6000, 62));
        let mut expected = lines.clone();
        expected.sort_by_key(|l| key(l.as_bytes(), kind));
        let got = std::fs::read_to_string(&cfg.output).unwrap();
        assert_eq!(got.lines().collect::<Vec<_>>(), expected);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "temporary files left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
