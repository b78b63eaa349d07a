//! Micro-benchmarks of the per-call hot path: argument validation, request mapping (the typed
//! input, the upstream request and the Cedar context), both together, and the Cedar decision, for
//! a typical write tool (`create_class`) and a read tool (`list_classes`); then the stages around
//! them: secret-key authentication (remembered, and a SQLite lookup by hash with 10 and 1,000
//! keys in the store), the rate-limit check, and audit appends (one alone, and 32 at once, which
//! the writer commits together).
//!
//! Run: `cargo bench --bench hot_path`. After Criterion's timings it prints how many heap
//! allocations (and bytes) each stage makes per call, counted by this benchmark's global
//! allocator on every thread (the audit writer's thread too), outside the timed loops.

use std::alloc::System;
use std::hint::black_box;
use std::sync::Mutex;

use criterion::{Criterion, criterion_group};
use flowgate::authz::Authz;
use flowgate::identity::{Principal, PrincipalKind, Studio};
use flowgate::tool::Registry;
use serde_json::Value;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The system allocator, counting allocations and bytes on every thread.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and bytes per call of each stage, in the order measured.
static COUNTED: Mutex<Vec<(String, f64, f64)>> = Mutex::new(Vec::new());

/// Runs `f` 1,000 times (after 10 unmeasured calls) and notes its allocations per call
/// (reallocations count as allocations, their growth as bytes).
fn count_allocations(name: &str, mut f: impl FnMut()) {
    const CALLS: usize = 1_000;
    for _ in 0..10 {
        f();
    }
    let region = Region::new(ALLOCATOR);
    for _ in 0..CALLS {
        f();
    }
    let change = region.change();
    let per = |n: usize| n as f64 / CALLS as f64;
    COUNTED.lock().unwrap().push((
        name.to_string(),
        per(change.allocations + change.reallocations),
        per(change.bytes_allocated + change.bytes_reallocated.max(0).unsigned_abs()),
    ));
}

/// Times `f` with Criterion and counts its allocations.
fn stage(c: &mut Criterion, name: &str, mut f: impl FnMut()) {
    c.bench_function(name, |b| b.iter(&mut f));
    count_allocations(name, f);
}

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
        name: "Lotus".into(),
        tier: "pro".into(),
    };

    for name in ["create_class", "list_classes"] {
        let tool = registry.get(name).unwrap();
        let args = example(&registry, name);
        stage(c, &format!("validate {name}"), || {
            tool.validate(black_box(args.clone())).unwrap();
        });
        let valid = tool.validate(args.clone()).unwrap();
        stage(c, &format!("map {name}"), || {
            (tool.def.decode)(black_box(valid.clone())).unwrap();
        });
        stage(c, &format!("validate+decode {name}"), || {
            tool.prepare(Some(black_box(args.clone()))).unwrap();
        });
        let decoded = tool.prepare(Some(args.clone())).unwrap();
        stage(c, &format!("authorize {name} (allow)"), || {
            let d = authz.authorize(&principal, &studio, tool.def, decoded.context.clone());
            assert!(d.is_allow());
        });
    }
    let tool = registry.get("create_class").unwrap();
    let decoded = tool
        .prepare(Some(example(&registry, "create_class")))
        .unwrap();
    let free = Studio {
        id: "std_lotus".into(),
        name: "Lotus".into(),
        tier: "free".into(),
    };
    stage(c, "authorize create_class (deny: free tier)", || {
        let d = authz.authorize(&principal, &free, tool.def, decoded.context.clone());
        assert!(!d.is_allow());
    });
}

/// The stages that touch the store or shared state: on a real (temporary) SQLite store, and on
/// PostgreSQL when `FLOWGATE_BENCH_DATABASE_URL` names an empty database (its revocation check
/// and its shared rate limit differ from SQLite's).
fn bench_stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    stages_on(
        c,
        "SQLite",
        &flowgate::store::Location::Sqlite(dir.path().join("bench.sqlite")),
    );
    if let Ok(url) = std::env::var("FLOWGATE_BENCH_DATABASE_URL") {
        stages_on(c, "PostgreSQL", &flowgate::store::Location::Postgres(url));
    }
}

fn stages_on(c: &mut Criterion, backend: &str, location: &flowgate::store::Location) {
    use flowgate::audit::{Audit, Record};
    use flowgate::identity::keys::{Keys, parse_scopes};
    use flowgate::limit::Limits;
    use flowgate::store::Store;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(location)).unwrap();
    let keys = Keys::new(store.clone());
    let all = parse_scopes("all").unwrap();
    let secret = rt
        .block_on(keys.create("std_bench", "bench", &all, None))
        .unwrap()
        .secret;
    rt.block_on(keys.create_many("std_other", "filler", &all, None, 999))
        .unwrap();
    stage(
        c,
        &format!("authenticate key, store lookup ({backend})"),
        || {
            let p = rt.block_on(keys.authenticate(black_box(&secret))).unwrap();
            assert!(p.is_ok());
        },
    );

    // A remembered credential costs one revocation check: the marker file's read on SQLite,
    // an atomic load of the listened-to epoch on PostgreSQL.
    let remembered = flowgate::identity::remembered::Remembered::new(store.revocations().clone());
    let lookup = || async { keys.authenticate(&secret).await };
    rt.block_on(async {
        // PostgreSQL: wait for the listener, so the entry is remembered.
        for _ in 0..500 {
            if store.revocations().mark().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        remembered.authenticate(&secret, lookup()).await
    })
    .unwrap()
    .0
    .unwrap();
    stage(
        c,
        &format!("authenticate key, remembered: revocation check ({backend})"),
        || {
            let (p, hit) = rt
                .block_on(remembered.authenticate(black_box(&secret), lookup()))
                .unwrap();
            assert!(p.is_ok() && hit);
        },
    );

    // In memory on SQLite; leases from the shared bucket on PostgreSQL (a high limit, so the
    // bench measures the cost, not refusals: 100,000,000/min leases 2,500 calls at a time).
    let shared = (store.backend() == "postgres").then(|| store.clone());
    let limits = Limits::new(&[("pro".to_string(), 100_000_000)].into(), shared);
    stage(c, &format!("rate-limit check ({backend})"), || {
        rt.block_on(limits.check(black_box("pro"), black_box("key:key_0123456789abcdef")))
            .unwrap();
    });
    // The same with a Pro studio's real limit (600/min: a lease is 10 calls), one call per lease
    // refill measured as the share of a round trip.
    let real = Limits::new(
        &[("pro".to_string(), 600)].into(),
        (store.backend() == "postgres").then(|| store.clone()),
    );
    let mut n = 0u64;
    stage(
        c,
        &format!("rate-limit check, 600/min, new principal each 10 calls ({backend})"),
        || {
            n += 1;
            let key = format!("key:bench{}", n / 10);
            let _ = rt.block_on(real.check(black_box("pro"), &key));
        },
    );

    let audit = Audit::new(store);
    let record = Record {
        seq: 0,
        at: flowgate::store::Timestamp::now(),
        request_id: "0b6c2d64-1a2b-4c3d-8e9f-0123456789ab".into(),
        studio: Some("std_bench".into()),
        principal_kind: Some("key".into()),
        principal_id: Some("key_0123456789abcdef".into()),
        principal_name: Some("bench".into()),
        tool: Some("get_class".into()),
        arguments: Some(serde_json::json!({"class_id": "cls_vinyasa_tue"})),
        decision: Some("allow".into()),
        policies: vec!["scope-read".into(), "tier".into()],
        outcome: "ok".into(),
        message: None,
        upstream_status: Some(200),
        duration_ms: 1,
        client_addr: None,
    };
    stage(c, &format!("audit append, one record ({backend})"), || {
        rt.block_on(audit.append(black_box(&record))).unwrap();
    });
    let mut group = c.benchmark_group(format!("audit append, 32 at once ({backend})"));
    group.throughput(criterion::Throughput::Elements(32));
    group.bench_function("group commit", |b| {
        b.iter(|| {
            rt.block_on(futures::future::join_all(
                (0..32).map(|_| audit.append(black_box(&record))),
            ))
            .into_iter()
            .for_each(|r| assert!(r.is_ok()));
        });
    });
    group.finish();
    count_allocations(
        &format!("audit append, 32 at once ({backend}), per 32"),
        || {
            rt.block_on(futures::future::join_all(
                (0..32).map(|_| audit.append(black_box(&record))),
            ));
        },
    );
}

criterion_group!(benches, bench, bench_stages);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let counted = COUNTED.lock().unwrap();
    if !counted.is_empty() {
        println!("\nheap allocations per call (1,000 calls, every thread)");
        println!("{:<72} {:>8} {:>10}", "stage", "allocs", "bytes");
        for (name, allocations, bytes) in counted.iter() {
            println!("{name:<72} {allocations:>8.1} {bytes:>10.0}");
        }
    }
}
