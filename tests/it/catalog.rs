//! The catalog generated from the manifest: every tool's documented example validates and maps
//! to exactly the documented upstream request; the checked-in Cedar schema and the README table
//! are what the manifest produces; argument validation lists every problem.

use std::path::Path;

use flowgate::tool::{ArgsError, Registry};
use serde_json::{Map, Value, json};

fn root() -> std::path::PathBuf {
    crate::harness::crate_dir()
}

/// Compares a checked-in file with what the build generates; `FLOWGATE_BLESS=1` refreshes it.
fn check_fresh(path: &Path, expected: &str, how: &str) {
    if std::env::var_os("FLOWGATE_BLESS").is_some() {
        std::fs::write(path, expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is stale: {how}. Run `FLOWGATE_BLESS=1 cargo test` and review the diff.",
        path.display()
    );
}

#[test]
fn every_catalog_tool_round_trips_its_documented_example() {
    let registry = Registry::new().unwrap();
    for tool in registry.iter() {
        let example: Value = serde_json::from_str(tool.def.example).unwrap();
        let decoded = tool
            .prepare(Some(example["input"].clone()))
            .unwrap_or_else(|e| panic!("{}: the example input is refused: {e:?}", tool.def.name));
        match (
            &decoded.upstream,
            example.get("request").filter(|r| !r.is_null()),
        ) {
            (None, None) => {}
            (Some(req), Some(expected)) => {
                assert_eq!(
                    req.method.as_str(),
                    expected["method"],
                    "{}: method",
                    tool.def.name
                );
                assert_eq!(
                    req.path,
                    expected["path"].as_str().unwrap(),
                    "{}: path",
                    tool.def.name
                );
                let query: Map<String, Value> = req
                    .query
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                    .collect();
                let expected_query = expected.get("query").cloned().unwrap_or(json!({}));
                assert_eq!(
                    Value::Object(query),
                    expected_query,
                    "{}: query",
                    tool.def.name
                );
                // A body method with no body inputs sends `{}`; the manifest may leave it out.
                let body = req.body.clone().map(Value::Object);
                let expected_body = expected
                    .get("body")
                    .cloned()
                    .or_else(|| req.method.has_body().then(|| json!({})));
                assert_eq!(body, expected_body, "{}: body", tool.def.name);
            }
            (got, want) => panic!("{}: upstream {got:?} vs documented {want:?}", tool.def.name),
        }
    }
}

#[test]
fn the_catalog_has_every_tool_of_the_spec() {
    let registry = Registry::new().unwrap();
    let names: Vec<&str> = registry.iter().map(|t| t.def.name).collect();
    for expected in [
        "whoami",
        "list_classes",
        "get_class",
        "create_class",
        "update_class",
        "cancel_class",
        "delete_class",
        "list_schedule",
        "add_class_schedule",
        "reschedule_occurrence",
        "list_members",
        "get_member",
        "invite_member",
        "update_member",
        "cancel_membership",
        "list_content",
        "update_content",
        "list_plans",
        "create_plan",
        "update_plan",
        "archive_plan",
        "list_instructors",
        "create_instructor",
        "update_instructor",
        "list_locations",
        "create_location",
        "update_location",
        "delete_location",
        "create_room",
        "update_room",
        "delete_room",
        "list_coupons",
        "create_coupon",
        "archive_coupon",
        "list_programs",
        "create_program",
        "update_program",
        "list_bookings",
        "list_class_bookings",
        "book_class",
        "cancel_booking",
        "financials_summary",
        "list_expenses",
        "create_expense",
        "update_expense",
        "delete_expense",
        "list_messages",
        "send_message",
        "search_studios",
        "search_classes",
        "list_audit_log",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is missing from the manifest"
        );
    }
    assert_eq!(names.len(), 51, "{names:?}");
}

#[test]
fn write_tools_take_an_idempotency_key_and_lists_take_a_cursor() {
    let registry = Registry::new().unwrap();
    for tool in registry.iter() {
        let schema = tool.input_schema_object();
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(
            props.contains_key("idempotency_key"),
            tool.def.access == flowgate::tool::Access::Write,
            "{}",
            tool.def.name
        );
        assert_eq!(
            props.contains_key("cursor"),
            tool.def.paginated,
            "{}",
            tool.def.name
        );
        assert_eq!(
            schema["additionalProperties"],
            json!(false),
            "{}",
            tool.def.name
        );
        assert!(!tool.def.description.is_empty());
    }
}

#[test]
fn invalid_arguments_list_every_problem_with_its_field() {
    let registry = Registry::new().unwrap();
    let tool = registry.get("create_coupon").unwrap();
    let err = tool
        .prepare(Some(json!({
            "code": "no spaces allowed",
            "percent_off": 0,
            "colour": "red",
            "idempotency_key": ""
        })))
        .unwrap_err();
    let ArgsError::Invalid(problems) = err else {
        panic!("{err:?}")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"code"), "{problems:?}");
    assert!(paths.contains(&"percent_off"), "{problems:?}");
    assert!(paths.contains(&"colour"), "{problems:?}");
    assert!(paths.contains(&"idempotency_key"), "{problems:?}");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.contains(&"`percent_off`: must be at least 1, got 0".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(&"`idempotency_key`: must not be empty".to_string()),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("`colour`: is not an accepted field (accepted: ")),
        "{text:?}"
    );
}

#[test]
fn wrong_types_and_nulls_are_explained() {
    let registry = Registry::new().unwrap();
    let tool = registry.get("list_classes").unwrap();
    let ArgsError::Invalid(problems) = tool
        .prepare(Some(json!({"limit": "ten", "cursor": null})))
        .unwrap_err()
    else {
        panic!()
    };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.contains(&"`limit`: must be a whole number, got a string".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(
            &"`cursor`: must be a string, got null (leave the field out instead of sending null)"
                .to_string()
        ),
        "{text:?}"
    );
    // 12.0 is an integer to JSON Schema; flowgate accepts it as 12.
    assert!(tool.prepare(Some(json!({"limit": 12.0}))).is_ok());
    assert!(tool.prepare(Some(json!({"limit": 12.5}))).is_err());
    // Arguments must be an object.
    assert!(tool.prepare(Some(json!([1, 2]))).is_err());
}

#[test]
fn path_parameters_are_percent_encoded() {
    let registry = Registry::new().unwrap();
    let tool = registry.get("get_class").unwrap();
    let decoded = tool
        .prepare(Some(json!({"class_id": "../studio?x=1#y"})))
        .unwrap();
    assert_eq!(
        decoded.upstream.unwrap().path,
        "/v1/classes/..%2Fstudio%3Fx%3D1%23y"
    );
}

#[test]
fn the_checked_in_cedar_schema_is_fresh() {
    check_fresh(
        &root().join("policies/flowgate.cedarschema"),
        flowgate::tool::CEDAR_SCHEMA,
        "the manifest changed since it was generated",
    );
}

#[test]
fn the_checked_in_roles_schema_is_fresh() {
    check_fresh(
        &root().join("policies/roles/roles.cedarschema"),
        flowgate::roles::ROLES_SCHEMA,
        "the manifest changed since it was generated",
    );
}

#[test]
fn the_readme_catalog_table_is_fresh() {
    let manifest =
        flowgate_codegen::manifest::load_dir(&root().join("manifest"), "manifest").unwrap();
    let table = flowgate_codegen::catalog_table(&manifest);
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- catalog:start -->\n", "<!-- catalog:end -->");
    let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
        panic!("README.md lacks the catalog markers");
    };
    let fresh = format!("{}{start}{table}{}", &readme[..a], &readme[b..]);
    check_fresh(
        &path,
        &fresh,
        "the tool catalog table differs from the manifest",
    );
}

#[test]
fn the_typed_inputs_have_exactly_the_published_fields() {
    let registry = Registry::new().unwrap();
    for tool in registry.iter() {
        let typed = serde_json::to_value((tool.def.typed_schema)()).unwrap();
        let names = |v: &Value| -> Vec<String> {
            let mut n: Vec<String> = v["properties"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            n.sort();
            n
        };
        let required = |v: &Value| -> Vec<String> {
            let mut r: Vec<String> = v["required"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            r.sort();
            r
        };
        let published = Value::Object(tool.input_schema_object());
        assert_eq!(
            names(&typed),
            names(&published),
            "{}: fields",
            tool.def.name
        );
        assert_eq!(
            required(&typed),
            required(&published),
            "{}: required",
            tool.def.name
        );
        assert_eq!(
            typed["additionalProperties"],
            json!(false),
            "{}",
            tool.def.name
        );
    }
}
