//! Reading a change stream back: a CSV file a sink wrote (either envelope), as the
//! differences of each time in time order — what a reader of shopflow's files replays
//! (`shopflow recall` merges `recall_user` from four of them).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::{Change, Envelope};
use platform::model::Time;

/// One output's change file, read time by time.
pub struct ChangeFile {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    envelope: Envelope,
    columns: usize,
    key: usize,
    /// Upsert envelope: the current row of each key (to retract when it is replaced).
    current: HashMap<Vec<String>, Vec<String>>,
    /// The record read ahead: `(time, change, fields)`.
    next: Option<Record>,
    /// The time of the last record read.
    last: Time,
}

/// A record: its time, change (an upsert or delete is resolved against the current rows)
/// and fields (a delete's: the key only).
type Record = (Time, Change, Vec<String>);

impl ChangeFile {
    /// Opens `path`, the change file of an output with these columns, the first `key` of
    /// them its key; the header tells the envelope.
    pub fn open(path: &Path, columns: &[&str], key: usize) -> Result<ChangeFile, String> {
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(BufReader::new(file));
        let mut header = csv::StringRecord::new();
        let read = reader.read_record(&mut header).map_err(|e| format!("{}: {e}", path.display()))?;
        let names: Vec<&str> = header.iter().collect();
        let envelope = match names.get(..2) {
            Some(["time", "diff"]) if read => Envelope::Diff,
            Some(["time", "op"]) if read => Envelope::Upsert,
            _ => return Err(format!("{}: not a change stream (header {:?})", path.display(), names.join(","))),
        };
        if names[2..] != *columns {
            return Err(format!(
                "{}: columns {:?}, expected {:?}",
                path.display(),
                names[2..].join(","),
                columns.join(",")
            ));
        }
        let mut file = ChangeFile {
            path: path.to_path_buf(),
            reader,
            envelope,
            columns: columns.len(),
            key,
            current: HashMap::new(),
            next: None,
            last: 0,
        };
        file.next = file.read()?;
        Ok(file)
    }

    pub fn envelope(&self) -> Envelope {
        self.envelope
    }

    /// The time of the next record (`None`: the file is read).
    pub fn next_time(&self) -> Option<Time> {
        self.next.as_ref().map(|r| r.0)
    }

    /// Every change at `time` (which must be the next time, or none is taken) as
    /// `(row, diff)`: an upsert that replaces a row is its retraction and the new row.
    pub fn take(&mut self, time: Time, into: &mut Vec<(Vec<String>, isize)>) -> Result<(), String> {
        while self.next_time() == Some(time) {
            let (_, change, fields) = self.next.take().expect("a record");
            match change {
                Change::Diff(diff) => into.push((fields, diff)),
                Change::Upsert => {
                    let old = self.current.insert(fields[..self.key].to_vec(), fields.clone());
                    into.extend(old.map(|row| (row, -1)));
                    into.push((fields, 1));
                }
                Change::Delete => into.extend(self.current.remove(&fields).map(|row| (row, -1))),
            }
            self.next = self.read()?;
        }
        Ok(())
    }

    fn read(&mut self) -> Result<Option<Record>, String> {
        let mut record = csv::StringRecord::new();
        if !self.reader.read_record(&mut record).map_err(|e| format!("{}: {e}", self.path.display()))? {
            return Ok(None);
        }
        let line = record.position().map_or(0, |p| p.line());
        let bad = |what: &str| format!("{}:{line}: {what}", self.path.display());
        if record.len() != self.columns + 2 {
            return Err(bad(&format!("{} fields, expected {}", record.len(), self.columns + 2)));
        }
        let time: Time = record[0].parse().map_err(|_| bad("bad time"))?;
        if time < self.last {
            return Err(bad("times not ascending"));
        }
        self.last = time;
        let change = match (self.envelope, &record[1]) {
            (Envelope::Diff, d) => Change::Diff(d.parse::<isize>().map_err(|_| bad("bad diff"))?),
            (Envelope::Upsert, "upsert") => Change::Upsert,
            (Envelope::Upsert, "delete") => Change::Delete,
            (Envelope::Upsert, _) => return Err(bad("op must be upsert or delete")),
        };
        let width = if change == Change::Delete { self.key } else { self.columns };
        Ok(Some((time, change, record.iter().skip(2).take(width).map(String::from).collect())))
    }
}
