//! What an output is to its sink: its rows as fields, its column names and key, and the
//! one method a sink offers the dataflows ([`Attach`]). The dataflows declare these; the
//! sinks crate implements them, so the dataflows never depend on a sink.

use differential_dataflow::{ExchangeData, VecCollection};

use crate::model::{Scene, Time};
use crate::rates::Micro;

/// One output value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    U(u64),
    I(i64),
    /// A 128-bit sum (GMV in cents).
    Wide(i128),
    S(Scene),
    /// A fixed-point ratio in micro-units, six decimals; `None` prints an empty field.
    Fixed(Option<Micro>),
    /// A label (`hot`, `i2i`, …).
    Label(&'static str),
    /// Free text without commas, quotes or newlines (canonical rule parameters).
    Text(String),
}

/// A ranked list column (`recall_hot`, `recall_i2i`): space-separated `id:score`, in rank
/// order (e.g. `512:3 87:1`).
pub fn format_scored(list: &[(u64, i64)]) -> String {
    join(list, 12, |s, (id, score)| {
        s.push_str(itoa::Buffer::new().format(*id));
        s.push(':');
        s.push_str(itoa::Buffer::new().format(*score));
    })
}

/// The list of a [`format_scored`] column (`None`: not one).
pub fn parse_scored(s: &str) -> Option<Vec<(u64, i64)>> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let (id, score) = w.split_once(':')?;
            Some((id.parse().ok()?, score.parse().ok()?))
        })
        .collect()
}

/// An id list column (`recall_user_signals`): space-separated ids, empty for none.
pub fn format_ids(ids: &[u64]) -> String {
    join(ids, 8, |s, id| s.push_str(itoa::Buffer::new().format(*id)))
}

/// `items` written one after another by `write`, separated by spaces (`width`: the bytes
/// one usually takes).
fn join<T>(items: &[T], width: usize, write: impl Fn(&mut String, &T)) -> String {
    let mut s = String::with_capacity(items.len() * width);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        write(&mut s, item);
    }
    s
}

/// The ids of a [`format_ids`] column (`None`: not one).
pub fn parse_ids(s: &str) -> Option<Vec<u64>> {
    s.split(' ').filter(|w| !w.is_empty()).map(|w| w.parse().ok()).collect()
}

/// How an output's rows become columns: its column names, how many of the first columns
/// are its key (at any time at most one row per key), and a formatter.
pub struct Schema<D> {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: usize,
    pub fields: fn(&D) -> Vec<Field>,
}

/// Where an output's change stream goes: implemented by the sinks.
pub trait Attach {
    /// Takes the change stream of the output `schema` describes.
    fn attach<'s, D: ExchangeData>(&self, rows: VecCollection<'s, Time, D>, schema: Schema<D>);
}

/// A field as a reader sees it in a CSV file (the sinks format with their own buffers).
impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::U(v) => write!(f, "{v}"),
            Field::I(v) => write!(f, "{v}"),
            Field::Wide(v) => write!(f, "{v}"),
            Field::S(s) => f.write_str(s.as_str()),
            Field::Fixed(None) => Ok(()),
            Field::Fixed(Some(m)) => {
                let mut s = String::new();
                crate::rates::format_micro(*m, &mut s);
                f.write_str(&s)
            }
            Field::Label(l) => f.write_str(l),
            Field::Text(t) => f.write_str(t),
        }
    }
}
