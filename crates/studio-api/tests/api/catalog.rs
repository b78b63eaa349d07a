//! The OpenAPI document against the router, the tool manifest and the SPEC catalog.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use crate::harness::{Api, PRO};

/// `(method, path)` pairs of the document, path parameters normalised to `{}`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), normalise(path)));
        }
    }
    ops
}

fn normalise(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The upstream calls of SPEC §2 (tools answered by the gateway left out).
const SPEC_CALLS: &[(&str, &str)] = &[
    ("GET", "/classes"),
    ("GET", "/classes/{class_id}"),
    ("POST", "/classes"),
    ("PATCH", "/classes/{class_id}"),
    ("POST", "/classes/{class_id}/cancel"),
    ("DELETE", "/classes/{class_id}"),
    ("GET", "/schedule"),
    ("POST", "/classes/{class_id}/occurrences"),
    ("POST", "/schedule/{occurrence_id}/reschedule"),
    ("GET", "/members"),
    ("GET", "/members/{member_id}"),
    ("POST", "/members/invitations"),
    ("PATCH", "/members/{member_id}"),
    ("POST", "/members/{member_id}/membership/cancel"),
    ("GET", "/content"),
    ("PATCH", "/content/{content_id}"),
    ("GET", "/plans"),
    ("POST", "/plans"),
    ("PATCH", "/plans/{plan_id}"),
    ("POST", "/plans/{plan_id}/archive"),
    ("GET", "/instructors"),
    ("POST", "/instructors"),
    ("PATCH", "/instructors/{instructor_id}"),
    ("GET", "/locations"),
    ("POST", "/locations"),
    ("PATCH", "/locations/{location_id}"),
    ("DELETE", "/locations/{location_id}"),
    ("POST", "/locations/{location_id}/rooms"),
    ("PATCH", "/locations/{location_id}/rooms/{room_id}"),
    ("DELETE", "/locations/{location_id}/rooms/{room_id}"),
    ("GET", "/coupons"),
    ("POST", "/coupons"),
    ("POST", "/coupons/{coupon_id}/archive"),
    ("GET", "/programs"),
    ("POST", "/programs"),
    ("PATCH", "/programs/{program_id}"),
    ("GET", "/bookings"),
    ("GET", "/schedule/{occurrence_id}/bookings"),
    ("POST", "/bookings"),
    ("POST", "/bookings/{booking_id}/cancel"),
    ("GET", "/financials/summary"),
    ("GET", "/expenses"),
    ("POST", "/expenses"),
    ("PATCH", "/expenses/{expense_id}"),
    ("DELETE", "/expenses/{expense_id}"),
    ("GET", "/messages"),
    ("POST", "/messages"),
    ("GET", "/directory/studios"),
    ("GET", "/directory/classes"),
    ("GET", "/studio"),
    ("POST", "/auth/sign-in"),
];

#[test]
fn every_spec_catalog_call_is_in_the_document() {
    let ops = operations(&flowgate_studio_api::openapi());
    assert_eq!(SPEC_CALLS.len(), 51);
    for (method, path) in SPEC_CALLS {
        assert!(
            ops.contains(&(method.to_string(), normalise(path))),
            "{method} {path} missing from openapi.json"
        );
    }
    // Plus the two meta routes, nothing else.
    assert_eq!(ops.len(), SPEC_CALLS.len() + 2);
}

#[test]
fn every_upstream_call_in_the_manifest_is_in_the_document() {
    let doc_json = flowgate_studio_api::openapi();
    let ops = operations(&doc_json);
    let dir = package_dir().join("../../manifest");
    let mut base = "/v1".to_owned();
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        if file.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let doc = read_yaml(&file).unwrap();
        if let Some(b) = doc["upstream"]["base_path"].as_str() {
            base = b.to_owned();
        }
        let Some(tools) = doc["tools"].as_array() else {
            continue;
        };
        for tool in tools {
            let name = tool["name"].as_str().unwrap_or("?");
            if tool.get("builtin").is_some() {
                continue;
            }
            let method = tool["upstream"]["method"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no upstream.method"));
            let path = tool["upstream"]["path"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no upstream.path"));
            assert!(
                ops.contains(&(method.to_uppercase(), normalise(path))),
                "{}: tool `{name}`: {method} {path} is not in /v1/openapi.json",
                file.display()
            );
            check_inputs(&doc_json, name, method, path, tool);
            checked += 1;
        }
    }
    assert_eq!(base, "/v1");
    eprintln!("checked {checked} manifest upstream calls");
}

/// One manifest file, loosely: only the keys the checks need are looked at.
fn read_yaml(file: &Path) -> anyhow::Result<Value> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", file.display()))
}

/// The tool's inputs land where the API reads them: path parameters in the path, the rest of a
/// `GET`/`DELETE` in documented query parameters, the rest of a write in the body schema; and every
/// body field the API requires is required by the tool.
fn check_inputs(doc: &Value, tool: &str, method: &str, path: &str, spec: &Value) {
    let item = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(p, _)| normalise(p) == normalise(path))
        .map(|(_, v)| v)
        .unwrap();
    let op = &item[method.to_lowercase()];
    let query: BTreeSet<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let body = &op["requestBody"]["content"]["application/json"]["schema"];
    let path_params: Vec<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    let input = &spec["input"];
    let required: BTreeSet<&str> = input["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut names: Vec<&str> = input["properties"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if spec["paginated"].as_bool() == Some(true) {
        names.extend(["cursor", "limit"]);
    }
    for name in names {
        if path_params.contains(&name) {
            continue;
        }
        if matches!(method, "GET" | "DELETE") {
            assert!(
                query.contains(name),
                "tool `{tool}`: input `{name}` is not a query parameter of {method} {path}"
            );
        } else {
            assert!(
                body["properties"].get(name).is_some(),
                "tool `{tool}`: input `{name}` is not in the body of {method} {path}"
            );
        }
    }
    for field in body["required"].as_array().into_iter().flatten() {
        let field = field.as_str().unwrap();
        assert!(
            required.contains(field),
            "tool `{tool}`: the API requires `{field}` but the tool does not"
        );
    }
}

#[tokio::test]
async fn the_served_document_is_the_built_one_and_every_operation_is_routed() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let doc = c.get("/openapi.json").await.ok(200);
    assert_eq!(doc, flowgate_studio_api::openapi());
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "duplicate operationId"
            );
            let params = op["parameters"].as_array().unwrap();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = &seg[1..seg.len() - 1];
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{method} {path}: no `{name}` parameter"
                );
            }
            if method != "get"
                && method != "delete"
                && path != "/plans/{plan_id}/archive"
                && path != "/coupons/{coupon_id}/archive"
            {
                assert_eq!(
                    op["requestBody"]["content"]["application/json"]["schema"]["additionalProperties"],
                    false,
                    "{method} {path}"
                );
            }
            // Routed: whatever the answer, it is not the router's "no such route/method".
            let concrete = path.replace('{', "x_").replace('}', "");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = c.send(m, &concrete, Some("{}".into())).await;
            assert!(
                res.status != 405 && res.body["error"]["code"] != "route_not_found",
                "{method} {path} is not routed: {} {}",
                res.status,
                res.body
            );
        }
    }
    assert_eq!(ids.len(), 53);
}

#[tokio::test]
async fn every_documented_query_parameter_is_accepted() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let doc = flowgate_studio_api::openapi();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let mut query = Vec::new();
        for p in op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
        {
            let name = p["name"].as_str().unwrap();
            let schema = &p["schema"];
            let value = match (
                schema["enum"].get(0),
                schema["format"].as_str(),
                schema["type"].as_str(),
            ) {
                (Some(first), _, _) => first.as_str().unwrap().to_owned(),
                (_, Some("date-time"), _) if name == "to" => "2026-02-01T00:00:00Z".to_owned(),
                (_, Some("date-time"), _) => "2026-01-01T00:00:00Z".to_owned(),
                (_, Some("date"), _) if name == "to" => "2026-02-01".to_owned(),
                (_, Some("date"), _) => "2026-01-01".to_owned(),
                (_, _, Some("integer")) => "5".to_owned(),
                _ if name == "cursor" => continue,
                _ => "x".to_owned(),
            };
            query.push(format!("{name}={value}"));
            tried += 1;
        }
        let concrete = path.replace('{', "x_").replace('}', "");
        let res = c.get(&format!("{concrete}?{}", query.join("&"))).await;
        assert!(
            matches!(res.status, 200 | 404),
            "GET {concrete}?{}: {} {}",
            query.join("&"),
            res.status,
            res.body
        );
    }
    assert!(tried > 50, "{tried}");
}

/// This package's folder, as `cargo test` says it when it runs the test (not as it was when
/// the test was compiled: a build cache shared by two checkouts would point at the other one).
fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
