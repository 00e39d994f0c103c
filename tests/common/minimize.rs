//! Minimizer (delta debugging over input lines), for reproducing binary bugs.

use super::*;

/// Files of an input as raw lines (each with its own line end); the catalog, if any, last.
#[derive(Clone, Debug)]
pub struct RawInput {
    pub format: Format,
    pub files: Vec<Vec<String>>,
    pub has_catalog: bool,
}

impl RawInput {
    pub fn from_generated(g: &Generated) -> RawInput {
        let split = |c: &String| c.split_inclusive('\n').map(String::from).collect::<Vec<_>>();
        let mut files: Vec<Vec<String>> = g.events.iter().map(split).collect();
        if let Some(c) = &g.catalog {
            files.push(split(c));
        }
        RawInput { format: g.format, files, has_catalog: g.catalog.is_some() }
    }

    pub fn to_generated(&self) -> Generated {
        let n = self.files.len() - self.has_catalog as usize;
        Generated {
            format: self.format,
            events: self.files[..n].iter().map(|f| f.concat()).collect(),
            catalog: if self.has_catalog { Some(self.files[n].concat()) } else { None },
        }
    }

    /// (file, index) of the lines that may be removed (not a header).
    pub fn removable(&self) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for (f, lines) in self.files.iter().enumerate() {
            let skip =
                if self.format == Format::Native || (self.has_catalog && f + 1 == self.files.len()) { 1 } else { 0 };
            for k in skip..lines.len() {
                v.push((f, k));
            }
        }
        v
    }

    pub fn without(&self, drop: &BTreeSet<(usize, usize)>) -> RawInput {
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(f, lines)| {
                lines.iter().enumerate().filter(|(k, _)| !drop.contains(&(f, *k))).map(|(_, l)| l.clone()).collect()
            })
            .collect();
        RawInput { format: self.format, files, has_catalog: self.has_catalog }
    }
}

/// Runs reference + binary on `input`; `Some(message)` when they disagree.
pub fn failure_of(input: &RawInput, dir: &Path, epoch_ms: u64, lateness_ms: u64, workers: &[usize]) -> Option<String> {
    let _ = std::fs::remove_dir_all(dir);
    let spec = RunSpec::write(&input.to_generated(), &dir.join("in"), epoch_ms, lateness_ms);
    let r = Reference::compute(&spec);
    check_spec("minimize", dir, &spec, &r, workers).err()
}

/// Greedy delta debugging: removes chunks of lines while `still_fails` holds.
pub fn minimize(input: RawInput, still_fails: impl Fn(&RawInput) -> bool) -> RawInput {
    let mut cur = input;
    let mut chunk = (cur.removable().len() / 2).max(1);
    loop {
        let mut progress = false;
        let mut start = 0;
        loop {
            let rem = cur.removable();
            if start >= rem.len() {
                break;
            }
            let drop: BTreeSet<(usize, usize)> = rem[start..(start + chunk).min(rem.len())].iter().copied().collect();
            let cand = cur.without(&drop);
            if still_fails(&cand) {
                cur = cand;
                progress = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !progress {
            break;
        }
        if !progress || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }
    cur
}

/// A change-stream edit the checker must catch.
pub type Mutation = Box<dyn Fn(&mut Vec<String>)>;

/// Edits of a change stream's lines (header included) that the checker must report:
/// drop, duplicate, swap, change a value, shift a time by `shift_ms`.
pub fn mutations(shift_ms: u64) -> Vec<(&'static str, Mutation)> {
    vec![
        ("drop a line", Box::new(|l: &mut Vec<String>| drop(l.remove(l.len() / 2)))),
        (
            "duplicate a line",
            Box::new(|l: &mut Vec<String>| {
                let x = l[l.len() / 2].clone();
                l.insert(l.len() / 2, x);
            }),
        ),
        (
            "swap two lines",
            Box::new(|l: &mut Vec<String>| {
                let n = l.len();
                l.swap(n / 2, n - 1);
            }),
        ),
        (
            "change a value",
            Box::new(|l: &mut Vec<String>| {
                let k = l.len() / 2;
                l[k] = format!("{}9", l[k]);
            }),
        ),
        (
            "shift a time",
            Box::new(move |l: &mut Vec<String>| {
                let k = l.len() / 2;
                let mut f: Vec<String> = l[k].split(',').map(String::from).collect();
                f[0] = (f[0].parse::<u64>().unwrap() + shift_ms).to_string();
                l[k] = f.join(",");
            }),
        ),
    ]
}
