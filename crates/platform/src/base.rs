//! Batch bases for `item_display_stats`: snapshots a batch job computed up to a cut-off,
//! merged with the events after it (README, "Case 1").
//!
//! A base file is CSV with the header [`HEADER`]; every row holds one item's 30-day
//! numbers up to `cutoff_ms` (the same in every row). Base b takes effect at
//! `eff = ceil_E(cutoff)`; at time t the active base is the one with the greatest
//! `(eff, cutoff, order)` among those with `eff <= t` not yet retired. The active base's
//! rows and its cut-off are input collections; [`Bases`] turns the set of bases into
//! their updates, and a replacement (a base file edited under `--follow`) into the
//! updates that change the timeline from the input frontier on.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{ItemId, Time};
use crate::source::{num, Rejected, MAX_AMOUNT_CENTS};
use operators::windows::round_up;

pub const HEADER: &str = "cutoff_ms,item_id,sales_30d,units_30d,gmv_30d_cents,buyers_30d";

/// One item's batch numbers up to `cutoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BaseRow {
    pub cutoff: Time,
    pub item: ItemId,
    pub sales: i64,
    pub units: i64,
    pub gmv_cents: i64,
    pub buyers: i64,
}

/// An update of the base inputs: a row of the active base, or its cut-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseUpdate {
    Row(BaseRow),
    Cutoff(Time),
}

/// A parsed base file.
#[derive(Clone, Debug)]
pub struct BaseFile {
    pub cutoff: Time,
    pub rows: Vec<BaseRow>,
    pub rejected: Vec<Rejected>,
    pub lines: u64,
    /// Rows that are valid but unlikely (more buyers than orders), one line each.
    pub warnings: Vec<String>,
}

impl BaseFile {
    /// Prints the warnings on stderr.
    pub fn warn(&self) {
        for w in &self.warnings {
            eprintln!("shopflow: warning: {w}");
        }
    }
}

/// Reads a base file. Malformed rows are returned as rejected (file index `file`); a
/// missing file, a wrong header or no valid row is an error.
pub fn load(path: &Path, file: u32) -> Result<BaseFile, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read base {}: {e}", path.display()))?;
    from_bytes(path, &text, file)
}

/// Parses the content of base file `path` (already read).
pub fn from_bytes(path: &Path, text: &[u8], file: u32) -> Result<BaseFile, String> {
    let mut base = parse(text, file).map_err(|e| format!("base {}: {e}", path.display()))?;
    for w in &mut base.warnings {
        *w = format!("base {}:{w}", path.display());
    }
    Ok(base)
}

fn parse(text: &[u8], file: u32) -> Result<BaseFile, String> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut lines = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    if lines.next() != Some(HEADER.as_bytes()) {
        return Err(format!("the first line must be `{HEADER}`"));
    }
    let mut out = BaseFile { cutoff: 0, rows: Vec::new(), rejected: Vec::new(), lines: 1, warnings: Vec::new() };
    let mut cutoff = None;
    let mut seen = rustc_hash::FxHashSet::default();
    for (i, line) in lines.enumerate() {
        let number = i as u64 + 2;
        out.lines = number;
        match row(line).and_then(|r| {
            if *cutoff.get_or_insert(r.cutoff) != r.cutoff {
                Err("cutoff_ms differs from the file's first row".to_string())
            } else if !seen.insert(r.item) {
                Err("duplicate item".to_string())
            } else {
                Ok(r)
            }
        }) {
            Ok(r) => {
                if r.buyers > r.sales {
                    out.warnings.push(format!(
                        "{number}: buyers_30d {} is more than sales_30d {} (every buyer placed an order)",
                        r.buyers, r.sales
                    ));
                }
                out.rows.push(r)
            }
            Err(reason) => out.rejected.push(Rejected {
                file,
                partition: None,
                line: number,
                reason,
                raw: String::from_utf8_lossy(line).into_owned(),
            }),
        }
    }
    out.cutoff = cutoff.ok_or("no valid row (a base needs its cut-off)")?;
    Ok(out)
}

fn row(line: &[u8]) -> Result<BaseRow, String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
    if fields.len() != 6 {
        return Err(format!("expected 6 fields, found {}", fields.len()));
    }
    let value = |i: usize, name: &str| -> Result<i64, String> {
        match num(fields[i], name)? {
            v if v > MAX_AMOUNT_CENTS => Err(format!("{name}: out of range (max {MAX_AMOUNT_CENTS})")),
            v => Ok(v as i64),
        }
    };
    Ok(BaseRow {
        cutoff: num(fields[0], "cutoff_ms")?,
        item: num(fields[1], "item_id")?,
        sales: value(2, "sales_30d")?,
        units: value(3, "units_30d")?,
        gmv_cents: value(4, "gmv_30d_cents")?,
        buyers: value(5, "buyers_30d")?,
    })
}

/// One version of a base file in the timeline.
#[derive(Clone, Debug)]
struct Entry {
    eff: Time,
    cutoff: Time,
    /// The `--base` flag's position: breaks ties.
    order: usize,
    rows: Vec<BaseRow>,
    /// Replaced by a newer version of the same file from this time on.
    retired: Option<Time>,
}

/// Every base version of a run, and which one is active when.
#[derive(Clone, Debug, Default)]
pub struct Bases {
    entries: Vec<Entry>,
}

impl Bases {
    /// Adds base file number `order` taking effect no earlier than `from`, retiring the
    /// previous version of that file at the same time. Returns the updates (time >= `from`)
    /// that turn the old timeline into the new one.
    pub fn add(&mut self, order: usize, file: &BaseFile, epoch_ms: u64, from: Time) -> Vec<(BaseUpdate, Time, isize)> {
        let eff = round_up(file.cutoff, epoch_ms).max(from);
        let old = self.updates_from(from);
        for e in self.entries.iter_mut().filter(|e| e.order == order && e.retired.is_none()) {
            e.retired = Some(eff);
        }
        self.entries.push(Entry { eff, cutoff: file.cutoff, order, rows: file.rows.clone(), retired: None });
        let mut updates = self.updates_from(from);
        updates.extend(old.into_iter().map(|(u, t, r)| (u, t, -r)));
        updates
    }

    /// The active entry at `t`.
    fn active(&self, t: Time) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.eff <= t && e.retired.is_none_or(|r| r > t))
            .max_by_key(|e| (e.eff, e.cutoff, e.order))
    }

    /// The updates of the timeline at times >= `from`, the state just before `from` taken
    /// as given (so the first are the difference between the state at `from` and before).
    fn updates_from(&self, from: Time) -> Vec<(BaseUpdate, Time, isize)> {
        let mut times: Vec<Time> =
            self.entries.iter().flat_map(|e| [Some(e.eff), e.retired]).flatten().filter(|&t| t > from).collect();
        times.push(from);
        times.sort_unstable();
        times.dedup();
        let mut out = Vec::new();
        let mut before = from.checked_sub(1).and_then(|t| self.active(t));
        for t in times {
            let now = self.active(t);
            let same = match (before, now) {
                (Some(a), Some(b)) => std::ptr::eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                for (e, r) in [(before, -1), (now, 1)] {
                    if let Some(e) = e {
                        out.extend(e.rows.iter().map(|row| (BaseUpdate::Row(*row), t, r)));
                        out.push((BaseUpdate::Cutoff(e.cutoff), t, r));
                    }
                }
            }
            before = now;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<BaseFile, String> {
        parse(text.as_bytes(), 9)
    }

    #[test]
    fn parses_and_rejects() {
        let f = file(&format!("{HEADER}\n100,1,2,3,4,1\n100,1,1,1,1,1\n200,2,1,1,1,1\nx\n100,3,1,1,1,1\n")).unwrap();
        assert_eq!(f.cutoff, 100);
        assert_eq!(f.rows.len(), 2);
        let reasons: Vec<(u64, &str)> = f.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (3, "duplicate item"),
                (4, "cutoff_ms differs from the file's first row"),
                (5, "expected 6 fields, found 1")
            ]
        );
        assert!(file("item_id\n").is_err());
        assert!(file(&format!("{HEADER}\n")).is_err());
    }

    #[test]
    fn timeline() {
        let a = file(&format!("{HEADER}\n1000,1,5,5,5,5\n")).unwrap();
        let b = file(&format!("{HEADER}\n3000,1,7,7,7,7\n")).unwrap();
        let mut bases = Bases::default();
        let mut all = bases.add(0, &a, 1000, 0);
        all.extend(bases.add(1, &b, 1000, 0));
        let mut net: std::collections::BTreeMap<(Time, String), isize> = Default::default();
        for (u, t, r) in all {
            *net.entry((t, format!("{u:?}"))).or_default() += r;
        }
        net.retain(|_, r| *r != 0);
        let mut shown: Vec<(Time, isize)> = net.iter().map(|((t, _), r)| (*t, *r)).collect();
        shown.sort();
        // a in at 1000 (row + cutoff), out at 3000, b in at 3000.
        assert_eq!(shown, [(1000, 1), (1000, 1), (3000, -1), (3000, -1), (3000, 1), (3000, 1)]);
        // A new version of b read at 5000 replaces it from 5000 on.
        let b2 = file(&format!("{HEADER}\n4000,1,9,9,9,9\n")).unwrap();
        let ups = bases.add(1, &b2, 1000, 5000);
        assert!(ups.iter().all(|(_, t, _)| *t == 5000));
        assert_eq!(ups.iter().filter(|(_, _, r)| *r == 1).count(), 2);
    }
}
