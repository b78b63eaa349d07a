//! Property tests of the manifest parser: arbitrary text and mutations of the real manifest
//! never panic, every problem names a file and reads as one line, and a manifest that is
//! accepted goes through every emitter (Rust, JSON Schema, Cedar) without a panic either.
//!
//! Bounded: `PROPTEST_CASES` (default 256) cases per property, a quarter of that for the one
//! that loads the whole manifest; the seed is fixed unless `PROPTEST_RNG_SEED` is set. Longer runs:
//! `PROPTEST_CASES=100000 cargo test -p flowgate-codegen --release --test fuzz` (docs/FUZZING.md).

use flowgate_codegen::{cedar, json_schema, manifest, rust};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed};

/// The real manifest, `(display name, text)`, global settings first.
fn real_manifest() -> Vec<(String, String)> {
    let dir = package_dir().join("../../manifest");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                format!("manifest/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort_by_key(|(name, _)| name != "manifest/flowgate.yaml");
    files
}

/// proptest's defaults (256 cases; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` override them), with
/// a fixed seed unless one is given, so CI sees the same cases on every run.
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        failure_persistence: None,
        // ChaCha unoptimised (tests build dependencies without optimisation) would take most
        // of the time; XorShift is plenty for generating inputs.
        rng_algorithm: RngAlgorithm::XorShift,
        rng_seed: match default.rng_seed {
            RngSeed::Random => RngSeed::Fixed(20_261_202),
            given => given,
        },
        ..default
    }
}

/// Cases per property: `PROPTEST_CASES`, else 256.
fn cases() -> u32 {
    config().cases
}

/// Loads `files` and checks the outcome's shape; on success also runs every emitter.
fn check(files: &[(String, String)]) -> Result<(), TestCaseError> {
    match manifest::load_sources(files) {
        Ok(m) => {
            // Accepted: the emitters must cope with whatever text the manifest holds.
            let _ = rust::emit(&m);
            let _ = cedar::schema(&m);
            let _ = cedar::scope_guards(&m);
            for t in &m.tools {
                let _ = json_schema::object_schema(&t.input);
            }
        }
        Err(diags) => {
            prop_assert!(!diags.is_empty());
            for d in diags {
                prop_assert!(
                    d.file == "manifest" || files.iter().any(|(name, _)| *name == d.file),
                    "a problem names no file of the manifest: {d}"
                );
                prop_assert!(!d.message.trim().is_empty(), "empty message: {d}");
                prop_assert!(!d.to_string().contains('\n'), "not one line: {d:?}");
            }
        }
    }
    Ok(())
}

/// One edit of a text: the YAML-significant characters are over-represented.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop_oneof![
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("\n".to_string()),
        Just("\n  ".to_string()),
        Just("\t".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!binary ".to_string()),
        Just("<<: ".to_string()),
        Just("# ".to_string()),
        Just("| ".to_string()),
        Just("---\n".to_string()),
        Just("~".to_string()),
        Just("1e999".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("{{".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{0}".to_string()),
        "[a-z_:]{1,12}",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), token).prop_map(|(at, text)| Edit::Insert { at, text }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

/// The nearest char boundary at or before `at % (len + 1)`.
fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, e: &Edit) -> String {
    let mut s = text.to_string();
    match e {
        Edit::Delete { at, len } => {
            let a = boundary(&s, *at);
            let b = boundary(&s, a + len).max(a);
            s.replace_range(a..b, "");
        }
        Edit::Insert { at, text } => {
            let a = boundary(&s, *at);
            s.insert_str(a, text);
        }
        Edit::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.insert(i, lines[i]);
            }
            s = lines.join("\n");
        }
        Edit::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            s = lines.join("\n");
        }
        Edit::Truncate { at } => s.truncate(boundary(&s, *at)),
    }
    s
}

#[test]
fn the_real_manifest_is_accepted_as_it_is() {
    check(&real_manifest()).unwrap();
    assert!(manifest::load_sources(&real_manifest()).is_ok());
}

proptest! {
    #![proptest_config(config())]

    /// Any text as a manifest file beside the real global settings.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let files = real_manifest();
        check(&[files[0].clone(), ("manifest/fuzz.yaml".into(), text)])?;
    }

    /// Mostly YAML-looking text: flow collections, anchors, tags, deep nesting.
    #[test]
    fn yaml_looking_text_never_panics(text in "([a-z_]{1,8}|: |- |\n|  |\\[|\\]|\\{|\\}|, |&a |\\*a|!!str |'|\"|#|[0-9.e+-]{1,6}){0,80}") {
        let files = real_manifest();
        check(&[files[0].clone(), ("manifest/fuzz.yaml".into(), text)])?;
    }

}

proptest! {
    // Each case loads the whole manifest (and emits code when it stays valid): a quarter of the
    // cases keeps `cargo test` quick; `PROPTEST_CASES` raises it like the others.
    #![proptest_config(ProptestConfig { cases: cases().div_ceil(4), ..config() })]

    /// A few edits of one file of the real manifest (the global settings included), loaded with
    /// all the others: edits inside descriptions and examples leave it valid, so the emitters
    /// run too.
    #[test]
    fn mutated_manifest_files_never_panic(file in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..4)) {
        let files = real_manifest();
        let i = file.index(files.len());
        let mut text = files[i].1.clone();
        for e in &edits {
            text = apply(&text, e);
        }
        let mut input = files;
        input[i].1 = text;
        check(&input)?;
    }
}

/// This package's folder, as `cargo test` says it when it runs the test (not as it was when
/// the test was compiled: a build cache shared by two checkouts would point at the other one).
fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
