//! The Cedar side of the manifest: the schema the policies are validated against, and the
//! per-scope guard policies.
//!
//! One action per tool, each a member of the action groups `tool`, `access:<read|write>`,
//! `tier:<tier>`, `scope:<scope>` and, for the directory tools, `public`. Principals (`ApiKey`,
//! `OAuthGrant`) are members of their `Studio`; scopes and tiers are enumerated entity types, so
//! a misspelt one fails validation. Each action's context is `{ input: <Tool>Input }`, a record
//! typed from the tool's input schema (numbers and the idempotency key are left out: no floats
//! reach Cedar, and the key says nothing about what a call may do).

use std::fmt::Write;

use crate::ir::{Added, Format, Kind, Manifest, Object, Property, Schema, Tool};

/// The Cedar namespace of every generated name.
pub const NAMESPACE: &str = "Flow";

/// Whether a top-level input is part of the Cedar context.
pub fn in_context(p: &Property) -> bool {
    p.added != Some(Added::IdempotencyKey) && cedar_type(&p.schema).is_some()
}

/// The Cedar type of a schema, or `None` when it is left out of the context (numbers).
pub fn cedar_type(s: &Schema) -> Option<String> {
    Some(match &s.kind {
        Kind::String {
            format: Some(Format::DateTime | Format::Date),
            ..
        } => "datetime".into(),
        Kind::String { .. } => "String".into(),
        Kind::Integer { .. } => "Long".into(),
        Kind::Number { .. } => return None,
        Kind::Boolean => "Bool".into(),
        Kind::Array { items, .. } => format!("Set<{}>", cedar_type(items)?),
        Kind::Object(o) => record_type(o, 2),
    })
}

fn record_type(o: &Object, indent: usize) -> String {
    let mut s = String::from("{\n");
    for p in &o.properties {
        if p.added == Some(Added::IdempotencyKey) {
            continue;
        }
        let Some(ty) = cedar_type(&p.schema) else {
            continue;
        };
        let ty = if let Kind::Object(inner) = &p.schema.kind {
            record_type(inner, indent + 2)
        } else {
            ty
        };
        let opt = if p.required { "" } else { "?" };
        let note = match &p.schema.kind {
            Kind::String {
                enum_values: Some(v),
                ..
            } => format!(" // one of {}", quoted_list(v)),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{:indent$}\"{}\"{opt}: {ty},{note}",
            "",
            p.name,
            indent = indent + 2
        );
    }
    let _ = write!(s, "{:indent$}}}", "", indent = indent);
    s
}

fn quoted_list(v: &[String]) -> String {
    v.iter()
        .map(|x| format!("\"{x}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Rust-style type name of a tool's input record, e.g. `CreateClassInput`.
pub fn input_type_name(tool: &Tool) -> String {
    format!("{}Input", pascal(&tool.name))
}

pub(crate) fn pascal(s: &str) -> String {
    s.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The generated Cedar schema, in Cedar's human-readable syntax.
pub fn schema(m: &Manifest) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "// @generated from manifest/ by build.rs — do not edit.\n// A reviewed copy is checked in at policies/flowgate.cedarschema; refresh it with\n// `FLOWGATE_BLESS=1 cargo test` after changing the manifest."
    );
    let _ = writeln!(w, "namespace {NAMESPACE} {{");
    let tiers: Vec<String> = m.tiers.iter().map(|t| t.name.clone()).collect();
    let _ = writeln!(w, "  // Plans a studio can be on, lowest first.");
    let _ = writeln!(w, "  entity Tier enum [{}];", quoted_list(&tiers));
    let scopes: Vec<String> = m.scopes.iter().map(|s| s.name.clone()).collect();
    let _ = writeln!(
        w,
        "  // Every scope a tool can require (manifest/flowgate.yaml)."
    );
    let _ = writeln!(w, "  entity Scope enum [{}];", quoted_list(&scopes));
    let _ = writeln!(
        w,
        "  // A studio: the tenant every call acts on, with the plan it pays for."
    );
    let _ = writeln!(w, "  entity Studio = {{ \"tier\": Tier }};");
    let _ = writeln!(
        w,
        "  // The public directory: the listings of every studio (the one cross-studio resource)."
    );
    let _ = writeln!(w, "  entity Directory;");
    let _ = writeln!(
        w,
        "  // A secret key (flow_sk_…); it belongs to exactly one studio."
    );
    let _ = writeln!(
        w,
        "  entity ApiKey in [Studio] = {{ \"name\": String, \"scopes\": Set<Scope> }};"
    );
    let _ = writeln!(
        w,
        "  // An OAuth grant: an MCP client a studio user approved; it belongs to that user's studio."
    );
    let _ = writeln!(
        w,
        "  entity OAuthGrant in [Studio] = {{ \"client_name\": String, \"scopes\": Set<Scope> }};"
    );
    let _ = writeln!(w);
    for tool in &m.tools {
        let _ = writeln!(w, "  // Arguments of `{}`.", tool.name);
        let _ = writeln!(
            w,
            "  type {} = {};",
            input_type_name(tool),
            record_type(&tool.input, 2)
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  // Action groups: every tool is in `tool` and in one group each for its access, tier and scope."
    );
    let _ = writeln!(w, "  action \"tool\";");
    let _ = writeln!(w, "  action \"access:read\", \"access:write\";");
    for t in &m.tiers {
        let _ = writeln!(w, "  action \"tier:{}\";", t.name);
    }
    for sc in m.used_scopes() {
        let _ = writeln!(w, "  action \"scope:{}\";", sc.name);
    }
    if m.tools.iter().any(|t| t.public) {
        let _ = writeln!(
            w,
            "  // Tools that read the public directory instead of one studio."
        );
        let _ = writeln!(w, "  action \"public\";");
    }
    let _ = writeln!(w);
    for tool in &m.tools {
        let _ = writeln!(w, "  // {}", tool.title);
        let _ = writeln!(
            w,
            "  action \"{}\" in [{}]\n    appliesTo {{\n      principal: [ApiKey, OAuthGrant],\n      resource: [{}],\n      context: {{ \"input\": {} }}\n    }};",
            tool.name,
            groups(tool)
                .iter()
                .map(|g| format!("Action::\"{g}\""))
                .collect::<Vec<_>>()
                .join(", "),
            if tool.public { "Directory" } else { "Studio" },
            input_type_name(tool)
        );
    }
    let _ = writeln!(w, "}}");
    s
}

/// The action groups a tool belongs to.
pub fn groups(tool: &Tool) -> Vec<String> {
    let mut g = vec![
        "tool".to_string(),
        format!("access:{}", tool.access.as_str()),
        format!("tier:{}", tool.tier),
    ];
    if let Some(sc) = &tool.scope {
        g.push(format!("scope:{sc}"));
    }
    if tool.public {
        g.push("public".into());
    }
    g
}

/// One guard per used scope: a tool in `scope:<s>` is forbidden unless the principal holds `<s>`.
///
/// Generated rather than hand-written because Cedar cannot relate an action to "its" scope in
/// one rule; the pattern is documented in docs/POLICIES.md and the prover checks its effect.
pub fn scope_guards(m: &Manifest) -> String {
    let mut s = String::from(
        "// @generated from manifest/ by build.rs — do not edit.\n// Least privilege: a tool runs only if the connection holds the scope the manifest gives it.\n",
    );
    for sc in m.used_scopes() {
        let _ = writeln!(
            s,
            "\n// `{name}`: {desc}\n@id(\"scope.{name}\")\n@reason(\"{{tool}} needs the `{name}` scope, which this connection was not granted.\")\n@priority(\"20\")\nforbid (\n  principal,\n  action in {NAMESPACE}::Action::\"scope:{name}\",\n  resource\n)\nunless {{ principal.scopes.contains({NAMESPACE}::Scope::\"{name}\") }};",
            name = sc.name,
            desc = sc.description
        );
    }
    s
}

// === roles ===

/// The Cedar namespace of the role policies (a policy set of its own, apart from the calls').
pub const ROLES_NAMESPACE: &str = "Roles";

/// The roles the studio platform gives its users, in its sign-in answer's `role`: fixed by the
/// platform, not by the manifest (the reference API's `users.role`).
pub const ROLES: [&str; 3] = ["owner", "admin", "staff"];

/// What a studio user may do on the settings pages, one Cedar action each.
pub const SETTINGS_ACTIONS: [(&str, &str); 5] = [
    (
        "view_keys",
        "See the studio's secret keys on the Developer page.",
    ),
    (
        "manage_keys",
        "Create, rotate and revoke the studio's secret keys.",
    ),
    (
        "view_connected_apps",
        "See the assistants the studio approved.",
    ),
    ("disconnect_apps", "Disconnect an approved assistant."),
    ("view_audit_log", "Read and export the audit log."),
];

/// The resource a scope is about: `bookings` for `bookings:write`.
pub fn scope_resource(scope: &str) -> &str {
    scope.split_once(':').map_or(scope, |(r, _)| r)
}

/// The schema of the role policies (`policies/roles/*.cedar`): a studio user with a role asks
/// to grant a scope to a connection (one `grant:<scope>` action per scope of the manifest, in
/// the groups `grant`, `grant:read`/`grant:write` and `resource:<resource>`), or to use a
/// settings page (one action each, in the group `settings`). The resource is the studio.
pub fn roles_schema(m: &Manifest) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "// @generated from manifest/ by build.rs — do not edit.\n// A reviewed copy is checked in at policies/roles/roles.cedarschema; refresh it with\n// `FLOWGATE_BLESS=1 cargo test` after changing the manifest."
    );
    let _ = writeln!(w, "namespace {ROLES_NAMESPACE} {{");
    let _ = writeln!(
        w,
        "  // The roles the studio platform gives its users (its sign-in answer's `role`)."
    );
    let roles: Vec<String> = ROLES.iter().map(|r| r.to_string()).collect();
    let _ = writeln!(w, "  entity Role enum [{}];", quoted_list(&roles));
    let _ = writeln!(w, "  // A studio: the tenant its users act on.");
    let _ = writeln!(w, "  entity Studio;");
    let _ = writeln!(
        w,
        "  // A studio user, signed in through the studio platform; a member of their studio."
    );
    let _ = writeln!(w, "  entity User in [Studio] = {{ \"role\": Role }};");
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "  // Action groups: granting any scope, by access, and by the resource a scope is about."
    );
    let _ = writeln!(w, "  action \"grant\";");
    let _ = writeln!(w, "  action \"grant:read\", \"grant:write\";");
    let mut resources: Vec<&str> = m.scopes.iter().map(|s| scope_resource(&s.name)).collect();
    resources.dedup();
    resources.sort_unstable();
    resources.dedup();
    for r in &resources {
        let _ = writeln!(w, "  action \"resource:{r}\";");
    }
    let _ = writeln!(w, "  // The settings pages.");
    let _ = writeln!(w, "  action \"settings\";");
    let _ = writeln!(w);
    for sc in &m.scopes {
        let access = if sc.name.ends_with(":write") {
            "write"
        } else {
            "read"
        };
        let _ = writeln!(
            w,
            "  // Grant `{}` to a connection: {}\n  action \"grant:{}\" in [Action::\"grant\", Action::\"grant:{access}\", Action::\"resource:{}\"]\n    appliesTo {{ principal: [User], resource: [Studio] }};",
            sc.name,
            sc.description,
            sc.name,
            scope_resource(&sc.name)
        );
    }
    for (action, description) in SETTINGS_ACTIONS {
        let _ = writeln!(
            w,
            "  // {description}\n  action \"{action}\" in [Action::\"settings\"]\n    appliesTo {{ principal: [User], resource: [Studio] }};"
        );
    }
    let _ = writeln!(w, "}}");
    s
}
