//! Output parsing and comparison.

use super::*;

/// Splits one CSV record (RFC 4180 quoting; no embedded newlines expected).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_q = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_q {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_q = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            in_q = true;
            at_start = false;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    out.push(cur);
    out
}

/// One change: (time, diff, row).
pub type Change = (u64, i64, Vec<String>);

/// A fixed-point decimal `digits.digits` as (integer part, fraction digits padded to 18).
pub fn decimal(s: &str) -> Option<(u128, u128)> {
    let (i, f) = s.split_once('.')?;
    if i.is_empty() || f.is_empty() || f.len() > 18 || !(i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let frac: u128 = format!("{f:0<18}").parse().ok()?;
    Some((i.parse().ok()?, frac))
}

/// The text columns: a scene label, and the lists of `recall_hot`, `recall_i2i` and `recall_user_signals`
/// (space-separated, so a one-member list looks like a number but is text).
const TEXT_COLUMNS: [&str; 6] = ["scene", "items", "neighbors", "categories", "engaged", "bought"];

/// Typed row order: every column but the text ones (`text`: their indexes) is an integer
/// (or a fixed-point decimal, or empty: an absent value, before any number) and compares
/// numerically; text compares as bytes.
pub fn typed_cmp(a: &[String], b: &[String], text: &[usize]) -> std::cmp::Ordering {
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        let numeric = |s: &str| pu64(s).map(|v| (v as u128, 0u128)).or_else(|| decimal(s));
        let o = match (numeric(x), numeric(y)) {
            _ if text.contains(&k) => x.as_bytes().cmp(y.as_bytes()),
            (Some(p), Some(q)) => p.cmp(&q),
            (None, Some(_)) if x.is_empty() => std::cmp::Ordering::Less,
            (Some(_), None) if y.is_empty() => std::cmp::Ordering::Greater,
            _ => x.as_bytes().cmp(y.as_bytes()),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Parses `<out>/<name>.csv` and checks its basic contract: header, column count,
/// times ascending, diff ±1 (never 0), no row twice within one time, rows of one time
/// sorted by row (typed order).
pub fn parse_change_stream(path: &Path, columns: &str) -> Result<Vec<Change>, String> {
    parse_change_stream_with(path, columns, true)
}

/// `parse_change_stream`, with the check that the rows of a time are sorted (typed
/// order) only when `check_order`.
pub fn parse_change_stream_with(path: &Path, columns: &str, check_order: bool) -> Result<Vec<Change>, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let lines = file_lines(&content);
    let header = format!("time,diff,{columns}");
    if lines.first().copied() != Some(header.as_str()) {
        return Err(format!("{}: header {:?}, expected {:?}", path.display(), lines.first(), header));
    }
    let ncols = columns.split(',').count();
    let text: Vec<usize> =
        columns.split(',').enumerate().filter(|(_, c)| TEXT_COLUMNS.contains(c)).map(|(k, _)| k).collect();
    let mut out: Vec<Change> = Vec::new();
    let mut seen_at_time: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut errs = Vec::new();
    for (k, line) in lines.iter().enumerate().skip(1) {
        let f = split_csv(line);
        if f.len() != ncols + 2 {
            errs.push(format!("line {}: {} fields, expected {}: {line:?}", k + 1, f.len(), ncols + 2));
            continue;
        }
        let Ok(time) = f[0].parse::<u64>() else {
            errs.push(format!("line {}: bad time: {line:?}", k + 1));
            continue;
        };
        let Ok(diff) = f[1].parse::<i64>() else {
            errs.push(format!("line {}: bad diff: {line:?}", k + 1));
            continue;
        };
        if diff == 0 {
            errs.push(format!("line {}: diff 0: {line:?}", k + 1));
        } else if diff != 1 && diff != -1 {
            errs.push(format!("line {}: diff {diff} is not ±1 (state must be a set): {line:?}", k + 1));
        }
        if let Some(prev) = out.last() {
            if time < prev.0 {
                errs.push(format!("line {}: time {time} after time {} (not ascending)", k + 1, prev.0));
            }
            if time != prev.0 {
                seen_at_time.clear();
            } else if check_order && typed_cmp(&prev.2, &f[2..], &text) != std::cmp::Ordering::Less {
                errs.push(format!("line {}: rows of time {time} not sorted by row: {line:?}", k + 1));
            }
        }
        let row: Vec<String> = f[2..].to_vec();
        if !seen_at_time.insert(row.clone()) {
            errs.push(format!("line {}: row appears twice at time {time} (not consolidated): {line:?}", k + 1));
        }
        out.push((time, diff, row));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        let n = errs.len();
        errs.truncate(10);
        Err(format!("{}: {n} contract violations, first ones:\n    {}", path.display(), errs.join("\n    ")))
    }
}

pub fn show_rows<'a>(rows: impl Iterator<Item = &'a Vec<String>>, max: usize) -> String {
    let v: Vec<&Vec<String>> = rows.collect();
    let mut s = String::new();
    for r in v.iter().take(max) {
        let _ = write!(s, "\n        {}", r.join(","));
    }
    if v.len() > max {
        let _ = write!(s, "\n        ... ({} more)", v.len() - max);
    }
    s
}

/// Compares the binary's eight change streams in `out` with the reference at every
/// reference time. Returns all problems found (first mismatching time per output).
/// The columns, the expected rows that are absent and the rows present but not expected,
/// as indented lines of a mismatch message.
pub fn state_difference(cols: &str, want: &BTreeSet<Vec<String>>, got: &BTreeSet<Vec<String>>) -> String {
    let missing: Vec<&Vec<String>> = want.difference(got).collect();
    let extra: Vec<&Vec<String>> = got.difference(want).collect();
    let mut m = format!("\n    columns: {cols}");
    let _ = write!(m, "\n    expected but absent ({}):{}", missing.len(), show_rows(missing.into_iter(), 8));
    let _ = write!(m, "\n    present but not expected ({}):{}", extra.len(), show_rows(extra.into_iter(), 8));
    m
}

pub fn compare_outputs(r: &Reference, out: &Path) -> Result<(), String> {
    let mut errors = Vec::new();
    let ref_times: BTreeSet<u64> = r.times.iter().copied().collect();
    for (o, (name, cols)) in OUTPUTS.iter().enumerate() {
        let path = out.join(format!("{name}.csv"));
        let stream = match parse_change_stream(&path, cols) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let stray: BTreeSet<u64> = stream.iter().map(|c| c.0).filter(|t| !ref_times.contains(t)).collect();
        if !stray.is_empty() {
            errors.push(format!(
                "{name}: changes at times that are no logical time of any valid row: {:?}",
                stray.iter().take(10).collect::<Vec<_>>()
            ));
        }
        let mut acc: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        let mut idx = 0;
        let mut mismatches = 0usize;
        let mut first: Option<String> = None;
        let empty = BTreeSet::new();
        for (k, &t) in r.times.iter().enumerate() {
            let start = idx;
            while idx < stream.len() && stream[idx].0 <= t {
                let (_, d, row) = &stream[idx];
                let e = acc.entry(row.clone()).or_insert(0);
                *e += d;
                if *e == 0 {
                    acc.remove(row);
                }
                idx += 1;
            }
            let bad_mult: Vec<(&Vec<String>, &i64)> = acc.iter().filter(|(_, &c)| c != 1).collect();
            let got: BTreeSet<Vec<String>> = acc.keys().cloned().collect();
            let want = &r.states[k][o];
            if &got != want || !bad_mult.is_empty() {
                mismatches += 1;
                if first.is_none() {
                    let prev = if k > 0 { &r.states[k - 1][o] } else { &empty };
                    let mut m = format!("{name}: mismatch at t={t} (reference time #{k} of {})", r.times.len());
                    m.push_str(&state_difference(cols, want, &got));
                    if !bad_mult.is_empty() {
                        let _ = write!(
                            m,
                            "\n    rows with accumulated count != 1: {:?}",
                            bad_mult.iter().take(5).collect::<Vec<_>>()
                        );
                    }
                    let ref_added: Vec<&Vec<String>> = want.difference(prev).collect();
                    let ref_removed: Vec<&Vec<String>> = prev.difference(want).collect();
                    let _ = write!(
                        m,
                        "\n    reference diff at t: +{} rows{}",
                        ref_added.len(),
                        show_rows(ref_added.into_iter(), 6)
                    );
                    let _ = write!(
                        m,
                        "\n    reference diff at t: -{} rows{}",
                        ref_removed.len(),
                        show_rows(ref_removed.into_iter(), 6)
                    );
                    let bin: Vec<Vec<String>> = stream[start..idx]
                        .iter()
                        .map(|(tt, d, row)| {
                            let mut v = vec![tt.to_string(), d.to_string()];
                            v.extend(row.iter().cloned());
                            v
                        })
                        .collect();
                    let _ =
                        write!(m, "\n    binary changes applied at t ({}):{}", bin.len(), show_rows(bin.iter(), 12));
                    first = Some(m);
                }
            }
        }
        if idx < stream.len() {
            errors.push(format!(
                "{name}: {} changes after the last reference time {:?}",
                stream.len() - idx,
                r.times.last()
            ));
        }
        if let Some(m) = first {
            errors.push(format!("{m}\n    ({mismatches} of {} reference times mismatch for {name})", r.times.len()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n  "))
    }
}

/// Checks `<out>/rejected.csv` against the reference's rejected lines: same set of
/// (file, line), same raw text. The `file` column may be the path as given or its
/// file name.
pub fn compare_rejected(r: &Reference, spec: &RunSpec, out: &Path) -> Result<(), String> {
    let files: Vec<PathBuf> = spec.events.iter().chain(spec.catalog.iter()).cloned().collect();
    compare_rejected_lines(&r.rejected, &files, out)
}

/// Checks `<out>/rejected.csv` against `expected` (file, line, raw) rows; `files` are the
/// input files the `file` column may name (path as given, or file name).
pub fn compare_rejected_lines(
    expected: &BTreeSet<(PathBuf, u64, String)>,
    files: &[PathBuf],
    out: &Path,
) -> Result<(), String> {
    let path = out.join("rejected.csv");
    let content = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let lines = file_lines(&content);
    if lines.first().copied() != Some(REJECTED_HEADER) {
        return Err(format!("rejected.csv: header {:?}, expected {REJECTED_HEADER:?}", lines.first()));
    }
    let mut got = BTreeSet::new();
    let mut errs = Vec::new();
    for line in &lines[1..] {
        let f = split_csv(line);
        if f.len() != 4 {
            errs.push(format!("rejected.csv: {} fields: {line:?}", f.len()));
            continue;
        }
        let file = files.iter().find(|p| {
            p.to_string_lossy() == f[0] || p.file_name().map(|n| n.to_string_lossy() == f[0]).unwrap_or(false)
        });
        let Some(file) = file else {
            errs.push(format!("rejected.csv: file column {:?} names none of the input files", f[0]));
            continue;
        };
        let Ok(lineno) = f[1].parse::<u64>() else {
            errs.push(format!("rejected.csv: bad line number: {line:?}"));
            continue;
        };
        if f[2].is_empty() {
            errs.push(format!("rejected.csv: empty reason: {line:?}"));
        }
        if !got.insert(((*file).clone(), lineno, f[3].trim_end_matches('\r').to_string())) {
            errs.push(format!("rejected.csv: duplicate entry {line:?}"));
        }
    }
    let missing: Vec<_> = expected.difference(&got).take(8).collect();
    let extra: Vec<_> = got.difference(expected).take(8).collect();
    if !missing.is_empty() {
        errs.push(format!("rejected.csv: expected but absent: {missing:?}"));
    }
    if !extra.is_empty() {
        errs.push(format!("rejected.csv: present but not expected: {extra:?}"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n  "))
    }
}
