//! The short fuzz run of CI (issue 7), on the stable toolchain: for each cargo-fuzz target,
//! a bounded number of inputs made by mutating its seeds (`fuzz/seeds/<target>/`) with the
//! target's dictionary (`fuzz/dict/`), run through the same harness functions the
//! libFuzzer targets call (`fuzz/src/lib.rs`). No coverage guidance: it catches what a few
//! thousand random neighbours of the seeds break, not what 30 minutes of `npm run fuzz`
//! would find. The run is deterministic (`FUZZ_MUTATION_SEED`, default 1); a failing
//! input is written to `fuzz/artifacts/<target>/mutation-<n>` and named in the failure,
//! to be copied to `fuzz/regressions/<target>/` once understood.
//!
//! `FUZZ_MUTATIONS=<n>` sets the inputs per target (default 2000; about 2 s in all in
//! release on two shared cores).

mod common;
#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use common::Rng;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(list) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = list
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths.into_iter().map(|p| fs::read(p).unwrap()).collect()
}

/// The quoted tokens of a libFuzzer dictionary (`name="..."` or `"..."`, `\xNN` escapes).
fn dictionary(name: &str) -> Vec<Vec<u8>> {
    let text = fs::read_to_string(fuzz_dir().join("dict").join(name)).unwrap_or_default();
    let mut tokens = Vec::new();
    for line in text.lines() {
        let (Some(a), Some(b)) = (line.find('"'), line.rfind('"')) else {
            continue;
        };
        if line.trim_start().starts_with('#') || b <= a {
            continue;
        }
        let raw = &line.as_bytes()[a + 1..b];
        let mut token = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' && i + 1 < raw.len() {
                if raw[i + 1] == b'x' && i + 3 < raw.len() {
                    let hex = std::str::from_utf8(&raw[i + 2..i + 4]).unwrap_or("00");
                    token.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                    i += 4;
                    continue;
                }
                token.push(raw[i + 1]);
                i += 2;
                continue;
            }
            token.push(raw[i]);
            i += 1;
        }
        tokens.push(token);
    }
    tokens
}

const NUMBERS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"9223372036854775808",
    b"2147483647",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x7f\xff\xff\xff",
];

/// One to four libFuzzer-style edits of `input`.
fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>], dict: &[Vec<u8>]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(8) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            2 if !d.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(d.len());
                d.drain(at.min(end)..end);
            }
            3 if !dict.is_empty() => {
                let t = &dict[rng.below(dict.len())];
                d.splice(at..at, t.iter().copied());
            }
            4 => {
                let n = NUMBERS[rng.below(NUMBERS.len())];
                d.splice(at..at, n.iter().copied());
            }
            5 if !d.is_empty() => {
                // repeat a piece (pipelines, long lines)
                let start = rng.below(d.len());
                let end = (start + 1 + rng.below(64)).min(d.len());
                let piece = d[start..end].repeat(1 + rng.below(8));
                d.splice(at..at, piece);
            }
            6 if !seeds.is_empty() => {
                // splice: this input's head, another seed's tail
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                d.truncate(at);
                d.extend_from_slice(&other[from..]);
            }
            _ => d.insert(at, b"\r\n \x80\x00"[rng.below(5)]),
        }
    }
    d.truncate(4096); // the -max_len of `npm run fuzz`
    d
}

/// The inputs that fail (written to `fuzz/artifacts/<target>/` when `save`).
fn failures(target: &str, dict: &str, f: fn(&[u8]), save: bool) -> Vec<String> {
    let seeds = files(&fuzz_dir().join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{target}");
    let dict = dictionary(dict);
    let count: usize = std::env::var("FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("FUZZ_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut failed = Vec::new();
    for n in 0..count {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds, &dict);
        if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
            if !save {
                failed.push(format!("#{n}"));
                continue;
            }
            let dir = fuzz_dir().join("artifacts").join(target);
            let path = dir.join(format!("mutation-{seed}-{n}"));
            let _ = fs::create_dir_all(&dir).and_then(|_| fs::write(&path, &input));
            failed.push(path.display().to_string());
        }
    }
    failed
}

fn run(target: &str, dict: &str, f: fn(&[u8])) {
    let failed = failures(target, dict, f, true);
    assert!(
        failed.is_empty(),
        "{target}: {} inputs fail: {failed:?}",
        failed.len()
    );
}

#[test]
fn session_text_mutations() {
    run("session_text", "text.dict", harness::session_text);
}

#[test]
fn session_binary_mutations() {
    run("session_binary", "binary.dict", harness::session_binary);
}

#[test]
fn snapshot_mutations() {
    run("snapshot", "snapshot.dict", harness::snapshot);
}

#[test]
fn aof_mutations() {
    run("aof", "aof.dict", harness::aof);
}

#[test]
fn replication_mutations() {
    run("replication", "replication.dict", harness::replication);
}

/// The run must be able to fail: a harness that panics on some inputs is reported.
#[test]
fn a_failing_harness_is_reported() {
    let failed = failures(
        "session_text",
        "text.dict",
        |d| assert!(!d.contains(&b'\n')),
        false,
    );
    assert!(!failed.is_empty());
}
