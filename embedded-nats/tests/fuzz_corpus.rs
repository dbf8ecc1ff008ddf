//! Replays the committed inputs of the `nats_parser` fuzz target (`fuzz/`, see
//! `docs/fuzzing.md`) through the same entry point it calls: seeds, the minimised corpus and
//! every input that once crashed must run without a panic.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["seeds", "corpus", "regressions"] {
        let Ok(rd) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        for e in rd {
            let path = e.expect("corpus directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no fuzz inputs for {target}");
    files
}

#[test]
fn nats_parser_corpus() {
    for path in inputs("nats_parser") {
        let data = std::fs::read(&path).expect("read fuzz input");
        let r = std::panic::catch_unwind(|| stan_embedded_nats::fuzz_parse(&data));
        assert!(r.is_ok(), "fuzz input {} panics", path.display());
    }
}
