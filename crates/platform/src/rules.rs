//! Operator-configured recall rules: a TOML file turned into a collection of [`Rule`]s.
//!
//! ```toml
//! [scenes.home_feed]
//! hot  = { top_n = 10, click = 1, fav = 3, cart = 5, buy = 10 }
//! i2i  = { top_n = 10 }
//! user = { top_k = 20, hot_weight = 1, i2i_weight = 2, exclude_bought = true }
//! ```
//!
//! The rules are data, not code: the run inserts them into the `rules` input at time 0 and,
//! under `--follow`, inserts an edit's differences at the input frontier when it is seen,
//! so only the outputs of the scenes whose rules changed move.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Scene;

/// Largest `top_n` / `top_k`.
pub const MAX_TOP: u32 = 1000;
/// Largest weight.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// One strategy of one scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rule {
    pub scene: Scene,
    pub strategy: Strategy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Strategy {
    Hot(HotRule),
    I2i(I2iRule),
    User(UserRule),
}

/// `recall_hot`: top `top_n` items per category by a weighted sum of window counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotRule {
    pub top_n: u32,
    pub click: u32,
    pub fav: u32,
    pub cart: u32,
    pub buy: u32,
}

/// `recall_i2i`: top `top_n` co-occurring items per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct I2iRule {
    pub top_n: u32,
}

/// `recall_user`: top `top_k` of the merged hot and i2i candidates per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRule {
    pub top_k: u32,
    pub hot_weight: u32,
    pub i2i_weight: u32,
    pub exclude_bought: bool,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Hot(_) => "hot",
            Strategy::I2i(_) => "i2i",
            Strategy::User(_) => "user",
        }
    }

    /// Canonical `key=value` list, as the `rules` output prints it.
    pub fn params(&self) -> String {
        match self {
            Strategy::Hot(h) => {
                format!("top_n={} click={} fav={} cart={} buy={}", h.top_n, h.click, h.fav, h.cart, h.buy)
            }
            Strategy::I2i(i) => format!("top_n={}", i.top_n),
            Strategy::User(u) => format!(
                "top_k={} hot_weight={} i2i_weight={} exclude_bought={}",
                u.top_k, u.hot_weight, u.i2i_weight, u.exclude_bought
            ),
        }
    }

    fn check(&self) -> Result<(), String> {
        let (tops, weights): (Vec<(&str, u32)>, Vec<(&str, u32)>) = match self {
            Strategy::Hot(h) => {
                (vec![("top_n", h.top_n)], vec![("click", h.click), ("fav", h.fav), ("cart", h.cart), ("buy", h.buy)])
            }
            Strategy::I2i(i) => (vec![("top_n", i.top_n)], vec![]),
            Strategy::User(u) => {
                (vec![("top_k", u.top_k)], vec![("hot_weight", u.hot_weight), ("i2i_weight", u.i2i_weight)])
            }
        };
        for (name, v) in tops {
            if !(1..=MAX_TOP).contains(&v) {
                return Err(format!("{}.{name} must be 1..={MAX_TOP}, not {v}", self.name()));
            }
        }
        for (name, v) in weights {
            if v > MAX_WEIGHT {
                return Err(format!("{}.{name} must be at most {MAX_WEIGHT}, not {v}", self.name()));
            }
        }
        Ok(())
    }
}

/// The `hot` rules among `rules`, with their scenes.
pub fn hot_rules(rules: &[Rule]) -> impl Iterator<Item = (Scene, HotRule)> + '_ {
    rules.iter().filter_map(|r| match r.strategy {
        Strategy::Hot(h) => Some((r.scene, h)),
        _ => None,
    })
}

/// The `i2i` rules among `rules`, with their scenes.
pub fn i2i_rules(rules: &[Rule]) -> impl Iterator<Item = (Scene, I2iRule)> + '_ {
    rules.iter().filter_map(|r| match r.strategy {
        Strategy::I2i(i) => Some((r.scene, i)),
        _ => None,
    })
}

/// The `user` rules among `rules`, with their scenes.
pub fn user_rules(rules: &[Rule]) -> impl Iterator<Item = (Scene, UserRule)> + '_ {
    rules.iter().filter_map(|r| match r.strategy {
        Strategy::User(u) => Some((r.scene, u)),
        _ => None,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    scenes: BTreeMap<String, SceneRules>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneRules {
    hot: Option<HotRule>,
    i2i: Option<I2iRule>,
    user: Option<UserRule>,
}

/// Parses a rules file's text; the error is one line (with the line number when known).
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let file: RulesFile = toml::from_str(text).map_err(|e| {
        let message = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        match e.span() {
            Some(span) => format!("line {}: {message}", text[..span.start.min(text.len())].lines().count().max(1)),
            None => message,
        }
    })?;
    let mut rules = Vec::new();
    for (name, scene_rules) in file.scenes {
        let scene = Scene::new(name.as_bytes()).map_err(|why| format!("scene `{name}`: {why}"))?;
        let strategies = [
            scene_rules.hot.map(Strategy::Hot),
            scene_rules.i2i.map(Strategy::I2i),
            scene_rules.user.map(Strategy::User),
        ];
        for strategy in strategies.into_iter().flatten() {
            strategy.check().map_err(|e| format!("scene `{name}`: {e}"))?;
            rules.push(Rule { scene, strategy });
        }
    }
    rules.sort();
    Ok(rules)
}

/// Reads and parses a rules file.
pub fn load(path: &Path) -> Result<Vec<Rule>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read rules {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("rules {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let rules = parse(
            "[scenes.home]\nhot = { top_n = 3, click = 1, fav = 0, cart = 2, buy = 9 }\ni2i = { top_n = 5 }\n\
             [scenes.search]\nuser = { top_k = 4, hot_weight = 1, i2i_weight = 2, exclude_bought = false }\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].strategy.params(), "top_n=3 click=1 fav=0 cart=2 buy=9");
        assert!(parse("[scenes.home]\nhot = { top_n = 0, click = 1, fav = 0, cart = 2, buy = 9 }").is_err());
        assert!(parse("[scenes.home]\nhot = { top_n = 1 }").unwrap_err().starts_with("line 2"));
        assert!(parse("[scenes.home]\nwarm = { top_n = 1 }").is_err());
        assert!(parse("[scenes.seventeen_bytes_xx]\ni2i = { top_n = 1 }").is_err());
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
