//! The ranking rule every top-n list uses: score descending, ties by the smaller key.

/// Pushes `(rank, key, score)` for the `n` best entries — greatest score first, ties broken
/// by the smaller key — with ranks `1..=n` (fewer when there are fewer entries). Selects
/// the `n` best before sorting them, so a long input costs one pass and a short sort.
pub fn top_n<K: Ord + Copy, S: Ord + Copy>(
    entries: impl Iterator<Item = (K, S)>,
    n: usize,
    output: &mut Vec<(u32, K, S)>,
) {
    let mut scored: Vec<(S, K)> = entries.map(|(k, s)| (s, k)).collect();
    let n = n.min(scored.len());
    if n == 0 {
        return;
    }
    let by_rank = |a: &(S, K), b: &(S, K)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    if n < scored.len() {
        scored.select_nth_unstable_by(n - 1, by_rank);
        scored.truncate(n);
    }
    scored.sort_unstable_by(by_rank);
    output.extend(scored.into_iter().enumerate().map(|(rank, (score, k))| (rank as u32 + 1, k, score)));
}

/// [`top_n`] over the entries with a positive score: what every "hottest n" list ranks.
pub fn top_n_positive<K: Ord + Copy>(
    entries: impl Iterator<Item = (K, i64)>,
    n: usize,
    output: &mut Vec<(u32, K, i64)>,
) {
    top_n(entries.filter(|(_, s)| *s > 0), n, output)
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::top_n;

    /// Against a full sort, with many ties and every n from 0 past the input's length.
    #[test]
    fn top_n_is_a_prefix_of_the_full_ranking() {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        for _ in 0..200 {
            let len = rng.random_range(0..30);
            let mut keys: Vec<u16> = (0..len).map(|_| rng.random_range(0..1000)).collect();
            keys.sort_unstable();
            keys.dedup();
            let entries: Vec<(u16, i8)> = keys.iter().map(|k| (*k, rng.random_range(-3..4))).collect();
            let mut full = entries.clone();
            full.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for n in 0..=entries.len() + 2 {
                let mut got = Vec::new();
                top_n(entries.iter().copied(), n, &mut got);
                let want: Vec<(u32, u16, i8)> =
                    full.iter().take(n).enumerate().map(|(i, (k, s))| (i as u32 + 1, *k, *s)).collect();
                assert_eq!(got, want);
            }
        }
    }
}
