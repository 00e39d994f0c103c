//! `recall_user`, merged by the reader: a user's candidates for a scene from their
//! signals (`recall_user_signals`), the scene's hot lists (`recall_hot`) and i2i lists
//! (`recall_i2i`) and its `user` rule (`rules`), all as of one time.
//!
//! The dataflow publishes the parts, not the merged lists: a merged list moves whenever
//! any list it reads moves, so publishing it would rewrite every active user's list each
//! epoch (see `dataflows/recall_user_signals.rs`). [`RecallState`] holds the parts as of
//! a time and merges a user's list on request ([`RecallState::lists`]); [`derive`]
//! replays the four change files of a run and writes the `recall_user` change stream
//! itself — the rows the dataflow wrote when it merged them (`shopflow recall`).
//!
//! Contract (docs/cases-contract.md, `recall_user`): for each scene S with a `user` rule
//! and each user u: hot(b) = b's score in a hot list of S of one of u's top categories,
//! i2i(b) = max over u's engaged items a of b's `users` in the i2i list of S of a;
//! score = hot_weight·hot(b) + i2i_weight·i2i(b) > 0; bought items left out when
//! `exclude_bought`; top `top_k` by score desc, item asc; strategy `hot`, `i2i`, `hot+i2i`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use dataflows::recall_user_signals::{Signal, Signals};
use operators::rank::top_n_positive;
use platform::model::{CategoryId, ItemId, Scene, Time, UserId};
use platform::output::parse_scored;
use platform::rules::UserRule;
use sinks::changelog::ChangeFile;
use sinks::{self, Envelope, Field, Schema, SinkKind};

/// Which strategies produced a candidate (ordered as their labels: hot, hot+i2i, i2i).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Hot,
    Both,
    I2i,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Hot => "hot",
            Source::I2i => "i2i",
            Source::Both => "hot+i2i",
        }
    }
}

/// A `recall_user` row in column order: `(scene, user, item, score, strategy)`.
pub type Row = (Scene, UserId, ItemId, i64, Source);

pub fn schema() -> Schema<Row> {
    Schema {
        name: "recall_user",
        columns: &["scene", "user_id", "item_id", "score", "strategy"],
        key: 3,
        fields: |(scene, user, item, score, source)| {
            vec![Field::S(*scene), Field::U(*user), Field::U(*item), Field::I(*score), Field::Label(source.label())]
        },
    }
}

/// A `user` rule from its `params` column (`None`: not one).
pub fn parse_rule(params: &str) -> Option<UserRule> {
    // `params` is the canonical `key=value` list: one TOML key per word.
    toml::from_str(&params.replace(' ', "\n")).ok()
}

/// An item's list: member → score (`recall_hot`'s score, `recall_i2i`'s users).
pub type List = BTreeMap<ItemId, i64>;

/// The top `rule.top_k` candidates `(item, score, source)` of one user for one scene,
/// ranked (score desc, item asc), from the user's signals and the scene's lists.
pub fn merge<'a>(
    rule: &UserRule,
    signals: impl Iterator<Item = Signal>,
    hot: impl Fn(CategoryId) -> Option<&'a List>,
    i2i: impl Fn(ItemId) -> Option<&'a List>,
) -> Vec<(ItemId, i64, Source)> {
    // item → (hot, i2i): the best of each over the lists the user reads.
    let mut scores: BTreeMap<ItemId, (i64, i64)> = BTreeMap::new();
    let mut bought: BTreeSet<ItemId> = BTreeSet::new();
    for signal in signals {
        match signal {
            Signal::TopCategory(c) => {
                for (&item, &score) in hot(c).into_iter().flatten() {
                    let e = &mut scores.entry(item).or_default().0;
                    *e = (*e).max(score);
                }
            }
            Signal::Engaged(a) => {
                for (&item, &users) in i2i(a).into_iter().flatten() {
                    let e = &mut scores.entry(item).or_default().1;
                    *e = (*e).max(users);
                }
            }
            Signal::Bought(item) => {
                if rule.exclude_bought {
                    bought.insert(item);
                }
            }
        }
    }
    scores.retain(|item, _| !bought.contains(item));
    let weighted =
        scores.iter().map(|(&item, &(h, i))| (item, rule.hot_weight as i64 * h + rule.i2i_weight as i64 * i));
    let mut ranked = Vec::new();
    top_n_positive(weighted, rule.top_k as usize, &mut ranked);
    ranked
        .into_iter()
        .map(|(_rank, item, score)| {
            let source = match scores[&item] {
                (h, i) if h > 0 && i > 0 => Source::Both,
                (h, _) if h > 0 => Source::Hot,
                _ => Source::I2i,
            };
            (item, score, source)
        })
        .collect()
}

/// The parts of `recall_user` as of one time, with the users each list is read by.
#[derive(Default)]
pub struct RecallState {
    signals: BTreeMap<UserId, Signals>,
    hot: HashMap<(Scene, CategoryId), List>,
    i2i: HashMap<(Scene, ItemId), List>,
    rules: BTreeMap<Scene, UserRule>,
    /// Users with the category among their top categories.
    by_category: HashMap<CategoryId, BTreeSet<UserId>>,
    /// Users who engaged with the item.
    by_item: HashMap<ItemId, BTreeSet<UserId>>,
}

/// Applies a change of a keyed row to `slot`: a row joins (`diff` > 0) and replaces what
/// was there, or leaves (`diff` < 0) — a retraction of a row no longer held is the
/// replaced row's, already superseded. Returns the value that left, if any.
fn apply_row<V: PartialEq>(slot: &mut Option<V>, value: V, diff: isize) -> Option<V> {
    if diff > 0 {
        slot.replace(value)
    } else if slot.as_ref() == Some(&value) {
        slot.take()
    } else {
        None
    }
}

impl RecallState {
    /// Applies one change of a user's signals row; `touched` gains the user.
    pub fn update_signals(&mut self, user: UserId, signals: Signals, diff: isize, touched: &mut BTreeSet<UserId>) {
        let mut slot = self.signals.remove(&user);
        if let Some(left) = apply_row(&mut slot, signals, diff) {
            for c in &left.categories {
                self.by_category.get_mut(c).map(|users| users.remove(&user));
            }
            for a in &left.engaged {
                self.by_item.get_mut(a).map(|users| users.remove(&user));
            }
        }
        // A row that joined is the one held now: its lists gain the user as a reader.
        if let Some(joined) = slot.as_ref().filter(|_| diff > 0) {
            for c in &joined.categories {
                self.by_category.entry(*c).or_default().insert(user);
            }
            for a in &joined.engaged {
                self.by_item.entry(*a).or_default().insert(user);
            }
        }
        if let Some(signals) = slot {
            self.signals.insert(user, signals);
        }
        touched.insert(user);
    }

    /// Applies one change of a `recall_hot` row (the whole list of a scene and category)
    /// or a `recall_i2i` row (of a scene and item); `touched` gains the users who read it.
    pub fn update_list(
        &mut self,
        hot: bool,
        key: (Scene, u64),
        list: List,
        diff: isize,
        touched: &mut BTreeSet<UserId>,
    ) {
        let (lists, readers) = if hot { (&mut self.hot, &self.by_category) } else { (&mut self.i2i, &self.by_item) };
        let mut slot = lists.remove(&key);
        apply_row(&mut slot, list, diff);
        if let Some(list) = slot {
            lists.insert(key, list);
        }
        touched.extend(readers.get(&key.1).into_iter().flatten());
    }

    /// Applies one change of the `user` rules; every user is touched.
    pub fn update_rule(&mut self, scene: Scene, rule: UserRule, diff: isize, touched: &mut BTreeSet<UserId>) {
        if diff > 0 {
            self.rules.insert(scene, rule);
        } else if self.rules.get(&scene) == Some(&rule) {
            self.rules.remove(&scene);
        }
        touched.extend(self.signals.keys());
    }

    /// Every user with signals.
    pub fn users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.signals.keys().copied()
    }

    /// `user`'s lists for every scene with a `user` rule, scenes in order, each ranked.
    pub fn lists(&self, user: UserId) -> Vec<Row> {
        let Some(signals) = self.signals.get(&user) else { return Vec::new() };
        let mut rows = Vec::new();
        for (&scene, rule) in &self.rules {
            let hot = |c| self.hot.get(&(scene, c));
            let i2i = |a| self.i2i.get(&(scene, a));
            let merged = merge(rule, signals.iter(), hot, i2i);
            rows.extend(merged.into_iter().map(|(item, score, source)| (scene, user, item, score, source)));
        }
        rows
    }
}

/// The four change files `recall_user` is merged from, in `dir` (written by the csv sink).
pub struct RecallFiles {
    signals: ChangeFile,
    hot: ChangeFile,
    i2i: ChangeFile,
    rules: ChangeFile,
}

/// The outputs `recall_user` is merged from.
pub const PARTS: [&str; 4] = ["recall_user_signals", "recall_hot", "recall_i2i", "rules"];

impl RecallFiles {
    pub fn open(dir: &Path) -> Result<RecallFiles, String> {
        let open = |name: &str, columns: &[&str], key| {
            let path = dir.join(format!("{name}.csv"));
            if !path.exists() {
                return Err(format!(
                    "{} not found: recall_user is merged from the csv files of {} (run with them among --outputs)",
                    path.display(),
                    PARTS.join(", ")
                ));
            }
            ChangeFile::open(&path, columns, key)
        };
        let files = RecallFiles {
            signals: open("recall_user_signals", &["user_id", "categories", "engaged", "bought"], 1)?,
            hot: open("recall_hot", &["scene", "category_id", "items"], 2)?,
            i2i: open("recall_i2i", &["scene", "item_id", "neighbors"], 2)?,
            rules: open("rules", &["scene", "strategy", "params"], 2)?,
        };
        let envelopes = [&files.signals, &files.hot, &files.i2i, &files.rules].map(|f| f.envelope());
        if envelopes.iter().any(|e| *e != envelopes[0]) {
            return Err(format!("the files of {} in {} are not all in one envelope", PARTS.join(", "), dir.display()));
        }
        Ok(files)
    }

    pub fn envelope(&self) -> Envelope {
        self.signals.envelope()
    }

    /// The next time any file changes at (`None`: all are read).
    pub fn next_time(&self) -> Option<Time> {
        [&self.signals, &self.hot, &self.i2i, &self.rules].iter().filter_map(|f| f.next_time()).min()
    }

    /// Applies every change at `time` (the next time) to `state`; returns the users whose
    /// lists may have changed.
    pub fn apply(&mut self, time: Time, state: &mut RecallState) -> Result<BTreeSet<UserId>, String> {
        let mut touched = BTreeSet::new();
        let mut rows = Vec::new();
        let bad = |name: &str, row: &[String]| format!("{name}: malformed row at time {time}: {}", row.join(","));
        self.rules.take(time, &mut rows)?;
        for (row, diff) in rows.drain(..) {
            if row[1] != "user" {
                continue;
            }
            let scene = Scene::new(row[0].as_bytes()).map_err(|_| bad("rules", &row))?;
            let rule = parse_rule(&row[2]).ok_or_else(|| bad("rules", &row))?;
            state.update_rule(scene, rule, diff, &mut touched);
        }
        self.signals.take(time, &mut rows)?;
        for (row, diff) in rows.drain(..) {
            let user = row[0].parse().ok();
            let Some((user, signals)) = user.zip(Signals::parse(&row[1], &row[2], &row[3])) else {
                return Err(bad("recall_user_signals", &row));
            };
            state.update_signals(user, signals, diff, &mut touched);
        }
        for (name, file) in [("recall_hot", &mut self.hot), ("recall_i2i", &mut self.i2i)] {
            file.take(time, &mut rows)?;
            for (row, diff) in rows.drain(..) {
                let scene = Scene::new(row[0].as_bytes()).ok();
                let (Some(scene), Some(owner), Some(list)) = (scene, row[1].parse().ok(), parse_scored(&row[2])) else {
                    return Err(bad(name, &row));
                };
                state.update_list(name == "recall_hot", (scene, owner), list.into_iter().collect(), diff, &mut touched);
            }
        }
        Ok(touched)
    }
}

/// The parts in `dir` as of `at` (every change at or before it; default: every change),
/// and the last time a part changed at up to there.
pub fn state_as_of(dir: &Path, at: Option<Time>) -> Result<(RecallState, Option<Time>), String> {
    let mut files = RecallFiles::open(dir)?;
    let mut state = RecallState::default();
    let mut last = None;
    while let Some(t) = files.next_time().filter(|t| at.is_none_or(|at| *t <= at)) {
        files.apply(t, &mut state)?;
        last = Some(t);
    }
    Ok((state, last))
}

/// What [`derive`] wrote.
pub struct Derived {
    pub times: usize,
    pub records: u64,
    pub envelope: Envelope,
}

/// Replays the parts in `dir` and writes `<dir>/recall_user.csv`: the `recall_user`
/// change stream, in the parts' envelope, each time's rows consolidated and sorted (the
/// same bytes the dataflow wrote when it merged the lists itself).
pub fn derive(dir: &Path) -> Result<Derived, String> {
    let mut files = RecallFiles::open(dir)?;
    let envelope = files.envelope();
    let schema = schema();
    let mut writer = sinks::open(SinkKind::Csv, envelope, dir, schema.name, schema.columns)
        .map_err(|e| format!("cannot write {}: {e}", dir.join("recall_user.csv").display()))?;
    let write_error = |e: std::io::Error| format!("cannot write {}: {e}", dir.join("recall_user.csv").display());
    let mut state = RecallState::default();
    let mut current: HashMap<UserId, Vec<Row>> = HashMap::new();
    let mut derived = Derived { times: 0, records: 0, envelope };
    while let Some(time) = files.next_time() {
        let touched = files.apply(time, &mut state)?;
        let mut changes: Vec<(Row, isize)> = Vec::new();
        for user in touched {
            let mut new = state.lists(user);
            new.sort_unstable();
            let old = current.remove(&user).unwrap_or_default();
            changes.extend(old.iter().filter(|r| new.binary_search(r).is_err()).map(|r| (*r, -1)));
            changes.extend(new.iter().filter(|r| old.binary_search(r).is_err()).map(|r| (*r, 1)));
            if !new.is_empty() {
                current.insert(user, new);
            }
        }
        if changes.is_empty() {
            continue;
        }
        changes.sort_unstable();
        derived.times += 1;
        derived.records +=
            sinks::write_changes(writer.as_mut(), envelope, time, &changes, &schema).map_err(write_error)? as u64;
    }
    writer.flush().map_err(write_error)?;
    Ok(derived)
}
