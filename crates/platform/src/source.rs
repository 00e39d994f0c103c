//! Sources: reading input files, each worker parsing its own share, with per-file
//! event-time watermarks.
//!
//! Every worker scans every line of every file (cheap: a newline search and the
//! timestamp field), so that all workers agree on each file's watermark without
//! talking to each other; only the lines of the worker's own segments are parsed in
//! full. Data line `d` (0-based, after any header) belongs to worker
//! `(d / SEGMENT_LINES) % peers`.
//!
//! Watermark (per file): before a line, `wm = max(timestamp field of earlier lines that
//! parses) - lateness`. A valid row gets logical time `max(epoch(ts), epoch(wm))` and is
//! late when its own epoch was already closed (`epoch(ts) < epoch(wm)`). The outcome
//! depends only on the file's contents, never on the number of workers or on timing.
//!
//! Replay: a reader can hold a line back until the driver says it is due (pacing), and
//! can follow a growing file: at its end it waits for more, and a last line without its
//! newline is not read until the newline arrives. Since every worker scans every line,
//! every worker paces by the same line counts and timestamps.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Behavior, CatalogRow, CategoryId, Event, ItemId, Scene, Time};
use crate::spool::{needs_spool, Spool};

/// Lines per ownership segment (contiguous runs keep parsing cache-friendly).
pub const SEGMENT_LINES: u64 = 1024;

pub const NATIVE_HEADER: &str = "ts_ms,user_id,item_id,scene,behavior,quantity,amount_cents";
pub const CATALOG_HEADER: &str = "ts_ms,op,item_id,category_id,seller_id,price_cents,status,is_ad,ad_bid_cents";
/// The columns of a UserBehavior row (the file has no header line).
pub const USERBEHAVIOR_COLUMNS: &str = "user_id,item_id,category_id,behavior_type,timestamp";

/// The longest line read (bytes, without its newline): a longer one is rejected with
/// its first 200 bytes, so a file without newlines cannot make a reader hold it whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The largest amount one order may carry (10^15 cents). GMV is summed in 128 bits
/// (`Stats::gmv_cents`), exact for more than 2^64 such orders on one key.
pub const MAX_AMOUNT_CENTS: u64 = 1_000_000_000_000_000;

/// The timestamps a run accepts (`--min-ts`, `--max-ts`; both ends included) and the
/// watermark jump it warns about (`--jump-warn-ms`). A row outside the window is rejected
/// and, unlike other malformed rows, does not move the watermark (nor pace a replay): a
/// timestamp in the year 3000 would make every later row late. The decision depends on
/// the timestamp field alone, so every worker (each scans every line) decides the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsChecks {
    pub min_ms: u64,
    pub max_ms: u64,
    pub jump_warn_ms: u64,
}

/// `--jump-warn-ms` by default: a day.
pub const DEFAULT_JUMP_WARN_MS: u64 = 86_400_000;

impl Default for TsChecks {
    fn default() -> TsChecks {
        TsChecks { min_ms: 0, max_ms: u64::MAX, jump_warn_ms: DEFAULT_JUMP_WARN_MS }
    }
}

impl TsChecks {
    pub fn reject(&self, ts: u64) -> Option<String> {
        (ts < self.min_ms || ts > self.max_ms)
            .then(|| format!("ts_ms: outside --min-ts/--max-ts ({ts} not in {}..={})", self.min_ms, self.max_ms))
    }
}

/// Format of an events file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Native,
    UserBehavior,
}

/// What a source file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Events(Format),
    Catalog,
}

impl SourceKind {
    pub fn header(self) -> Option<&'static str> {
        match self {
            SourceKind::Events(Format::Native) => Some(NATIVE_HEADER),
            SourceKind::Events(Format::UserBehavior) => None,
            SourceKind::Catalog => Some(CATALOG_HEADER),
        }
    }

    /// The names of the columns, in order (a UserBehavior file has no header line; these
    /// name its columns in JSON values of a Kafka source).
    pub fn columns(self) -> &'static str {
        self.header().unwrap_or(USERBEHAVIOR_COLUMNS)
    }

    /// 0-based index of the timestamp field.
    fn ts_field(self) -> usize {
        match self {
            SourceKind::Events(Format::UserBehavior) => 4,
            _ => 0,
        }
    }
}

/// One input file.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    pub path: PathBuf,
    pub kind: SourceKind,
    /// Set for a non-regular input (pipe, FIFO, `-`): the spool its bytes are copied to.
    pub spool: Option<Arc<Spool>>,
    pub checks: TsChecks,
}

impl SourceSpec {
    pub fn new(path: PathBuf, kind: SourceKind) -> SourceSpec {
        SourceSpec { path, kind, spool: None, checks: TsChecks::default() }
    }

    /// The path for messages (`standard input` for `-`).
    pub fn display(&self) -> String {
        if self.path.as_os_str() == "-" {
            "standard input".into()
        } else {
            self.path.display().to_string()
        }
    }
}

/// A row that could not be read: where, why, and the raw text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rejected {
    /// Index of the file in the run's source list.
    pub file: u32,
    /// The partition, for a Kafka source (`line` is then the offset).
    pub partition: Option<u32>,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

/// A valid row, parsed.
#[derive(Clone, Debug)]
pub enum Row {
    Event(Event),
    /// A UserBehavior row: an event and the category it names for its item.
    EventWithCategory(Event, CategoryId),
    /// A catalog change: `Some(row)` for an upsert, `None` for a delete.
    Catalog {
        ts_ms: u64,
        item: ItemId,
        row: Option<CatalogRow>,
    },
}

impl Row {
    pub fn ts_ms(&self) -> u64 {
        match self {
            Row::Event(e) | Row::EventWithCategory(e, _) => e.ts_ms,
            Row::Catalog { ts_ms, .. } => *ts_ms,
        }
    }
}

/// Checks that a file can be opened and, for formats with a header, that its first
/// line is the expected header. The error is one line for the user. A
/// first line still without its newline (a followed file being written) is checked by
/// the reader once complete; a non-regular input (a pipe) is not opened here at all:
/// it can be read only once, by its spool.
pub fn check(spec: &SourceSpec, follow: bool) -> Result<(), String> {
    if needs_spool(&spec.path) {
        return Ok(());
    }
    let path = spec.display();
    let file = File::open(&spec.path).map_err(|e| format!("cannot open {path}: {e}"))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(format!("{path} is a directory, not a file"));
    }
    if let Some(header) = spec.kind.header() {
        let mut first = Vec::new();
        BufReader::new(file)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut first)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        if first.last() == Some(&b'\n') || !(follow && matches!(spec.kind, SourceKind::Events(_))) {
            check_header(&path, header, trim_line_end(&first))?;
        }
    }
    Ok(())
}

/// The first line must be the header; the error shows what was found (a byte-order
/// mark spelled out: it is invisible on a terminal).
pub fn check_header(path: &str, header: &str, first: &[u8]) -> Result<(), String> {
    if first == header.as_bytes() {
        return Ok(());
    }
    let found = String::from_utf8_lossy(&first[..first.len().min(200)]).replace('\u{feff}', "\\u{feff}");
    Err(format!("{path}: first line must be the header `{header}`, found `{found}`"))
}

/// Reads the rest of a line into `line` (which may already hold its start), keeping at
/// most `MAX_LINE_BYTES + 1` bytes: the rest of a longer line is read past, and a newline
/// is kept when it had one, so the line counts as complete. Returns the bytes consumed.
pub fn read_capped_line<R: BufRead + ?Sized>(input: &mut R, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let room = (MAX_LINE_BYTES + 1).saturating_sub(line.len()) as u64;
    let mut n = (&mut *input).take(room).read_until(b'\n', line)?;
    if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let m = (&mut *input).take(1 << 20).read_until(b'\n', &mut rest)?;
            n += m;
            if m == 0 {
                break;
            }
            if rest.last() == Some(&b'\n') {
                line.push(b'\n');
                break;
            }
        }
    }
    Ok(n)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Why reading a source could not go on.
#[derive(Debug)]
pub enum SourceError {
    /// The file cannot be read (I/O error, wrong header): the run fails.
    Unreadable(String),
    /// A followed file was truncated or rewritten in place: what was written there
    /// cannot be told apart from what was read. The run stops cleanly and fails.
    Rewritten(String),
}

/// Bytes of the end of the consumed part of a followed file kept to tell, after a
/// wait at its end, that the file still continues them.
const SAMPLE_BYTES: usize = 64;

/// A worker's reader of one file: scans every line, hands over the ones it owns.
pub struct SourceReader {
    pub index: u32,
    kind: SourceKind,
    /// The source as the user named it (for messages).
    display: String,
    /// The path read: the source, or its spool.
    path: PathBuf,
    spool: Option<Arc<Spool>>,
    reader: BufReader<File>,
    buf: Vec<u8>,
    /// The header line is still to come (and to be checked).
    header_pending: bool,
    /// Bytes of the file consumed into complete lines (and `buf`).
    offset: u64,
    /// The last bytes consumed (at most `SAMPLE_BYTES`), ending at `offset`.
    sample: Vec<u8>,
    /// Following, the last read reached the end: check the file before reading on.
    verify: bool,
    /// Physical line number of the last line read (1-based).
    line_no: u64,
    /// Data lines seen so far (lines after the header).
    data_lines: u64,
    /// Greatest timestamp field seen so far (of rows inside the timestamp window).
    max_ts: Option<u64>,
    checks: TsChecks,
    /// A row has moved the watermark by more than `checks.jump_warn_ms` (warned once).
    jumped: bool,
    /// End of file reached (never set when following).
    pub exhausted: bool,
    /// Follow the file as it grows (`tail -f`): end of file is not the end.
    pub follow: bool,
    /// Following, the last read found no complete line (cleared by the caller to poll again).
    pub at_eof: bool,
    /// `buf` holds a complete line not yet handed over (its `due` check said not yet).
    pending: bool,
    /// The path now names another file (rotation): switch to it once `buf` is handed over.
    rotate_after: bool,
}

/// What the reader hands to the worker for each line it owns.
pub enum Line<'a> {
    Valid {
        row: Row,
        line: u64,
        time: Time,
        late: bool,
    },
    /// `partition`: for a Kafka source (`line` is then the offset).
    Rejected {
        line: u64,
        partition: Option<u32>,
        reason: String,
        raw: &'a [u8],
    },
}

/// The identity of an open file (device, inode).
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

impl SourceReader {
    pub fn open(index: u32, spec: &SourceSpec) -> Result<SourceReader, String> {
        let path = spec.spool.as_ref().map_or_else(|| spec.path.clone(), |s| s.path.clone());
        let display = spec.display();
        let file = File::open(&path).map_err(|e| format!("cannot open {display}: {e}"))?;
        Ok(SourceReader {
            index,
            kind: spec.kind,
            display,
            path,
            spool: spec.spool.clone(),
            reader: BufReader::with_capacity(1 << 20, file),
            buf: Vec::with_capacity(256),
            header_pending: spec.kind.header().is_some(),
            offset: 0,
            sample: Vec::with_capacity(SAMPLE_BYTES),
            verify: false,
            line_no: 0,
            data_lines: 0,
            max_ts: None,
            checks: spec.checks,
            jumped: false,
            exhausted: false,
            follow: false,
            at_eof: false,
            pending: false,
            rotate_after: false,
        })
    }

    /// The watermark's epoch: no later row of this file gets a logical time below it.
    pub fn open_epoch(&self, lateness_ms: u64, epoch_ms: u64) -> Time {
        epoch_of(self.max_ts.map(|m| m.saturating_sub(lateness_ms)).unwrap_or(0), epoch_ms)
    }

    /// Greatest timestamp read so far (0 before any).
    pub fn progress(&self) -> u64 {
        self.max_ts.unwrap_or(0)
    }

    /// Physical lines read so far (including a header).
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Data lines read so far (excluding a header).
    pub fn data_lines(&self) -> u64 {
        self.data_lines
    }

    /// Whether this is an events file (not the catalog).
    pub fn is_events(&self) -> bool {
        matches!(self.kind, SourceKind::Events(_))
    }

    /// The file may still grow: it is followed, or its spool is still being filled.
    /// Asked *before* a read: a spool's bytes are all written before it says finished.
    fn may_grow(&self) -> Result<bool, SourceError> {
        match &self.spool {
            Some(spool) if spool.finished() => match spool.error() {
                Some(e) => Err(SourceError::Unreadable(e)),
                None => Ok(false),
            },
            Some(_) => Ok(true),
            None => Ok(self.follow),
        }
    }

    /// Following, after a wait at the end of the file: is the file still the one read,
    /// continuing the bytes read? A new file at the path (rotation, as `tail -F`
    /// follows it) is switched to once the old one is read to its end; a file
    /// truncated or rewritten in place is an error.
    fn verify_followed(&mut self) -> Result<(), SourceError> {
        let unreadable = |e: std::io::Error| SourceError::Unreadable(format!("cannot read {}: {e}", self.display));
        let open = self.reader.get_ref().metadata().map_err(unreadable)?;
        let rewritten = || {
            SourceError::Rewritten(format!(
                "{} was truncated or rewritten while followed (it no longer continues the {} bytes read): \
                 its new rows cannot be told from those read; append to a followed file, or rotate it \
                 (rename it and create a new one)",
                self.display, self.offset
            ))
        };
        if open.len() < self.offset {
            return Err(rewritten());
        }
        // The end of the consumed lines and any partial line after them must be unchanged.
        let expected = [&self.sample[..], &self.buf[..]].concat();
        let mut now = vec![0u8; expected.len()];
        use std::os::unix::fs::FileExt;
        self.reader.get_ref().read_exact_at(&mut now, self.offset - expected.len() as u64).map_err(unreadable)?;
        if now != expected {
            return Err(rewritten());
        }
        // Rotation: another file now has the path, and the old one has nothing more.
        if let Ok(current) = std::fs::metadata(&self.path) {
            if identity(&current) != identity(&open) && open.len() == self.offset {
                self.rotate_after = true;
            }
        }
        Ok(())
    }

    /// Opens the file that now has the path, from its start (a header again).
    fn rotate(&mut self, announce: bool) -> Result<(), SourceError> {
        self.rotate_after = false;
        let file = File::open(&self.path)
            .map_err(|e| SourceError::Unreadable(format!("cannot open {} after its rotation: {e}", self.display)))?;
        self.reader = BufReader::with_capacity(1 << 20, file);
        self.header_pending = self.kind.header().is_some();
        self.offset = 0;
        self.sample.clear();
        if announce {
            eprintln!(
                "shopflow: {} was replaced by a new file (rotation): reading it from its start after line {}",
                self.display, self.line_no
            );
        }
        Ok(())
    }

    /// Reads one line into `buf` (appending to a partial line kept from the last call;
    /// an overlong line is cut, see [`read_capped_line`]).
    fn fill(&mut self) -> Result<(), SourceError> {
        let n = read_capped_line(&mut self.reader, &mut self.buf)
            .map_err(|e| SourceError::Unreadable(format!("cannot read {}: {e}", self.display)))?;
        self.offset += n as u64;
        Ok(())
    }

    /// Reads up to `max_lines` lines; calls `on_line` for each line owned by worker
    /// `index` of `peers`. Sets `exhausted` at end of file.
    ///
    /// Before a line is taken, `due` is asked with its timestamp field (if it parses);
    /// when it says no, the line stays buffered and the call returns: the next call
    /// starts with it (pacing). When following, a line counts only once its newline
    /// is there: at the end of the file the call sets `at_eof` and returns, keeping
    /// a partial last line buffered until the rest of it arrives.
    #[allow(clippy::too_many_arguments)]
    pub fn read_chunk(
        &mut self,
        max_lines: usize,
        worker: usize,
        peers: usize,
        epoch_ms: u64,
        lateness_ms: u64,
        mut due: impl FnMut(Option<u64>) -> bool,
        mut on_line: impl FnMut(Line<'_>),
    ) -> Result<(), SourceError> {
        for _ in 0..max_lines {
            if !self.pending {
                if self.verify && self.spool.is_none() {
                    self.verify = false;
                    self.verify_followed()?;
                }
                let growing = self.may_grow()?;
                self.fill()?;
                let overlong = self.buf.len() > MAX_LINE_BYTES;
                if !overlong && self.buf.last() != Some(&b'\n') {
                    if growing && !self.rotate_after {
                        self.at_eof = true;
                        self.verify = self.follow;
                        return Ok(());
                    }
                    if self.buf.is_empty() {
                        if self.rotate_after {
                            self.rotate(worker == 0)?;
                            continue;
                        }
                        if let (true, Some(header)) = (self.header_pending, self.kind.header()) {
                            return Err(SourceError::Unreadable(format!(
                                "{}: empty: the first line must be the header `{header}`",
                                self.display
                            )));
                        }
                        self.exhausted = true;
                        return Ok(());
                    }
                    // The file's last line, without a final newline.
                }
                self.pending = true;
            }
            if self.header_pending {
                let header = self.kind.header().expect("a pending header");
                check_header(&self.display, header, trim_line_end(&self.buf)).map_err(SourceError::Unreadable)?;
                self.header_pending = false;
                self.line_no += 1;
                self.consumed();
                continue;
            }
            let overlong = self.buf.len() > MAX_LINE_BYTES;
            let line = trim_line_end(&self.buf);
            let field = if overlong { None } else { timestamp_field(line, self.kind) };
            let outside = field.and_then(|t| self.checks.reject(t));
            let ts = field.filter(|_| outside.is_none());
            if !due(ts) {
                return Ok(());
            }
            self.line_no += 1;
            let data_index = self.data_lines;
            self.data_lines += 1;
            let open = self.open_epoch(lateness_ms, epoch_ms);
            if let Some(ts) = ts {
                if let Some(before) = self.max_ts.filter(|&m| ts > m && ts - m > self.checks.jump_warn_ms) {
                    if !std::mem::replace(&mut self.jumped, true) && worker == 0 {
                        self.warn_jump(before, ts);
                    }
                }
                self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
            }
            if ((data_index / SEGMENT_LINES) % peers as u64) as usize == worker {
                if overlong {
                    let reason = format!("line longer than {MAX_LINE_BYTES} bytes");
                    on_line(Line::Rejected { line: self.line_no, partition: None, reason, raw: &line[..200] });
                } else if let Some(reason) = outside {
                    on_line(Line::Rejected { line: self.line_no, partition: None, reason, raw: line });
                } else {
                    match parse(line, self.kind) {
                        Ok(row) => {
                            let own = epoch_of(row.ts_ms(), epoch_ms);
                            on_line(Line::Valid { row, line: self.line_no, time: own.max(open), late: own < open });
                        }
                        Err(reason) => {
                            on_line(Line::Rejected { line: self.line_no, partition: None, reason, raw: line })
                        }
                    }
                }
            }
            self.consumed();
        }
        Ok(())
    }

    /// One line on stderr, once per file: the row just read moved the watermark from
    /// `before` to `ts`, more than `--jump-warn-ms` at once.
    fn warn_jump(&self, before: u64, ts: u64) {
        eprintln!(
            "shopflow: warning: {}:{}: timestamp {ts} ({} UTC) is {:.1} days ahead of every row before it \
             (latest {} UTC): rows more than --lateness-ms behind it now count as late \
             (--min-ts/--max-ts reject implausible timestamps; --jump-warn-ms sets this warning)",
            self.display,
            self.line_no,
            crate::utc::date_time(ts),
            (ts - before) as f64 / 86_400_000.0,
            crate::utc::date_time(before)
        );
    }

    /// The line in `buf` is handed over: clear it (a followed file remembers its end,
    /// for `verify_followed`).
    fn consumed(&mut self) {
        self.pending = false;
        if self.follow {
            let keep = self.buf.len().min(SAMPLE_BYTES);
            self.sample.clear();
            self.sample.extend_from_slice(&self.buf[self.buf.len() - keep..]);
        }
        self.buf.clear();
    }
}

/// The start of the epoch holding `ts`.
#[inline]
pub fn epoch_of(ts: u64, epoch_ms: u64) -> Time {
    ts - ts % epoch_ms
}

/// The timestamp (ms) of a line, if its timestamp field is present and numeric;
/// used for the watermark even when the row is otherwise malformed.
pub fn timestamp_field(line: &[u8], kind: SourceKind) -> Option<u64> {
    let field = line.split(|&b| b == b',').nth(kind.ts_field())?;
    let v = parse_u64(field).ok()?;
    match kind {
        SourceKind::Events(Format::UserBehavior) => v.checked_mul(1000),
        _ => Some(v),
    }
}

/// Parses one line of the given kind.
pub fn parse(line: &[u8], kind: SourceKind) -> Result<Row, String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    let mut fields = [&b""[..]; 9];
    let expected = match kind {
        SourceKind::Events(Format::Native) => 7,
        SourceKind::Events(Format::UserBehavior) => 5,
        SourceKind::Catalog => 9,
    };
    let mut n = 0;
    for f in line.split(|&b| b == b',') {
        if n < fields.len() {
            fields[n] = f;
        }
        n += 1;
    }
    if n != expected {
        return Err(format!("expected {expected} fields, found {n}"));
    }
    match kind {
        SourceKind::Events(Format::Native) => {
            let behavior = Behavior::from_native(fields[4])
                .ok_or_else(|| format!("behavior: unknown `{}`", String::from_utf8_lossy(fields[4])))?;
            Ok(Row::Event(Event {
                ts_ms: num(fields[0], "ts_ms")?,
                user: num(fields[1], "user_id")?,
                item: num(fields[2], "item_id")?,
                scene: Scene::new(fields[3]).map_err(|why| format!("scene: {why}"))?,
                behavior,
                quantity: u32::try_from(num(fields[5], "quantity")?).map_err(|_| "quantity: out of range")?,
                amount_cents: match num(fields[6], "amount_cents")? {
                    a if a > MAX_AMOUNT_CENTS => {
                        return Err(format!("amount_cents: out of range (max {MAX_AMOUNT_CENTS})"))
                    }
                    a => a,
                },
            }))
        }
        SourceKind::Events(Format::UserBehavior) => {
            let behavior = Behavior::from_userbehavior(fields[3])
                .ok_or_else(|| format!("behavior_type: unknown `{}`", String::from_utf8_lossy(fields[3])))?;
            let seconds = num(fields[4], "timestamp")?;
            let event = Event {
                ts_ms: seconds.checked_mul(1000).ok_or("timestamp: out of range")?,
                user: num(fields[0], "user_id")?,
                item: num(fields[1], "item_id")?,
                scene: Scene::new(b"taobao").expect("valid scene"),
                behavior,
                quantity: (behavior == Behavior::Buy) as u32,
                amount_cents: 0,
            };
            Ok(Row::EventWithCategory(event, num(fields[2], "category_id")?))
        }
        SourceKind::Catalog => {
            let ts_ms = num(fields[0], "ts_ms")?;
            let item = num(fields[2], "item_id")?;
            let row = match fields[1] {
                b"delete" => None,
                b"upsert" => Some(CatalogRow {
                    category: num(fields[3], "category_id")?,
                    seller: num(fields[4], "seller_id")?,
                    price_cents: num(fields[5], "price_cents")?,
                    online: match fields[6] {
                        b"online" => true,
                        b"offline" => false,
                        other => return Err(format!("status: unknown `{}`", String::from_utf8_lossy(other))),
                    },
                    is_ad: match fields[7] {
                        b"1" | b"true" => true,
                        b"0" | b"false" => false,
                        other => return Err(format!("is_ad: unknown `{}`", String::from_utf8_lossy(other))),
                    },
                    ad_bid_cents: num(fields[8], "ad_bid_cents")?,
                }),
                other => return Err(format!("op: unknown `{}`", String::from_utf8_lossy(other))),
            };
            Ok(Row::Catalog { ts_ms, item, row })
        }
    }
}

pub(crate) fn num(field: &[u8], name: &str) -> Result<u64, String> {
    parse_u64(field).map_err(|why| format!("{name}: {why}"))
}

/// Unsigned decimal integer; the error says why not.
#[inline]
fn parse_u64(field: &[u8]) -> Result<u64, &'static str> {
    if field.is_empty() {
        return Err("empty");
    }
    if field[0] == b'-' {
        return Err("negative");
    }
    let mut v: u64 = 0;
    for &b in field {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err("not a number");
        }
        v = v.checked_mul(10).and_then(|v| v.checked_add(d as u64)).ok_or("out of range")?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_rows() {
        let k = SourceKind::Events(Format::Native);
        assert!(
            matches!(parse(b"1000,1,2,search,buy,2,500", k), Ok(Row::Event(e)) if e.quantity == 2 && e.amount_cents == 500)
        );
        assert_eq!(parse(b"", k).unwrap_err(), "empty line");
        assert_eq!(parse(b"1,2,3", k).unwrap_err(), "expected 7 fields, found 3");
        assert_eq!(parse(b"1000,1,2,search,like,0,0", k).unwrap_err(), "behavior: unknown `like`");
        assert_eq!(parse(b"1000,-1,2,search,buy,0,0", k).unwrap_err(), "user_id: negative");
        assert_eq!(parse(b"1000,x,2,search,buy,0,0", k).unwrap_err(), "user_id: not a number");
        assert_eq!(parse(b"1000,1,2,,buy,0,0", k).unwrap_err(), "scene: must be 1 to 16 bytes");
        for bad in [&b"\xff"[..], b"\xfe", b"\xc3", b"a\xc3"] {
            let line = [&b"1000,1,2,"[..], bad, b",buy,0,0"].concat();
            assert_eq!(parse(&line, k).unwrap_err(), "scene: not valid UTF-8");
        }
        assert_eq!(
            parse(b"1000,1,2,a\tb,buy,0,0", k).unwrap_err(),
            "scene: must not hold quotes or control characters"
        );
        assert!(
            matches!(parse("1000,1,2,直播,click,0,0".as_bytes(), k), Ok(Row::Event(e)) if e.scene.as_str() == "直播")
        );
        assert_eq!(parse(b"99999999999999999999,1,2,s,buy,0,0", k).unwrap_err(), "ts_ms: out of range");
    }

    #[test]
    fn catalog_and_userbehavior_rows() {
        assert!(matches!(parse(b"5,delete,7,,,,,,", SourceKind::Catalog), Ok(Row::Catalog { item: 7, row: None, .. })));
        assert_eq!(parse(b"5,move,7,1,1,1,online,0,0", SourceKind::Catalog).unwrap_err(), "op: unknown `move`");
        assert_eq!(parse(b"5,upsert,7,1,1,1,gone,0,0", SourceKind::Catalog).unwrap_err(), "status: unknown `gone`");
        let ub = SourceKind::Events(Format::UserBehavior);
        assert!(
            matches!(parse(b"1,2,3,pv,1511544070", ub), Ok(Row::EventWithCategory(e, 3)) if e.behavior == Behavior::Click && e.ts_ms == 1511544070000)
        );
        assert_eq!(parse(b"1,2,3,pv,-5", ub).unwrap_err(), "timestamp: negative");
        assert_eq!(timestamp_field(b"1,2,3,zz,7", ub), Some(7000));
    }
}
