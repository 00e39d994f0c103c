//! Domain types shared by every layer: events, catalog rows, and the scene label.
//!
//! Ids are `u64`; logical time is the epoch's start in milliseconds ([`Time`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Logical time: the start of an epoch, in ms since the Unix epoch.
pub type Time = u64;
pub type UserId = u64;
pub type ItemId = u64;
pub type CategoryId = u64;

/// The five user actions of the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Behavior {
    Impression,
    Click,
    Fav,
    Cart,
    Buy,
}

impl Behavior {
    /// Parses the native-format label.
    pub fn from_native(s: &[u8]) -> Option<Behavior> {
        Some(match s {
            b"impression" => Behavior::Impression,
            b"click" => Behavior::Click,
            b"fav" => Behavior::Fav,
            b"cart" => Behavior::Cart,
            b"buy" => Behavior::Buy,
            _ => return None,
        })
    }

    /// Parses the UserBehavior `behavior_type` (`pv` is a click).
    pub fn from_userbehavior(s: &[u8]) -> Option<Behavior> {
        Some(match s {
            b"pv" => Behavior::Click,
            b"fav" => Behavior::Fav,
            b"cart" => Behavior::Cart,
            b"buy" => Behavior::Buy,
            _ => return None,
        })
    }
}

/// A scene label (`search`, `home_feed`, …): at most 16 bytes, stored inline and
/// zero-padded so that it is `Copy` and orders like the string it holds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scene([u8; Scene::MAX_LEN]);

impl Scene {
    pub const MAX_LEN: usize = 16;

    /// A scene from its label: 1 to 16 bytes of UTF-8 without control characters or `"`;
    /// the error says which rule the label breaks.
    pub fn new(label: &[u8]) -> Result<Scene, &'static str> {
        if label.is_empty() || label.len() > Self::MAX_LEN {
            return Err("must be 1 to 16 bytes");
        }
        let text = std::str::from_utf8(label).map_err(|_| "not valid UTF-8")?;
        if text.chars().any(|c| c.is_control() || c == '"') {
            return Err("must not hold quotes or control characters");
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..label.len()].copy_from_slice(label);
        Ok(Scene(bytes))
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(Self::MAX_LEN);
        // Only `new` makes scenes, and it admits valid UTF-8 only.
        std::str::from_utf8(&self.0[..len]).expect("a scene is valid UTF-8")
    }
}

impl fmt::Debug for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user action, as read from a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Event {
    pub ts_ms: u64,
    pub user: UserId,
    pub item: ItemId,
    pub scene: Scene,
    pub behavior: Behavior,
    /// Units bought (buys only; 0 otherwise).
    pub quantity: u32,
    /// Price paid in cents (buys only; 0 otherwise).
    pub amount_cents: u64,
}

/// An item's catalog row (the dimension events are tagged with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CatalogRow {
    pub category: CategoryId,
    pub seller: u64,
    pub price_cents: u64,
    pub online: bool,
    pub is_ad: bool,
    pub ad_bid_cents: u64,
}
