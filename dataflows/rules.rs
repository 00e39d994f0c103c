//! `rules` (case 2): the recall rules in force, as a change stream — the operators'
//! configuration is data, so a reader can tell which rules produced which times.
//!
//! ```text
//! rules input (worker 0: the rules file at start, each edit under --follow) ─► Rule
//! ```
//!
//! Contract (docs/cases-contract.md): at time t, one row per (scene, strategy) of the
//! rules file in force at t, with its canonical parameters.

use differential_dataflow::VecCollection;

use platform::model::Time;
use platform::Platform;
use platform::rules::Rule;
use platform::output::{Field, Schema};

pub fn rules<'s>(p: &Platform<'s>) -> VecCollection<'s, Time, Rule> {
    p.rules.clone()
}

pub fn schema() -> Schema<Rule> {
    Schema {
        name: "rules",
        columns: &["scene", "strategy", "params"],
        key: 2,
        fields: |r| vec![Field::S(r.scene), Field::Label(r.strategy.name()), Field::Text(r.strategy.params())],
    }
}

#[cfg(test)]
mod example {
    use crate::example::{rows, shop, T};

    /// The rules in force, one row per scene and strategy, parameters in canonical order.
    #[test]
    fn in_the_example_shop() {
        assert_eq!(rows("rules", shop(), T + 1000), ["search,hot,top_n=2 click=1 fav=3 cart=5 buy=10", "search,i2i,top_n=2", "search,user,top_k=5 hot_weight=1 i2i_weight=1 exclude_bought=true"]);
    }
}
