//! Fuzz target: the row parsers (`source::parse`, all three kinds), the rules parser and
//! the base parser on arbitrary bytes and on mutated valid input. None may panic, and
//! every rejection carries a reason (a non-empty message).
//!
//! Bounded: 2000 cases per property unless `PROPTEST_CASES` says otherwise, a few seconds
//! in `cargo test --release`.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;

use platform::source::{parse, Format, SourceKind};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

const KINDS: [SourceKind; 3] =
    [SourceKind::Events(Format::Native), SourceKind::Events(Format::UserBehavior), SourceKind::Catalog];

/// Valid rows of each kind (index as in `KINDS`), to mutate.
const VALID_ROWS: [&[&str]; 3] = [
    &["1700000000000,1,2,search,buy,2,500", "0,18446744073709551615,7,直播,click,0,0", "5,1,2,x,impression,0,0"],
    &["1,2268318,2520377,pv,1511544070", "100,5,6,buy,1511600000", "7,8,9,fav,0"],
    &["0,upsert,10,5,1,700,online,0,0", "5,delete,7,,,,,,", "9,upsert,3,9,1,100,offline,true,25"],
];

const VALID_RULES: &str = "[scenes.home]\nhot = { top_n = 3, click = 1, fav = 0, cart = 2, buy = 9 }\n\
    i2i = { top_n = 5 }\n[scenes.search]\nuser = { top_k = 4, hot_weight = 1, i2i_weight = 2, exclude_bought = false }\n";

const VALID_BASE: &str = "cutoff_ms,item_id,sales_30d,units_30d,gmv_30d_cents,buyers_30d\n\
    1700000000000,1,5,6,3000,4\n1700000000000,2,1,1,100,1\n";

/// Tokens that sit at the edges of what the parsers accept.
const TOKENS: [&[u8]; 16] = [
    b"",
    b",",
    b"-1",
    b"0",
    b"18446744073709551615",
    b"18446744073709551616",
    b"\xff",
    b"\xc3",
    b"\r",
    b"\n",
    b"\"",
    b"=",
    b"[",
    b"{",
    "\u{feff}".as_bytes(),
    b"99999999999999999999999999",
];

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, usize),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..12).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(text: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut v = text.to_vec();
    for m in edits {
        let at = |i: usize, v: &Vec<u8>| if v.is_empty() { 0 } else { i % (v.len() + 1) };
        match *m {
            Mutation::Set(i, b) if !v.is_empty() => {
                let i = i % v.len();
                v[i] = b;
            }
            Mutation::Set(..) => {}
            Mutation::Insert(i, t) => {
                let i = at(i, &v);
                v.splice(i..i, TOKENS[t].iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = at(i, &v);
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Mutation::Truncate(i) => v.truncate(at(i, &v)),
            Mutation::Duplicate(i, n) => {
                let i = at(i, &v);
                let end = (i + n).min(v.len());
                let piece = v[i..end].to_vec();
                v.splice(i..i, piece);
            }
        }
    }
    v
}

/// A row parse that fails says why.
fn check_row(line: &[u8], kind: SourceKind) {
    if let Err(reason) = parse(line, kind) {
        assert!(!reason.trim().is_empty(), "{kind:?}: empty reason for {:?}", String::from_utf8_lossy(line));
    }
}

fn check_rules(text: &str) {
    if let Err(reason) = platform::rules::parse(text) {
        assert!(!reason.trim().is_empty(), "rules: empty reason for {text:?}");
    }
}

fn check_base(bytes: &[u8]) {
    match platform::base::from_bytes(Path::new("base.csv"), bytes, 3) {
        Ok(file) => {
            for r in &file.rejected {
                assert!(!r.reason.trim().is_empty(), "base: a row rejected without a reason: {r:?}");
                assert_eq!(r.file, 3);
            }
            assert!(!file.rows.is_empty(), "a base without a valid row is an error");
        }
        Err(reason) => assert!(!reason.trim().is_empty(), "base: empty reason"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rows_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160), k in 0..3usize) {
        check_row(&bytes, KINDS[k]);
    }

    #[test]
    fn rows_of_arbitrary_fields(fields in proptest::collection::vec(0..TOKENS.len(), 0..11), k in 0..3usize) {
        let line: Vec<u8> = fields.iter().map(|&t| TOKENS[t]).collect::<Vec<_>>().join(&b","[..]);
        check_row(&line, KINDS[k]);
    }

    #[test]
    fn mutated_valid_rows(k in 0..3usize, row in 0..3usize, edits in proptest::collection::vec(mutation(), 1..5)) {
        let line = mutate(VALID_ROWS[k][row].as_bytes(), &edits);
        // A row of one kind read as another, too.
        for kind in KINDS {
            check_row(&line, kind);
        }
    }

    #[test]
    fn rules_from_arbitrary_text(text in ".{0,200}") {
        check_rules(&text);
    }

    #[test]
    fn mutated_valid_rules(edits in proptest::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(VALID_RULES.as_bytes(), &edits);
        check_rules(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn bases_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_base(&bytes);
    }

    #[test]
    fn mutated_valid_bases(edits in proptest::collection::vec(mutation(), 1..6)) {
        check_base(&mutate(VALID_BASE.as_bytes(), &edits));
    }
}

/// The valid inputs the mutations start from are valid.
#[test]
fn the_seeds_are_valid() {
    for (k, rows) in VALID_ROWS.iter().enumerate() {
        for row in *rows {
            assert!(parse(row.as_bytes(), KINDS[k]).is_ok(), "{row}");
        }
    }
    assert_eq!(platform::rules::parse(VALID_RULES).unwrap().len(), 3);
    assert_eq!(platform::base::from_bytes(Path::new("b"), VALID_BASE.as_bytes(), 0).unwrap().rows.len(), 2);
}
