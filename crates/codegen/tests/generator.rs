//! The generator's own tests: snapshots of what it emits for a small fixture manifest, one
//! negative test per validation rule (asserting the message), policy validation, and the proof
//! that adding a tool is YAML only.

use std::path::PathBuf;

use flowgate_codegen::{generate, manifest, policy};

fn repo() -> PathBuf {
    root().join("../..")
}

/// What the generator makes of the fixture manifest and the shipped policies.
fn basic() -> flowgate_codegen::Generated {
    generate(
        &root().join("tests/fixtures/basic"),
        &repo().join("policies"),
    )
    .unwrap()
}

/// Compares `actual` with the snapshot file; `FLOWGATE_BLESS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = root().join("tests/snapshots").join(name);
    if std::env::var_os("FLOWGATE_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "snapshot {name} is stale; review the change and run `FLOWGATE_BLESS=1 cargo test -p flowgate-codegen`\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn fixture_manifest_generates_the_snapshotted_code_and_schema() {
    let g = basic();
    snapshot("basic.tools.rs", &g.rust);
    snapshot("basic.cedarschema", &g.cedar_schema);
    snapshot("basic.scope_guards.cedar", &g.scope_guards);
}

#[test]
fn generation_is_deterministic() {
    let a = basic();
    let b = basic();
    assert_eq!(a.rust, b.rust);
    assert_eq!(a.cedar_schema, b.cedar_schema);
}

#[test]
fn generated_inputs_are_added_to_write_and_paginated_tools() {
    let g = basic();
    let tool = |n: &str| g.manifest.tools.iter().find(|t| t.name == n).unwrap();
    let names = |n: &str| -> Vec<String> {
        tool(n)
            .input
            .properties
            .iter()
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(names("list_classes"), ["status", "from", "cursor", "limit"]);
    assert_eq!(
        names("update_class"),
        [
            "class_id",
            "name",
            "tags",
            "price",
            "schedule",
            "idempotency_key"
        ]
    );
    assert_eq!(names("whoami"), Vec::<String>::new());
    assert_eq!(tool("update_class").sensitive_paths(), ["schedule.notes"]);
    // PATCH is idempotent by default, POST is not, reads always are.
    assert!(tool("update_class").idempotent);
    assert!(!tool("create_coupon").idempotent);
    assert!(tool("list_classes").idempotent);
}

// === one negative test per validation rule ===

const GLOBAL: &str = "upstream: {base_path: /v1}\ntiers: [{name: free, title: Free}, {name: pro, title: Pro}]\nscopes:\n  classes:read: See classes.\n  classes:write: Change classes.\n";

/// A valid pair of tools using both scopes; tests replace pieces of it.
const BASE_TOOLS: &str = r#"
tools:
  - name: list_classes
    title: List classes
    description: Lists classes.
    scope: classes:read
    tier: free
    access: read
    upstream: {method: GET, path: /classes}
    example: {input: {}, request: {method: GET, path: /v1/classes}}
    output: {shape: Class}
  - name: get_class
    title: Get a class
    description: Gets a class.
    scope: classes:write
    tier: pro
    access: write
    input:
      properties:
        class_id: {type: string, description: The class.}
      required: [class_id]
    upstream: {method: POST, path: "/classes/{class_id}/touch"}
    example: {input: {class_id: c1}, request: {method: POST, path: /v1/classes/c1/touch}}
    output:
      properties:
        touched: {type: boolean, description: Whether it was touched.}
shapes:
  Class:
    description: A class.
    properties:
      id: {type: string}
      name: {type: string, nullable: true}
      level: {type: integer}
"#;

fn errors_for(tools: &str) -> Vec<String> {
    let files = vec![
        ("manifest/flowgate.yaml".to_string(), GLOBAL.to_string()),
        ("manifest/classes.yaml".to_string(), tools.to_string()),
    ];
    match manifest::load_sources(&files) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that replacing `from` with `to` in the base tools yields exactly `expected`.
fn assert_error(from: &str, to: &str, expected: &str) {
    assert!(BASE_TOOLS.contains(from), "test bug: {from:?} not in base");
    let errors = errors_for(&BASE_TOOLS.replacen(from, to, 1));
    assert!(
        errors.iter().any(|e| e == expected),
        "expected\n  {expected}\ngot\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn the_base_manifest_is_valid() {
    assert_eq!(errors_for(BASE_TOOLS), Vec::<String>::new());
}

#[test]
fn rejects_unknown_keys() {
    assert_error(
        "    tier: free\n",
        "    tier: free\n    colour: blue\n",
        "manifest/classes.yaml: tool `list_classes`: field `colour`: unknown field `colour`, expected one of `name`, `title`, `description`, `scope`, `tier`, `access`, `destructive`, `idempotent`, `open_world`, `public`, `paginated`, `input`, `upstream`, `builtin`, `example`, `output`",
    );
}

#[test]
fn rejects_unknown_schema_keywords() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class., formt: date}",
        "manifest/classes.yaml: tool `get_class`: field `input.properties.class_id.formt`: unknown field `formt`, expected one of `type`, `description`, `sensitive`, `minLength`, `maxLength`, `pattern`, `enum`, `format`, `minimum`, `maximum`, `items`, `minItems`, `maxItems`, `properties`, `required`",
    );
}

#[test]
fn rejects_unknown_formats() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class.}\n        starts_at: {type: string, description: When., format: datetime}",
        "manifest/classes.yaml: tool `get_class`: field `input.starts_at.format`: unknown format `datetime` (known: `date-time`, `date`, `email`, `uri`)",
    );
}

#[test]
fn rejects_keywords_that_do_not_apply_to_the_type() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class., minimum: 3}",
        "manifest/classes.yaml: tool `get_class`: field `input.class_id.minimum`: `minimum` does not apply to type `string`",
    );
}

#[test]
fn rejects_unsupported_types() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class.}\n        when: {type: date, description: When.}",
        "manifest/classes.yaml: tool `get_class`: field `input.when.type`: unsupported type `date` (known: `string`, `integer`, `number`, `boolean`, `array`, `object`)",
    );
}

#[test]
fn rejects_duplicate_tool_names() {
    assert_error(
        "  - name: get_class\n",
        "  - name: list_classes\n",
        "manifest/classes.yaml: tool `list_classes`: field `name`: duplicate tool name (first declared in manifest/classes.yaml)",
    );
}

#[test]
fn rejects_invalid_tool_names() {
    assert_error(
        "  - name: get_class\n",
        "  - name: Get-Class\n",
        "manifest/classes.yaml: tool `Get-Class`: field `name`: not a valid tool name: use 1 to 64 characters of [a-z0-9_], starting with a letter",
    );
}

#[test]
fn rejects_undeclared_scopes() {
    assert_error(
        "scope: classes:read",
        "scope: clases:read",
        "manifest/classes.yaml: tool `list_classes`: field `scope`: scope `clases:read` is not declared in the global `scopes` (known: `classes:read`, `classes:write`)",
    );
}

#[test]
fn rejects_declared_scopes_no_tool_uses() {
    assert_error(
        "    scope: classes:read\n",
        "",
        "manifest/flowgate.yaml: field `scopes.classes:read`: no tool requires this scope; remove it or use it",
    );
}

#[test]
fn rejects_undeclared_tiers() {
    assert_error(
        "tier: pro",
        "tier: premium",
        "manifest/classes.yaml: tool `get_class`: field `tier`: tier `premium` is not declared (known: `free`, `pro`)",
    );
}

#[test]
fn rejects_path_params_that_are_not_inputs() {
    assert_error(
        "path: \"/classes/{class_id}/touch\"",
        "path: \"/classes/{clas_id}/touch\"",
        "manifest/classes.yaml: tool `get_class`: field `upstream.path`: path parameter `{clas_id}` is not an input",
    );
}

#[test]
fn rejects_path_params_that_are_optional() {
    assert_error(
        "      required: [class_id]\n",
        "",
        "manifest/classes.yaml: tool `get_class`: field `input.class_id`: path parameter `{class_id}` must be a required string input",
    );
}

#[test]
fn rejects_path_params_that_are_not_strings() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: integer, description: The class.}",
        "manifest/classes.yaml: tool `get_class`: field `input.class_id`: path parameter `{class_id}` must be a required string input",
    );
}

#[test]
fn rejects_destructive_reads() {
    assert_error(
        "    access: read\n",
        "    access: read\n    destructive: true\n",
        "manifest/classes.yaml: tool `list_classes`: field `destructive`: only write tools can be destructive",
    );
}

#[test]
fn rejects_reads_that_do_not_use_get() {
    assert_error(
        "upstream: {method: GET, path: /classes}",
        "upstream: {method: POST, path: /classes}",
        "manifest/classes.yaml: tool `list_classes`: field `upstream.method`: a read tool must use GET, not POST",
    );
}

#[test]
fn rejects_writes_granted_by_a_read_scope() {
    assert_error(
        "scope: classes:write",
        "scope: classes:read",
        "manifest/classes.yaml: tool `get_class`: field `scope`: a write tool cannot be granted by the read scope `classes:read`",
    );
}

#[test]
fn rejects_declaring_generated_inputs() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class.}\n        idempotency_key: {type: string, description: Mine.}",
        "manifest/classes.yaml: tool `get_class`: field `input.idempotency_key`: `idempotency_key` is added by the generator; do not declare it",
    );
}

#[test]
fn rejects_missing_descriptions() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string}",
        "manifest/classes.yaml: tool `get_class`: field `input.class_id`: needs a `description` (assistants read it)",
    );
}

#[test]
fn rejects_missing_examples() {
    assert_error(
        "    example: {input: {}, request: {method: GET, path: /v1/classes}}\n",
        "",
        "manifest/classes.yaml: tool `list_classes`: field `example`: every tool needs an `example` (an input and the upstream request it makes)",
    );
}

#[test]
fn rejects_impossible_bounds() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class., minLength: 5, maxLength: 2}",
        "manifest/classes.yaml: tool `get_class`: field `input.class_id.minLength`: minLength 5 is greater than maxLength 2",
    );
}

#[test]
fn rejects_patterns_that_do_not_compile() {
    assert_error(
        "class_id: {type: string, description: The class.}",
        "class_id: {type: string, description: The class., pattern: \"^[a-\"}",
        "manifest/classes.yaml: tool `get_class`: field `input.class_id.pattern`: pattern does not compile: regex parse error: ^[a- ^ error: unclosed character class",
    );
}

#[test]
fn rejects_required_names_that_are_not_properties() {
    assert_error(
        "required: [class_id]",
        "required: [class_id, nme]",
        "manifest/classes.yaml: tool `get_class`: field `input.required`: `nme` is required but not a property",
    );
}

#[test]
fn rejects_inputs_routed_twice() {
    assert_error(
        "upstream: {method: POST, path: \"/classes/{class_id}/touch\"}",
        "upstream: {method: POST, path: \"/classes/{class_id}/touch\", query: [note], body: [note]}",
        "manifest/classes.yaml: tool `get_class`: field `upstream.query`: `note` is not a declared input",
    );
}

#[test]
fn rejects_unknown_builtins() {
    assert_error(
        "    upstream: {method: GET, path: /classes}\n    example: {input: {}, request: {method: GET, path: /v1/classes}}\n",
        "    builtin: whoarewe\n    example: {input: {}}\n",
        "manifest/classes.yaml: tool `list_classes`: field `builtin`: unknown built-in handler `whoarewe` (known: `whoami`, `audit_log`)",
    );
}

// --- outputs and shapes ---

#[test]
fn rejects_tools_without_an_output() {
    assert_error(
        "    output: {shape: Class}\n",
        "",
        "manifest/classes.yaml: tool `list_classes`: field `output`: every tool needs an `output`: `list: Shape` for a paginated tool, otherwise `shape: Shape` or `properties`",
    );
}

#[test]
fn rejects_unknown_shapes() {
    assert_error(
        "output: {shape: Class}",
        "output: {shape: Clas}",
        "manifest/classes.yaml: tool `list_classes`: field `output.shape`: unknown shape `Clas` (declared: `Class`)",
    );
}

#[test]
fn rejects_paginated_tools_that_do_not_return_a_page() {
    assert_error(
        "    access: read\n",
        "    access: read\n    paginated: true\n",
        "manifest/classes.yaml: tool `list_classes`: field `output`: a paginated tool returns a page: declare `list: Shape`",
    );
}

#[test]
fn rejects_pages_from_tools_that_are_not_paginated() {
    assert_error(
        "output: {shape: Class}",
        "output: {list: Class}",
        "manifest/classes.yaml: tool `list_classes`: field `output.list`: `list` is the page envelope of a paginated tool, and this tool is not `paginated: true`; declare `properties` instead",
    );
}

#[test]
fn rejects_unknown_types_in_shapes() {
    assert_error(
        "      level: {type: integer}",
        "      level: {type: int}",
        "manifest/classes.yaml: field `shapes.Class.level.type`: unsupported type `int` (known: `string`, `integer`, `number`, `boolean`, `array`, `object`)",
    );
}

#[test]
fn rejects_keywords_that_do_not_apply_in_outputs() {
    assert_error(
        "      level: {type: integer}",
        "      level: {type: integer, enum: [a, b]}",
        "manifest/classes.yaml: field `shapes.Class.level.enum`: `enum` does not apply to type `integer`",
    );
    assert_error(
        "touched: {type: boolean, description: Whether it was touched.}",
        "touched: {type: boolean, maxLength: 3}",
        "manifest/classes.yaml: tool `get_class`: field `output.properties.touched.maxLength`: unknown field `maxLength`, expected one of `type`, `shape`, `description`, `nullable`, `optional`, `enum`, `format`, `items`, `properties`",
    );
}

#[test]
fn rejects_output_fields_without_a_type() {
    assert_error(
        "touched: {type: boolean, description: Whether it was touched.}",
        "touched: {description: Whether it was touched.}",
        "manifest/classes.yaml: tool `get_class`: field `output.touched`: needs a `type` (`string`, `integer`, `number`, `boolean`, `array`, `object`) or a `shape`",
    );
}

#[test]
fn rejects_fields_added_twice_to_a_shape() {
    assert_error(
        "output: {shape: Class}",
        "output: {shape: Class, properties: {name: {type: string}}}",
        "manifest/classes.yaml: tool `list_classes`: field `output.name`: `name` is already a field of shape `Class`",
    );
}

#[test]
fn rejects_shapes_that_contain_themselves() {
    assert_error(
        "      level: {type: integer}",
        "      level: {type: integer}\n      parent: {shape: Class, nullable: true}",
        "manifest/classes.yaml: field `shapes.Class.parent`: shape `Class` contains itself (through Class); results are finite trees",
    );
}

#[test]
fn rejects_shapes_no_tool_returns_and_bad_shape_names() {
    let extra = "  Room:\n    description: A room.\n    properties: {id: {type: string}}\n  room_type:\n    description: A kind of room.\n    properties: {id: {type: string}}\n";
    let errors = errors_for(&format!("{BASE_TOOLS}{extra}"));
    assert_eq!(
        errors,
        [
            "manifest/classes.yaml: field `shapes.Room`: no tool returns this shape; remove it or use it",
            "manifest/classes.yaml: field `shapes.room_type`: `room_type` is not a valid shape name (use PascalCase, e.g. `Class`)",
            "manifest/classes.yaml: field `shapes.room_type`: no tool returns this shape; remove it or use it",
        ]
    );
}

#[test]
fn rejects_a_shape_declared_in_two_files() {
    let files = vec![
        ("manifest/flowgate.yaml".to_string(), GLOBAL.to_string()),
        ("manifest/classes.yaml".to_string(), BASE_TOOLS.to_string()),
        (
            "manifest/rooms.yaml".to_string(),
            "shapes:\n  Class:\n    description: Another class.\n    properties: {id: {type: string}}\n"
                .to_string(),
        ),
    ];
    let errors: Vec<String> = manifest::load_sources(&files)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "manifest/rooms.yaml: field `shapes.Class`: shape `Class` is already declared in manifest/classes.yaml"
        ]
    );
}

#[test]
fn outputs_inline_shapes_and_wrap_pages() {
    let g = basic();
    let tool = |n: &str| g.manifest.tools.iter().find(|t| t.name == n).unwrap();
    let schema = |n: &str| flowgate_codegen::json_schema::output_schema(&tool(n).output);
    let page = schema("list_classes");
    assert_eq!(page["type"], "object");
    assert_eq!(page["required"], serde_json::json!(["data", "next_cursor"]));
    assert_eq!(
        page["properties"]["next_cursor"]["type"],
        serde_json::json!(["string", "null"])
    );
    let item = &page["properties"]["data"]["items"];
    assert_eq!(item["description"], "A class of the studio.");
    // A nullable enum admits null; an optional field is not required; objects stay open.
    assert_eq!(
        item["properties"]["level"]["enum"],
        serde_json::json!(["beginner", "advanced", null])
    );
    assert!(
        !item["required"]
            .as_array()
            .unwrap()
            .contains(&"note".into())
    );
    assert!(item.get("additionalProperties").is_none());
    // The same shape, inlined where another tool returns it.
    assert_eq!(
        schema("update_class")["properties"]["class"]["properties"],
        item["properties"]
    );
}

#[test]
fn reports_every_error_at_once() {
    let broken = BASE_TOOLS
        .replacen("scope: classes:read", "scope: nope:read", 1)
        .replacen("tier: pro", "tier: gold", 1)
        .replacen(
            "class_id: {type: string, description: The class.}",
            "class_id: {type: string}",
            1,
        );
    let errors = errors_for(&broken);
    assert_eq!(errors.len(), 4, "{errors:#?}"); // the three, plus classes:read now unused
    assert!(errors.iter().any(|e| e.contains("`nope:read`")));
    assert!(errors.iter().any(|e| e.contains("`gold`")));
    assert!(errors.iter().any(|e| e.contains("needs a `description`")));
}

// === policies ===

fn policy_errors(extra: &str) -> Vec<String> {
    let g = basic();
    let mut files = policy::read_dir(&repo().join("policies")).unwrap();
    files.push(policy::PolicyFile {
        name: "policies/extra.cedar".into(),
        text: extra.into(),
    });
    match policy::compile(&g.cedar_schema, &files) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

#[test]
fn a_policy_naming_a_missing_action_fails() {
    let errors = policy_errors(
        "@id(\"x\")\n@reason(\"no\")\nforbid (principal, action == Flow::Action::\"refund_order\", resource);",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unrecognized action `Flow::Action::\"refund_order\"`")),
        "{errors:#?}"
    );
}

#[test]
fn a_policy_naming_a_missing_attribute_fails() {
    let errors = policy_errors(
        "@id(\"x\")\n@reason(\"no\")\nforbid (principal, action == Flow::Action::\"create_coupon\", resource) when { context.input.percent > 5 };",
    );
    assert!(
        errors.iter().any(|e| e.contains(
            "attribute `input.percent` in context for Flow::Action::\"create_coupon\" not found"
        )),
        "{errors:#?}"
    );
}

#[test]
fn a_misspelt_scope_fails() {
    let errors = policy_errors(
        "@id(\"x\")\n@reason(\"no\")\nforbid (principal, action, resource) unless { principal.scopes.contains(Flow::Scope::\"clases:write\") };",
    );
    assert!(
        errors.iter().any(|e| e.contains("clases:write")),
        "{errors:#?}"
    );
}

#[test]
fn a_forbid_without_a_reason_fails() {
    let errors = policy_errors("@id(\"x\")\nforbid (principal, action, resource);");
    assert_eq!(
        errors,
        [
            "policies/extra.cedar: policy `x` is a forbid without a @reason: say why, for the studio owner"
        ]
    );
}

#[test]
fn a_policy_without_an_id_fails() {
    let errors = policy_errors("permit (principal, action, resource);");
    assert_eq!(
        errors,
        [
            "policies/extra.cedar: a policy has no @id annotation: permit (principal, action, resource);"
        ]
    );
}

#[test]
fn an_unknown_reason_placeholder_fails() {
    let errors =
        policy_errors("@id(\"x\")\n@reason(\"{toool} no\")\nforbid (principal, action, resource);");
    assert_eq!(
        errors,
        [
            "policies/extra.cedar: policy `x`: @reason uses the unknown placeholder `{toool}` (known: {tool}, {scope}, {tier}, {studio_tier})"
        ]
    );
}

#[test]
fn an_impossible_policy_fails_as_a_warning_turned_error() {
    let errors = policy_errors("@id(\"x\")\npermit (principal is Flow::Studio, action, resource);");
    assert!(
        errors.iter().any(|e| e.contains("warnings are errors")),
        "{errors:#?}"
    );
}

// === adding a tool is YAML only ===

#[test]
fn adding_a_tool_is_yaml_only() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("manifest")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("waitlist.yaml"),
        r#"
tools:
  - name: join_waitlist
    title: Join a waitlist
    description: Puts a member on the waitlist of a full session.
    scope: bookings:write
    tier: pro
    access: write
    input:
      properties:
        occurrence_id: {type: string, description: The full session., minLength: 1}
        member_id: {type: string, description: The member., minLength: 1}
      required: [occurrence_id, member_id]
    upstream: {method: POST, path: "/schedule/{occurrence_id}/waitlist"}
    example:
      input: {occurrence_id: occ_1, member_id: mem_1}
      request: {method: POST, path: /v1/schedule/occ_1/waitlist, body: {member_id: mem_1}}
    output: {shape: Booking}
"#,
    )
    .unwrap();
    let g = generate(dir.path(), &repo().join("policies")).unwrap();
    // In the registry, with its typed input and decoder …
    let file = syn::parse_file(&g.rust).unwrap();
    let text = g.rust.as_str();
    assert!(text.contains("pub struct JoinWaitlistInput"));
    assert!(text.contains("fn decode_join_waitlist("));
    assert!(text.contains("pub const JOIN_WAITLIST: &str = \"join_waitlist\";"));
    assert!(
        file.items
            .iter()
            .any(|i| matches!(i, syn::Item::Static(s) if s.ident == "TOOLS"))
    );
    assert!(text.contains("name: \"join_waitlist\""));
    // … and in the Cedar schema, in the right groups, validated with the shipped policies.
    assert!(g.cedar_schema.contains(
        "action \"join_waitlist\" in [Action::\"tool\", Action::\"access:write\", Action::\"tier:pro\", Action::\"scope:bookings:write\"]"
    ));
}

// === the YAML reader's own messages ===

#[test]
fn yaml_syntax_errors_name_the_file_field_line_and_column() {
    assert_eq!(
        errors_for(&BASE_TOOLS.replacen("path: /classes}", "path: /classes", 1)),
        [
            "manifest/classes.yaml: field `tools[0].upstream`: while parsing a flow mapping, did not find expected ',' or '}' at line 10, column 12"
        ]
    );
}

#[test]
fn rejects_unknown_top_level_keys_with_their_line() {
    assert_eq!(
        errors_for(&format!("tool: []\n{BASE_TOOLS}")),
        [
            "manifest/classes.yaml: field `tool`: unknown field `tool`, expected one of `upstream`, `tiers`, `scopes`, `shapes`, `tools` at line 1, column 1"
        ]
    );
}

#[test]
fn rejects_duplicate_keys_with_their_line() {
    assert_eq!(
        errors_for(&BASE_TOOLS.replacen("    tier: free\n", "    tier: free\n    tier: pro\n", 1)),
        [
            "manifest/classes.yaml: field `tools[0]`: duplicate mapping key `tier` is not allowed here at line 8, column 5"
        ]
    );
}

#[test]
fn rejects_a_file_that_is_not_a_mapping() {
    assert_eq!(
        errors_for("- just\n- a list\n"),
        ["manifest/classes.yaml: expected a mapping (`key: value` lines) at line 1, column 1"]
    );
}

/// This package's folder, as `cargo test` says it when it runs the test (not as it was when
/// the test was compiled: a build cache shared by two checkouts would point at the other one).
fn root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
