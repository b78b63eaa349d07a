//! Property tests ("fuzzing") of the untrusted surfaces, bounded so they run in `cargo test`:
//! tool arguments (any JSON, and arguments generated from each tool's published schema) through
//! validation, typed decoding and request mapping; the hand-written validator against the
//! `jsonschema` crate (differential); JSON-RPC bodies on `/mcp`; the OAuth token, revocation and
//! registration endpoints; client metadata documents.
//!
//! `PROPTEST_CASES` sets the cases per property (default 256; the HTTP tests send at most 200
//! requests, or `PROPTEST_CASES` if smaller); the seed is fixed unless `PROPTEST_RNG_SEED` is set.
//! Longer runs: docs/FUZZING.md.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flowgate::tool::args::Validator;
use flowgate::tool::catalog::BASE_PATH;
use flowgate::tool::{ArgsError, Registry, Target, Tool};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, RngSeed, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::harness::Gateway;

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

/// Requests an HTTP property sends: at most 200, fewer when `PROPTEST_CASES` is smaller.
fn http_cases() -> usize {
    (cases() as usize).clamp(1, 200)
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new().unwrap())
}

fn tool_schema(tool: &Tool) -> Value {
    Value::Object(tool.input_schema_object())
}

// === generated JSON ===

/// Field names worth trying: every property name of the catalog, plus anything.
fn key() -> BoxedStrategy<String> {
    let mut names: Vec<String> = Vec::new();
    for tool in registry().iter() {
        collect_names(&tool_schema(tool), &mut names);
    }
    names.sort();
    names.dedup();
    prop_oneof![
        3 => prop::sample::select(names),
        1 => "[a-z_]{1,12}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn collect_names(schema: &Value, out: &mut Vec<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, s) in props {
            out.push(name.clone());
            collect_names(s, out);
        }
    }
    if schema.get("items").is_some() {
        collect_names(&schema["items"], out);
    }
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A JSON scalar, edge cases over-represented.
fn any_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(number),
        prop::sample::select(vec![
            0.0,
            -0.0,
            0.5,
            1e300,
            -1e300,
            9.0e15,
            9007199254740993.0,
            1e-300
        ])
        .prop_map(number),
        any::<String>().prop_map(Value::String),
        "[a-z0-9_.%/-]{0,20}".prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, nested up to 4 levels.
fn any_json() -> BoxedStrategy<Value> {
    any_scalar()
        .prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

// === arguments generated from a published schema ===

/// Values for one schema node: mostly the right type near the limits, sometimes just over them,
/// sometimes the wrong type altogether.
fn value_for(schema: &Value) -> BoxedStrategy<Value> {
    let right = match schema["type"].as_str() {
        Some("string") => string_for(schema),
        Some("integer") => integer_for(schema),
        Some("number") => number_for(schema),
        Some("boolean") => prop_oneof![
            9 => any::<bool>().prop_map(Value::Bool),
            1 => prop::sample::select(vec![json!("true"), json!(1), json!(0)]),
        ]
        .boxed(),
        Some("array") => {
            let max = schema["maxItems"].as_u64().unwrap_or(6).min(12) as usize;
            prop::collection::vec(value_for(&schema["items"]), 0..=max + 1)
                .prop_map(Value::Array)
                .boxed()
        }
        Some("object") => object_for(schema),
        _ => any_json(),
    };
    prop_oneof![19 => right, 1 => any_scalar()].boxed()
}

fn object_for(schema: &Value) -> BoxedStrategy<Value> {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (name, s) in schema["properties"].as_object().into_iter().flatten() {
        // Required fields are nearly always there, optional ones half the time.
        let keep = if required.contains(name) { 19 } else { 10 };
        let name = name.clone();
        fields.push(
            (0u32..20, value_for(s))
                .prop_map(move |(roll, v)| (roll < keep).then(|| (name.clone(), v)))
                .boxed(),
        );
    }
    let extra = prop::option::weighted(0.05, (key(), any_scalar()));
    (fields, extra)
        .prop_map(|(fields, extra)| {
            let mut map: Map<String, Value> = fields.into_iter().flatten().collect();
            if let Some((k, v)) = extra {
                map.entry(k).or_insert(v);
            }
            Value::Object(map)
        })
        .boxed()
}

fn string_for(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
    let max = schema["maxLength"].as_u64().unwrap_or(40).min(300) as usize;
    let mut options: Vec<(u32, BoxedStrategy<String>)> = Vec::new();
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        options.push((8, prop::sample::select(values.clone()).boxed()));
        options.push((
            1,
            prop::sample::select(values)
                .prop_map(|v| v.to_uppercase() + " ")
                .boxed(),
        ));
    }
    if let Some(p) = schema["pattern"].as_str() {
        // proptest's generator takes no anchors; the patterns are anchored at both ends.
        let body = p.trim_start_matches('^').trim_end_matches('$');
        if let Ok(s) = proptest::string::string_regex(body) {
            options.push((8, s.boxed()));
        }
    }
    match schema["format"].as_str() {
        Some("date-time") => options.push((8, date_time().boxed())),
        Some("date") => options.push((8, date().boxed())),
        Some("email") => options.push((8, email().boxed())),
        Some("uri") => options.push((8, uri().boxed())),
        _ => {}
    }
    // Lengths at and just beyond the limits, in characters of one to four bytes.
    let chars = prop_oneof![
        4 => prop::char::range('a', 'z'),
        1 => prop::char::range('\u{e0}', '\u{ff}'),
        1 => prop::char::range('\u{1f600}', '\u{1f64f}'),
        1 => prop::sample::select(vec!['.', '/', '%', '?', '#', ' ', '\\', '\u{0}', '\u{feff}']),
    ];
    let lengths = prop_oneof![
        Just(min),
        Just(max),
        Just(min.saturating_sub(1)),
        Just(max + 1),
        min..=max.max(min),
    ];
    options.push((
        4,
        (lengths, prop::collection::vec(chars, 0..=max + 1))
            .prop_map(|(n, cs)| cs.into_iter().cycle().take(n).collect())
            .boxed(),
    ));
    options.push((
        1,
        prop::sample::select(vec![".", "..", "%2e%2e", "a/b", "", " "])
            .prop_map(str::to_string)
            .boxed(),
    ));
    proptest::strategy::Union::new_weighted(options)
        .prop_map(Value::String)
        .boxed()
}

/// RFC 3339 date-times and near misses: every field at and beyond its range, offsets, leap
/// seconds, separators, fractions.
fn date_time() -> impl Strategy<Value = String> {
    let sep = prop::sample::select(vec!["T", "t", " ", "_"]);
    let frac = prop::sample::select(vec!["", ".5", ".123", ".123456789", ".", ".1234567890123"]);
    let offset = prop_oneof![
        prop::sample::select(vec![
            "Z".to_string(),
            "z".to_string(),
            "".to_string(),
            "+00:00".to_string(),
            "-00:00".to_string(),
            "+0100".to_string(),
            "+01".to_string(),
        ]),
        (any::<bool>(), 0u32..26, 0u32..62)
            .prop_map(|(plus, h, m)| format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })),
    ];
    (
        (0u32..10000, 0u32..14, 0u32..33),
        sep,
        (0u32..25, 0u32..61, 0u32..62),
        frac,
        offset,
    )
        .prop_map(|((y, mo, d), sep, (h, mi, s), frac, off)| {
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..10000, 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        1 => prop::sample::select(vec!["2026-1-01", "2026-01-1", "+2026-01-01", "-001-01-01", "2026-01-01T00:00:00Z", "2026/01/01", "20260101", " 2026-01-01", "2026-01-01 "]).prop_map(str::to_string),
    ]
}

fn email() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ("[a-z0-9]{1,8}(\\.[a-z0-9]{1,6})?", "[a-z0-9]{1,8}(\\.[a-z]{2,6}){1,2}").prop_map(|(l, d)| format!("{l}@{d}")),
        2 => "[a-z.@ \"-]{0,16}",
        1 => prop::sample::select(vec![
            "a@b", "a@b.", "@b.co", "a@.b.co", "a..b@c.co", ".a@b.co", "a.@b.co", "a@-b.co", "a@b-.co",
            "a@b..co", "\"a b\"@c.co", "a b@c.co", "a@b@c.co", "a@[127.0.0.1]", "ana@lotus.example",
            "a+tag@b.co", "a@b.c0", "a@1.2.3.4", "é@b.co", "a@é.co",
        ]).prop_map(str::to_string),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            "(https?|ftp|x-y\\+z)",
            "[a-z0-9.-]{1,10}",
            "(/[a-z0-9%._~-]{0,6}){0,3}"
        )
            .prop_map(|(s, h, p)| format!("{s}://{h}{p}")),
        "[a-z:/%\\[\\] .#?]{0,16}",
    ]
}

fn integer_for(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_f64().unwrap_or(-1e6) as i64;
    let max = schema["maximum"].as_f64().unwrap_or(1e6) as i64;
    prop_oneof![
        6 => (min..=max).prop_map(Value::from),
        2 => prop::sample::select(vec![min - 1, max + 1, min, max]).prop_map(Value::from),
        1 => (min..=max).prop_map(|n| number(n as f64)),
        1 => (min..=max).prop_map(|n| number(n as f64 + 0.5)),
        1 => prop::sample::select(vec![
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            number(1e300),
            number(-0.0),
            number(9.0e15),
            number(1e15)
        ]),
    ]
    .boxed()
}

fn number_for(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema["minimum"].as_f64().unwrap_or(-1e9);
    let max = schema["maximum"].as_f64().unwrap_or(1e9);
    prop_oneof![
        6 => (min..=max).prop_map(number),
        2 => prop::sample::select(vec![min, max, min - 0.01, max + 0.01]).prop_map(number),
        1 => ((min as i64)..=(max as i64)).prop_map(Value::from),
        1 => prop::sample::select(vec![json!(u64::MAX), number(1e300), number(-1e300), number(f64::MIN_POSITIVE)]),
    ]
    .boxed()
}

// === checks of one tool call's arguments ===

/// Prepares `args` for `tool`: never a panic, never a decoding failure after validation, and an
/// accepted call maps to exactly one upstream request of the template's shape whose path
/// parameters decode back to the arguments.
fn check_prepare(tool: &Tool, args: Value) -> Result<bool, TestCaseError> {
    let name = tool.def.name;
    match tool.prepare(Some(args.clone())) {
        Err(ArgsError::Decode(e)) => Err(TestCaseError::fail(format!(
            "{name}: valid arguments did not decode: {e}; arguments {args}"
        ))),
        Err(ArgsError::Invalid(problems)) => {
            prop_assert!(!problems.is_empty(), "{name}: refused with no problem");
            for p in &problems {
                prop_assert!(!p.message.is_empty(), "{name}: empty message");
            }
            Ok(false)
        }
        Ok(decoded) => {
            match tool.def.target {
                Target::Upstream { method, path } => {
                    let Some(req) = decoded.upstream else {
                        return Err(TestCaseError::fail(format!("{name}: no upstream request")));
                    };
                    prop_assert_eq!(req.method.as_str(), method);
                    let template = format!("{BASE_PATH}{path}");
                    let want: Vec<&str> = template.split('/').collect();
                    let got: Vec<&str> = req.path.split('/').collect();
                    prop_assert_eq!(
                        got.len(),
                        want.len(),
                        "{}: {} does not have the shape of {}",
                        name,
                        req.path,
                        template
                    );
                    // The typed input may have normalised the arguments (12.0 → 12).
                    let normalised = tool.validate(args).unwrap_or_default();
                    for (w, g) in want.iter().zip(&got) {
                        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                            Some(param) => {
                                let decoded =
                                    percent_encoding::percent_decode_str(g).decode_utf8_lossy();
                                prop_assert_eq!(
                                    Some(decoded.as_ref()),
                                    normalised[param].as_str(),
                                    "{}: path segment {} of {}",
                                    name,
                                    g,
                                    req.path
                                );
                            }
                            None => prop_assert_eq!(w, g),
                        }
                    }
                }
                Target::Builtin(_) => prop_assert!(decoded.upstream.is_none()),
            }
            Ok(true)
        }
    }
}

/// The reference validator for a published schema: the `jsonschema` crate, formats asserted.
fn reference(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

/// Values where the two validators may disagree on purpose; the test replaces them with a value
/// both accept and requires agreement on the rest. Each one is documented here:
/// - integers beyond ±9·10^15 (or beyond i64): JSON Schema counts `1e300` as an integer, but it
///   cannot be held exactly in the typed input or Cedar's 64-bit `Long`, so flowgate refuses it;
/// - date-times with a leap second (`23:59:60`) or an offset beyond ±14:00: valid RFC 3339, but
///   neither Cedar nor the Management API take them, so flowgate may refuse them;
/// - emails with a quoted local part (`"a b"@x.org`), an address literal (`a@[127.0.0.1]`), a
///   host without a dot (`a@localhost`), or an IDNA label (`xn--…`, not decoded by flowgate):
///   valid RFC 5321, not addresses a studio mails; flowgate refuses the first three;
/// - URIs without `scheme://` and a host (`mailto:a@b.org`, `urn:x`, `file:///x`): valid RFC
///   3986, but flowgate's `uri` is a web address an owner can open, so it refuses them.
fn tolerated(schema: &Value, value: &mut Value) -> bool {
    let mut found = false;
    match (schema["type"].as_str(), value) {
        (Some("integer"), v @ Value::Number(_)) => {
            let n = v.as_number().cloned();
            let unrepresentable = n.is_some_and(|n| {
                n.as_i64().is_none() && n.as_f64().is_some_and(|f| f.fract() == 0.0)
                    || n.as_f64().is_some_and(|f| f.abs() >= 9.0e15)
            });
            if unrepresentable {
                *v = json!(schema["minimum"].as_i64().unwrap_or(0));
                found = true;
            }
        }
        (Some("string"), v @ Value::String(_)) if schema["format"] == "date-time" => {
            let s = v.as_str().unwrap_or_default();
            let leap = s.get(17..19) == Some("60");
            let offset = s
                .get(s.len().saturating_sub(6)..)
                .filter(|o| o.starts_with(['+', '-']) && o.as_bytes().get(3) == Some(&b':'))
                .and_then(|o| o[1..3].parse::<u32>().ok().map(|h| (h, &o[4..])))
                .is_some_and(|(h, m)| h > 14 || (h == 14 && m != "00"));
            if leap || offset {
                *v = json!("2026-01-01T00:00:00Z");
                found = true;
            }
        }
        (Some("string"), v @ Value::String(_)) if schema["format"] == "email" => {
            let s = v.as_str().unwrap_or_default();
            let domain = s.rsplit_once('@').map_or("", |(_, d)| d);
            if s.starts_with('"')
                || domain.starts_with('[')
                || !domain.contains('.')
                || domain.to_ascii_lowercase().contains("xn--")
            {
                *v = json!("ana@lotus.example");
                found = true;
            }
        }
        (Some("string"), v @ Value::String(_)) if schema["format"] == "uri" => {
            let s = v.as_str().unwrap_or_default();
            let host = s
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
                .map(|authority| authority.rsplit('@').next().unwrap_or_default())
                .unwrap_or_default();
            let web = s.find(':').is_some_and(|i| s[i..].starts_with("://"));
            if !web || host.is_empty() || host.starts_with(':') {
                *v = json!("https://example.com/");
                found = true;
            }
        }
        (Some("array"), Value::Array(items)) => {
            for item in items {
                found |= tolerated(&schema["items"], item);
            }
        }
        (Some("object"), Value::Object(map)) => {
            for (name, v) in map.iter_mut() {
                if let Some(s) = schema["properties"].get(name) {
                    found |= tolerated(s, v);
                }
            }
        }
        _ => {}
    }
    found
}

/// The hand-written validator and the reference agree on `args` (up to the tolerated values).
fn check_agreement(
    name: &str,
    schema: &Value,
    ours: &Validator,
    theirs: &jsonschema::Validator,
    args: &Value,
) -> Result<(), TestCaseError> {
    let agree = |args: &Value| {
        let mut mine = args.clone();
        let problems = ours.validate(&mut mine);
        (problems.is_empty(), theirs.is_valid(args), problems)
    };
    let (a, b, problems) = agree(args);
    if a == b {
        return Ok(());
    }
    let mut replaced = args.clone();
    if tolerated(schema, &mut replaced) {
        let (a, b, problems) = agree(&replaced);
        prop_assert_eq!(
            a,
            b,
            "{}: flowgate {} and jsonschema {} disagree on {} (with tolerated values replaced); flowgate's problems: {:?}",
            name,
            a,
            b,
            replaced,
            problems
        );
        return Ok(());
    }
    Err(TestCaseError::fail(format!(
        "{name}: flowgate says {}, jsonschema says {} for {args}; flowgate's problems: {problems:?}",
        if a { "valid" } else { "invalid" },
        if b { "valid" } else { "invalid" },
    )))
}

// === the properties ===

proptest! {
    #![proptest_config(config())]

    /// Any JSON value as the arguments of any tool: a list of problems or a request, never a
    /// panic or a decoding failure.
    #[test]
    fn any_json_as_arguments_never_panics(tool in any::<prop::sample::Index>(), args in any_json()) {
        let tools: Vec<&Tool> = registry().iter().collect();
        check_prepare(tools[tool.index(tools.len())], args)?;
    }
}

/// For every tool: arguments generated from its published schema are judged the same by the
/// hand-written validator and by the `jsonschema` crate, and every accepted call maps to one
/// upstream request of the template's shape.
#[test]
fn generated_arguments_agree_with_jsonschema_and_map_to_one_request() {
    for tool in registry().iter() {
        let schema = tool_schema(tool);
        let ours = Validator::compile(&schema, tool.def.sensitive).unwrap();
        let theirs = reference(&schema);
        let accepted = std::cell::Cell::new(0u32);
        let mut runner = TestRunner::new(config());
        let result = runner.run(&object_for(&schema), |args| {
            check_agreement(tool.def.name, &schema, &ours, &theirs, &args)?;
            if check_prepare(tool, args)? {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{}: {e}", tool.def.name);
        }
        // The generator must reach the accepting side too, or the mapping is never checked.
        assert!(
            accepted.get() > 0 || cases() < 64,
            "{}: no generated arguments were accepted",
            tool.def.name
        );
    }
}

/// The same differential for every format and keyword of the supported subset, including
/// `uri`, which no shipped tool uses yet.
#[test]
fn every_keyword_of_the_subset_agrees_with_jsonschema() {
    let schema = subset_schema();
    let ours = Validator::compile(&schema, &[]).unwrap();
    let theirs = reference(&schema);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: cases() * 4,
        ..config()
    });
    runner
        .run(&object_for(&schema), |args| {
            check_agreement("subset", &schema, &ours, &theirs, &args)
        })
        .unwrap();
}

/// Every keyword and format of the manifest's schema subset; `n` is required.
fn subset_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "mail": {"type": "string", "format": "email"},
            "site": {"type": "string", "format": "uri"},
            "code": {"type": "string", "pattern": "^[A-Z0-9_-]{3,32}$", "minLength": 3, "maxLength": 8},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "n": {"type": "integer", "minimum": -5, "maximum": 5},
            "x": {"type": "number", "minimum": 0.5, "maximum": 2.5},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 1, "maxItems": 2},
            "inner": {
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "required": ["a"],
                "additionalProperties": false
            }
        },
        "required": ["n"],
        "additionalProperties": false
    })
}

// === over HTTP: JSON-RPC bodies and OAuth endpoints ===

/// `n` values of a strategy (the same ones every run unless `PROPTEST_RNG_SEED` is set).
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::new(config());
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// A request body for `/mcp`: bytes, JSON, JSON-RPC envelopes, and tool calls with arguments
/// generated from the tools' schemas.
fn mcp_body() -> BoxedStrategy<Vec<u8>> {
    let tools: Vec<(String, Value)> = registry()
        .iter()
        .map(|t| (t.def.name.to_string(), tool_schema(t)))
        .collect();
    let call = prop::sample::select(tools).prop_flat_map(|(name, schema)| {
        (Just(name), object_for(&schema), any_scalar()).prop_map(|(name, args, id)| {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": name, "arguments": args}})
        })
    });
    let envelope = (
        any_scalar(),
        prop::sample::select(vec![
            "tools/call",
            "tools/list",
            "initialize",
            "ping",
            "resources/list",
            "notifications/initialized",
            "nope",
        ]),
        any_json(),
    )
        .prop_map(|(id, method, params)| {
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        });
    prop_oneof![
        4 => call.prop_map(|v| v.to_string().into_bytes()),
        2 => envelope.prop_map(|v| v.to_string().into_bytes()),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => prop::collection::vec(any_json(), 0..4).prop_map(|v| Value::Array(v).to_string().into_bytes()),
    ]
    .boxed()
}

/// Every body on `/mcp` (stateless mode, a Pro key with every scope) gets an answer below 500;
/// a JSON-RPC request with an id gets a JSON-RPC response with that id.
#[tokio::test]
async fn json_rpc_bodies_are_answered_never_with_a_server_error() {
    let gw = Gateway::start_with(|c| c.mcp_mode = flowgate::config::McpMode::Stateless).await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for body in draw(mcp_body(), http_cases()) {
        assert!(Instant::now() < deadline, "took longer than 120 s");
        let resp = http
            .post(gw.url())
            .bearer_auth(gw.pro_key())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("no answer to {}: {e}", String::from_utf8_lossy(&body)));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(
            status < 500,
            "{status} for {}: {text}",
            String::from_utf8_lossy(&body)
        );
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let is_request = request["jsonrpc"] == "2.0"
            && request["method"] == "tools/call"
            && (request["id"].is_string() || request["id"].is_i64() || request["id"].is_u64());
        if is_request && status == 200 {
            let answer: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("not JSON ({e}) for {request}: {text}"));
            assert_eq!(answer["id"], request["id"], "{text}");
            assert!(
                answer.get("result").is_some() != answer.get("error").is_some(),
                "{text}"
            );
        }
    }
    gw.stop().await;
}

/// A form field value: the real client id, plausible values, or anything.
fn form_value(client_id: String) -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just(client_id),
        1 => prop::sample::select(vec![
            "authorization_code", "refresh_token", "client_credentials", "", "S256",
            "http://127.0.0.1:33333/callback", "https://example.com/cb", "fgr_x", "fga_x",
        ]).prop_map(str::to_string),
        2 => "[A-Za-z0-9_.~-]{0,64}",
        1 => any::<String>(),
    ]
    .boxed()
}

/// An OAuth form body: known and unknown fields, repeated fields, broken encodings.
fn oauth_form(client_id: String) -> BoxedStrategy<(Vec<u8>, &'static str)> {
    let field = prop::sample::select(vec![
        "grant_type",
        "client_id",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "resource",
        "token",
        "token_type_hint",
        "scope",
        "x",
    ]);
    let pairs = prop::collection::vec((field, form_value(client_id)), 0..8).prop_map(|pairs| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    });
    let content_type = prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
    ]);
    (
        prop_oneof![
            6 => pairs,
            1 => "[a-z_=&%0-9+]{0,64}".prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..128),
        ],
        content_type,
    )
        .boxed()
}

/// A registration body: plausible metadata with odd values, or anything.
fn registration() -> BoxedStrategy<Vec<u8>> {
    let uri = prop_oneof![
        prop::sample::select(vec![
            "http://127.0.0.1:33333/callback",
            "http://localhost/cb",
            "https://example.com/cb",
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "javascript:alert(1)",
            "not a url",
            "",
        ])
        .prop_map(Value::from),
        any_scalar(),
    ];
    let metadata = (
        prop::collection::vec(uri, 0..12),
        any_scalar(),
        prop::option::of(prop::sample::select(vec!["none", "client_secret_basic"])),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["authorization_code", "refresh_token", "implicit"]),
            0..3,
        )),
    )
        .prop_map(|(uris, name, auth, grants)| {
            let mut m = json!({"redirect_uris": uris, "client_name": name});
            if let Some(a) = auth {
                m["token_endpoint_auth_method"] = json!(a);
            }
            if let Some(g) = grants {
                m["grant_types"] = json!(g);
            }
            m.to_string().into_bytes()
        });
    prop_oneof![
        4 => metadata,
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..128),
    ]
    .boxed()
}

/// The OAuth error codes flowgate's endpoints answer with (RFC 6749 §5.2, RFC 7591 §3.2.2,
/// RFC 8707 §2).
const OAUTH_ERRORS: [&str; 8] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unsupported_grant_type",
    "invalid_target",
    "invalid_client_metadata",
    "invalid_redirect_uri",
    "temporarily_unavailable",
];

/// Checks one OAuth answer: below 500, and either the endpoint's success or a JSON OAuth error.
async fn check_oauth_answer(what: &str, body: &[u8], resp: reqwest::Response) {
    let status = resp.status().as_u16();
    let no_store = resp
        .headers()
        .get("cache-control")
        .is_some_and(|v| v == "no-store");
    let text = resp.text().await.unwrap();
    let shown = String::from_utf8_lossy(body);
    assert!(status < 500, "{what}: {status} for {shown}: {text}");
    let success = match what {
        "token" => status == 200,
        "revoke" => status == 200,
        _ => status == 201,
    };
    if success {
        if what == "token" {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["token_type"], "Bearer", "{text}");
        } else if what == "register" {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["client_id"].is_string(), "{text}");
        }
        return;
    }
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: {status} for {shown} is not JSON ({e}): {text}"));
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        OAUTH_ERRORS.contains(&error),
        "{what}: {status} for {shown}: unknown error {text}"
    );
    assert!(v["error_description"].is_string(), "{what}: {text}");
    assert!(
        matches!(status, 400 | 401 | 413 | 415 | 429),
        "{what}: {status} for {shown}: {text}"
    );
    assert!(no_store, "{what}: an error without Cache-Control: no-store");
}

/// Generated bodies on the token, revocation and registration endpoints all get a well-formed
/// OAuth answer: never a 5xx, never a dropped connection, never a plain-text error.
#[tokio::test]
async fn oauth_endpoints_answer_every_body_with_an_oauth_error_or_success() {
    let gw = Gateway::start().await;
    let base = gw.running.app.base_url.clone();
    let http = reqwest::Client::new();
    let client_id = gw
        .running
        .app
        .oauth
        .grants
        .register_client("Fuzz", &["http://127.0.0.1:33333/callback".to_string()])
        .await
        .unwrap()
        .client_id;
    let deadline = Instant::now() + Duration::from_secs(120);
    let n = http_cases();
    for (i, (body, content_type)) in draw(oauth_form(client_id), n).into_iter().enumerate() {
        assert!(Instant::now() < deadline, "took longer than 120 s");
        let what = if i % 2 == 0 { "token" } else { "revoke" };
        let resp = http
            .post(format!("{base}/oauth/{what}"))
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        check_oauth_answer(what, &body, resp).await;
    }
    for body in draw(registration(), n / 2) {
        assert!(Instant::now() < deadline, "took longer than 120 s");
        let resp = http
            .post(format!("{base}/oauth/register"))
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("register: no answer: {e}"));
        check_oauth_answer("register", &body, resp).await;
    }
    gw.stop().await;
}

// === client metadata documents ===

const DOC_URL: &str = "https://app.example.com/oauth/client.json";

fn metadata_document() -> BoxedStrategy<Vec<u8>> {
    let uris = prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "https://app.example.com/cb",
                "http://127.0.0.1/cb",
                "http://app.example.com/cb",
                "https://a/#x",
                "nope",
            ])
            .prop_map(Value::from),
            any_scalar(),
        ],
        0..12,
    );
    let client_id = prop_oneof![Just(Value::from(DOC_URL)), any_scalar()];
    let document =
        (client_id, uris, any_scalar(), any_json()).prop_map(|(id, uris, name, extra)| {
            json!({"client_id": id, "redirect_uris": uris, "client_name": name, "extra": extra})
                .to_string()
                .into_bytes()
        });
    prop_oneof![
        4 => document,
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => (1usize..2000).prop_map(|depth| "[".repeat(depth).into_bytes()),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes as a client metadata document: a client that satisfies every rule, or a
    /// sentence saying why not; never a panic.
    #[test]
    fn client_metadata_documents_never_panic(body in metadata_document()) {
        match flowgate::oauth::cimd::parse_document(DOC_URL, "app.example.com", &body) {
            Ok(client) => {
                prop_assert_eq!(&client.client_id, DOC_URL);
                prop_assert!(flowgate::oauth::check_redirect_uris(&client.redirect_uris).is_ok());
                let n = client.client_name.chars().count();
                prop_assert!((1..=100).contains(&n), "client name of {} characters", n);
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }
}

// === what these properties found, kept as regressions ===

/// Values the differential test found flowgate accepting and JSON Schema refusing (or the
/// reverse), with the exact outcome now.
#[test]
fn formats_found_by_the_differential_test_stay_fixed() {
    let validator = Validator::compile(&subset_schema(), &[]).unwrap();
    let problems = |field: &str, value: &str| -> Vec<String> {
        let mut args = json!({ "n": 0, field: value });
        validator
            .validate(&mut args)
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let refused = |field: &str, value: &str, message: &str| {
        assert_eq!(
            problems(field, value),
            [format!("`{field}`: {message}, got {value:?}")],
            "{field} = {value:?}"
        );
    };
    let accepted = |field: &str, value: &str| {
        assert_eq!(problems(field, value), Vec::<String>::new(), "{value:?}");
    };
    let date_time =
        "must be an RFC 3339 date-time with a UTC offset, like 2026-12-01T19:00:00-05:00";
    // chrono takes a space between date and time; RFC 3339 and JSON Schema do not.
    refused("when", "0000-01-01 00:00:00-00:00", date_time);
    refused("when", "2026-12-01 19:00:00Z", date_time);
    accepted("when", "2026-12-01t19:00:00z");
    // chrono takes a signed year.
    refused("day", "-001-01-01", "must be a date like 2026-12-01");
    refused("day", "+2026-01-01", "must be a date like 2026-12-01");
    accepted("day", "2026-02-28");
    // Dot-atom local parts and host names, by RFC 5321 and RFC 1123.
    for bad in [
        "a..b@c.co",
        ".a@b.co",
        "a.@b.co",
        "a@-b.co",
        "a@b-.co",
        "a@b..co",
        "a@b.co.",
        "a@ab--c.co",
    ] {
        refused("mail", bad, "must be an email address");
    }
    for good in [
        "ana@lotus.example",
        "a+tag@b.co",
        "o'neil@x-y.example",
        "a@xn--bcher-kva.example",
    ] {
        accepted("mail", good);
    }
    // Percent-encodings need two hex digits; brackets only around an IPv6 host.
    let uri = "must be an absolute URI like https://example.com/page";
    for bad in [
        "http://a/%",
        "http://a/%zz",
        "http://a/[x]",
        "http://[::1/x",
        "http://[nope]/",
        "http://a:8x/",
        "http:///x",
    ] {
        refused("site", bad, uri);
    }
    for good in [
        "https://example.com/page?q=1#top",
        "http://[::1]:8080/",
        "https://u:p@example.com/%41",
        "ftp://x",
    ] {
        accepted("site", good);
    }
}

/// The token and revocation endpoints answered a body of another content type with axum's
/// plain-text 415; an OAuth client reads JSON errors (RFC 6749 §5.2).
#[tokio::test]
async fn oauth_form_endpoints_answer_another_content_type_with_an_oauth_error() {
    let gw = Gateway::start().await;
    let base = gw.running.app.base_url.clone();
    let http = reqwest::Client::new();
    for endpoint in ["token", "revoke"] {
        let resp = http
            .post(format!("{base}/oauth/{endpoint}"))
            .header("Content-Type", "application/json")
            .body(r#"{"grant_type":"refresh_token"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "{endpoint}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{endpoint}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "error": "invalid_request",
                "error_description": "Form requests must have `Content-Type: application/x-www-form-urlencoded`"
            }),
            "{endpoint}"
        );
    }
    gw.stop().await;
}

/// The config file is read by the same YAML reader as the manifest: a mistake names the key,
/// the line and the column, in one line.
#[test]
fn config_file_mistakes_name_the_key_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flowgate.yaml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        flowgate::config::Config::load(Some(&path), Vec::new())
            .unwrap_err()
            .to_string()
    };
    let shown = path.display();
    // The list of keys grows with the config: only its start is pinned here.
    let unknown = load("listen: 127.0.0.1:0\nlisten_port: 8080\n");
    assert!(
        unknown.starts_with(&format!("the config file {shown} is not valid: field `listen_port`: unknown field `listen_port`, expected one of `listen`, `public_url`, ")),
        "{unknown}"
    );
    assert!(unknown.ends_with("` at line 2, column 1"), "{unknown}");
    assert_eq!(
        load("tools_page_size: many\n"),
        format!(
            "the config file {shown} is not valid: field `tools_page_size`: expected a whole number, 0 or more at line 1, column 18"
        )
    );
    assert_eq!(
        load("allowed_hosts: [a, b\n"),
        format!(
            "the config file {shown} is not valid: field `allowed_hosts`: unclosed bracket '[' at line 1, column 16"
        )
    );
}
