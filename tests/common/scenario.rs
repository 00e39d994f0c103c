//! Running the binary and whole scenarios.

use super::*;

pub fn run_shopflow(spec: &RunSpec, out: &Path, workers: usize) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run");
    for e in &spec.events {
        cmd.arg("--events").arg(e);
    }
    if let Some(c) = &spec.catalog {
        cmd.arg("--catalog").arg(c);
    }
    cmd.arg("--format").arg(spec.format.arg());
    cmd.arg("--out").arg(out);
    if !spec.omit_time_flags {
        cmd.arg("--epoch-ms").arg(spec.epoch_ms.to_string());
        cmd.arg("--lateness-ms").arg(spec.lateness_ms.to_string());
    }
    cmd.args(&spec.extra_args);
    cmd.arg("-w").arg(workers.to_string());
    cmd.output().expect("cannot start the shopflow binary")
}

pub fn scratch_dir(test: &str, seed: u64) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reference").join(format!("{test}-seed{seed}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Seeds to run: `SHOPFLOW_SEEDS=1,2,3` overrides the defaults of every test.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("SHOPFLOW_SEEDS") {
        Ok(s) if !s.trim().is_empty() => {
            s.split(',').map(|x| x.trim().parse().expect("SHOPFLOW_SEEDS: u64 list")).collect()
        }
        _ => default.to_vec(),
    }
}

pub const ALL_FILES: [&str; 9] = [
    "item_stats.csv",
    "category_stats.csv",
    "scene_stats.csv",
    "user_stats.csv",
    "category_top_items.csv",
    "user_top_categories.csv",
    "hourly_stats.csv",
    "untagged.csv",
    "rejected.csv",
];

/// Runs `run(out, workers)` into a fresh `<dir>/out-w<workers>`: the output directory and
/// the run's output, or the failure (exit status and stderr) as an error line.
pub fn fresh_run(
    label: &str,
    dir: &Path,
    w: usize,
    run: impl FnOnce(&Path, usize) -> Output,
) -> Result<(PathBuf, Output), String> {
    let out = dir.join(format!("out-w{w}"));
    let _ = std::fs::remove_dir_all(&out);
    let res = run(&out, w);
    if !res.status.success() {
        return Err(format!(
            "{label} -w {w}: exit status {:?}; stderr:\n{}",
            res.status.code(),
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    Ok((out, res))
}

/// Runs the binary on `spec` with each worker count, compares each run with the
/// reference, and checks that runs with different worker counts produce byte-identical
/// outputs (rejected.csv: identical as a set of lines).
pub fn check_spec(label: &str, dir: &Path, spec: &RunSpec, r: &Reference, workers: &[usize]) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut outs = Vec::new();
    for &w in workers {
        let out = match fresh_run(label, dir, w, |out, w| run_shopflow(spec, out, w)) {
            Ok((out, _)) => out,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Err(e) = compare_outputs(r, &out) {
            errors.push(format!("{label} -w {w}:\n  {e}"));
        }
        if let Err(e) = compare_rejected(r, spec, &out) {
            errors.push(format!("{label} -w {w}:\n  {e}"));
        }
        outs.push((w, out));
    }
    if outs.len() > 1 {
        let (w0, o0) = &outs[0];
        for (w, o) in &outs[1..] {
            for f in ALL_FILES {
                let a = std::fs::read(o0.join(f)).unwrap_or_default();
                let b = std::fs::read(o.join(f)).unwrap_or_default();
                let same = if f == "rejected.csv" {
                    let mut la: Vec<&[u8]> = a.split(|&c| c == b'\n').collect();
                    let mut lb: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
                    la.sort();
                    lb.sort();
                    la == lb
                } else {
                    a == b
                };
                if !same {
                    errors.push(format!("{label}: {f} differs between -w {w0} and -w {w}"));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Generates the input for `cfg`, computes the reference, runs and checks the binary.
pub fn check_generated(test: &str, cfg: &GenConfig, workers: &[usize]) -> Result<Counts, String> {
    let dir = scratch_dir(test, cfg.seed);
    let gen = generate(cfg);
    let spec = RunSpec::write(&gen, &dir.join("in"), cfg.epoch_ms, cfg.lateness_ms);
    let r = Reference::compute(&spec);
    let label = format!("{test} seed {}", cfg.seed);
    eprintln!(
        "{label} (epoch {} lateness {} files {} huge_ids {} small_t0 {} spike {}): {:?}",
        cfg.epoch_ms, cfg.lateness_ms, cfg.n_event_files, cfg.huge_ids, cfg.small_t0, cfg.future_spike, r.counts
    );
    match check_spec(&label, &dir, &spec, &r, workers) {
        Ok(()) => {
            if std::env::var_os("SHOPFLOW_KEEP").is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(r.counts)
        }
        Err(e) => Err(format!("{e}\n  (inputs and outputs kept in {})", dir.display())),
    }
}

/// Runs `check_generated` for every seed and panics with all failures at the end.
pub fn check_seeds(
    test: &str,
    seeds: &[u64],
    mk: impl Fn(u64) -> GenConfig,
    workers: impl Fn(u64) -> Vec<usize>,
) -> Vec<Counts> {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for &s in seeds {
        match check_generated(test, &mk(s), &workers(s)) {
            Ok(c) => counts.push(c),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        panic!("{} of {} seeds failed:\n{}", failures.len(), seeds.len(), failures.join("\n\n"));
    }
    counts
}
