//! Micro-benchmarks of the per-call hot path: argument validation and decoding, and the Cedar
//! decision, for a typical write tool (`create_class`) and a read tool (`list_classes`).
//!
//! Run: `cargo bench --bench hot_path`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flowgate::authz::{Authz, Principal, PrincipalKind, Studio};
use flowgate::tool::Registry;
use serde_json::Value;

fn example(registry: &Registry, tool: &str) -> Value {
    let t = registry.get(tool).unwrap();
    let e: Value = serde_json::from_str(t.def.example).unwrap();
    e["input"].clone()
}

fn bench(c: &mut Criterion) {
    let registry = Registry::new().unwrap();
    let authz = Authz::shipped().unwrap();
    let principal = Principal {
        kind: PrincipalKind::Key,
        id: "key_0123456789abcdef".into(),
        studio: "std_lotus".into(),
        name: "bench".into(),
        scopes: flowgate::tool::catalog::SCOPES
            .iter()
            .map(|s| s.name.to_string())
            .collect(),
    };
    let studio = Studio {
        id: "std_lotus".into(),
        tier: "pro".into(),
    };

    for name in ["create_class", "list_classes"] {
        let tool = registry.get(name).unwrap();
        let args = example(&registry, name);
        c.bench_function(&format!("validate+decode {name}"), |b| {
            b.iter(|| tool.prepare(Some(black_box(args.clone()))).unwrap());
        });
        let decoded = tool.prepare(Some(args.clone())).unwrap();
        c.bench_function(&format!("authorize {name} (allow)"), |b| {
            b.iter(|| {
                let d = authz.authorize(&principal, &studio, tool.def, decoded.context.clone());
                assert!(d.is_allow());
            });
        });
    }
    let tool = registry.get("create_class").unwrap();
    let decoded = tool
        .prepare(Some(example(&registry, "create_class")))
        .unwrap();
    let free = Studio {
        id: "std_lotus".into(),
        tier: "free".into(),
    };
    c.bench_function("authorize create_class (deny: free tier)", |b| {
        b.iter(|| {
            let d = authz.authorize(&principal, &free, tool.def, decoded.context.clone());
            assert!(!d.is_allow());
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
