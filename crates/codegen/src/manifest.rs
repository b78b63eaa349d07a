//! Reading and validating the manifest: YAML files → [`ir::Manifest`].
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and validation collects **every**
//! problem before failing, each one naming the file, the tool and the field, so a platform
//! engineer fixes a broken manifest in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::ir::{
    Access, Added, Example, Format, Kind, Manifest, Object, Property, Schema, Scope, Segment,
    Target, Tier, Tool, Upstream,
};
use crate::yaml;

mod output;

/// One problem in the manifest, printed compiler style.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub tool: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(tool) = &self.tool {
            write!(f, ": tool `{tool}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Names the generator gives to the inputs it adds.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const CURSOR: &str = "cursor";
pub const LIMIT: &str = "limit";

/// Built-in handlers the gateway provides.
pub const BUILTINS: [&str; 2] = ["whoami", "audit_log"];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

// === raw YAML shapes ===

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    upstream: Option<RawGlobalUpstream>,
    #[serde(default)]
    tiers: Option<Vec<RawTier>>,
    #[serde(default)]
    scopes: Option<IndexMap<String, String>>,
    /// Result shapes reused by tools' outputs; each is parsed on its own (see [`output`]).
    #[serde(default)]
    shapes: IndexMap<String, serde_json::Value>,
    /// Each tool is parsed on its own below, so one broken tool does not hide the others.
    #[serde(default)]
    tools: Vec<serde_json::Value>,
}

/// The global settings and the file that declared them.
struct RawGlobal(
    String,
    RawGlobalUpstream,
    Vec<RawTier>,
    IndexMap<String, String>,
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobalUpstream {
    base_path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    name: String,
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: String,
    title: String,
    description: String,
    #[serde(default)]
    scope: Option<String>,
    tier: String,
    access: RawAccess,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    idempotent: Option<bool>,
    #[serde(default)]
    open_world: bool,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    paginated: bool,
    #[serde(default)]
    input: RawInput,
    #[serde(default)]
    upstream: Option<RawUpstream>,
    #[serde(default)]
    builtin: Option<String>,
    #[serde(default)]
    example: Option<RawExample>,
    #[serde(default)]
    output: Option<output::RawOutput>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawAccess {
    Read,
    Write,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInput {
    #[serde(default)]
    properties: IndexMap<String, RawSchema>,
    #[serde(default)]
    required: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default, rename = "minLength")]
    min_length: Option<u64>,
    #[serde(default, rename = "maxLength")]
    max_length: Option<u64>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default, rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    minimum: Option<f64>,
    #[serde(default)]
    maximum: Option<f64>,
    #[serde(default)]
    items: Option<Box<RawSchema>>,
    #[serde(default, rename = "minItems")]
    min_items: Option<u64>,
    #[serde(default, rename = "maxItems")]
    max_items: Option<u64>,
    #[serde(default)]
    properties: Option<IndexMap<String, RawSchema>>,
    #[serde(default)]
    required: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    method: String,
    path: String,
    #[serde(default)]
    query: Option<Vec<String>>,
    #[serde(default)]
    body: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExample {
    input: serde_json::Value,
    #[serde(default)]
    request: Option<RawRequest>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: String,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
}

// === loading ===

/// Reads every `*.yaml` file of `dir` (sorted) and validates the whole manifest.
///
/// `display_dir` is how the folder is named in messages (e.g. `manifest`).
pub fn load_dir(dir: &Path, display_dir: &str) -> Result<Manifest, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![Diagnostic {
            file: display_dir.to_string(),
            tool: None,
            field: None,
            message: format!("cannot read the manifest folder: {e}"),
        }]
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut diags = Vec::new();
    for path in paths {
        let name = format!(
            "{display_dir}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((name, text)),
            Err(e) => diags.push(Diagnostic {
                file: name,
                tool: None,
                field: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    load_sources(&files)
}

/// Validates a manifest given as `(display name, YAML text)` pairs.
pub fn load_sources(files: &[(String, String)]) -> Result<Manifest, Vec<Diagnostic>> {
    let mut cx = Cx::default();
    let mut global: Option<RawGlobal> = None;
    let mut raw_tools: Vec<(String, serde_json::Value)> = Vec::new();
    let mut raw_shapes: Vec<(String, String, serde_json::Value)> = Vec::new();
    // A file or tool that did not parse may be the one using a scope: do not accuse the scope.
    let mut unparsed = false;

    for (file, text) in files {
        let raw: RawFile = match yaml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                cx.push(file, None, e.path, e.message);
                unparsed = true;
                continue;
            }
        };
        let has_global = raw.upstream.is_some() || raw.tiers.is_some() || raw.scopes.is_some();
        if has_global {
            match (raw.upstream, raw.tiers, raw.scopes) {
                (Some(u), Some(t), Some(s)) => {
                    if let Some(RawGlobal(first, ..)) = &global {
                        cx.push(
                            file,
                            None,
                            None,
                            format!("global settings are already declared in {first}"),
                        );
                    } else {
                        global = Some(RawGlobal(file.clone(), u, t, s));
                    }
                }
                _ => cx.push(
                    file,
                    None,
                    None,
                    "global settings need all of `upstream`, `tiers` and `scopes`".into(),
                ),
            }
        }
        for t in raw.tools {
            raw_tools.push((file.clone(), t));
        }
        for (name, shape) in raw.shapes {
            raw_shapes.push((file.clone(), name, shape));
        }
    }

    let Some(RawGlobal(global_file, upstream, raw_tiers, raw_scopes)) = global else {
        cx.push(
            "manifest",
            None,
            None,
            "no file declares the global settings (`upstream`, `tiers`, `scopes`)".into(),
        );
        return Err(cx.finish());
    };

    // Global settings.
    let base_path = upstream.base_path.trim_end_matches('/').to_string();
    if !base_path.starts_with('/') {
        cx.push(
            &global_file,
            None,
            Some("upstream.base_path".into()),
            format!("must start with `/`, got `{}`", upstream.base_path),
        );
    }
    let mut tiers = Vec::new();
    for (i, t) in raw_tiers.into_iter().enumerate() {
        if !is_identifier(&t.name) {
            cx.push(
                &global_file,
                None,
                Some(format!("tiers[{i}].name")),
                format!(
                    "`{}` is not a valid tier name (use [a-z][a-z0-9_]*)",
                    t.name
                ),
            );
        }
        if tiers.iter().any(|x: &Tier| x.name == t.name) {
            cx.push(
                &global_file,
                None,
                Some(format!("tiers[{i}].name")),
                format!("tier `{}` is declared twice", t.name),
            );
        }
        tiers.push(Tier {
            name: t.name,
            title: t.title,
        });
    }
    if tiers.is_empty() {
        cx.push(
            &global_file,
            None,
            Some("tiers".into()),
            "at least one tier is needed".into(),
        );
    }
    let scope_name = regex::Regex::new(r"^[a-z][a-z_]*:(read|write)$").unwrap();
    let mut scopes = Vec::new();
    for (name, description) in raw_scopes {
        if !scope_name.is_match(&name) {
            cx.push(
                &global_file,
                None,
                Some(format!("scopes.{name}")),
                format!("`{name}` is not a valid scope name (use `area:read` or `area:write`)"),
            );
        }
        if description.trim().is_empty() {
            cx.push(
                &global_file,
                None,
                Some(format!("scopes.{name}")),
                "needs a one-line description for the consent page".into(),
            );
        }
        scopes.push(Scope { name, description });
    }
    scopes.sort_by(|a, b| a.name.cmp(&b.name));

    // Result shapes, then tools.
    let mut shapes = output::Shapes::declare(&mut cx, raw_shapes);
    let mut tools: Vec<Tool> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (file, value) in raw_tools {
        let label = value
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string);
        let raw: RawTool = match from_value(value) {
            Ok(raw) => raw,
            Err((path, msg)) => {
                cx.push(&file, label, path, msg);
                unparsed = true;
                continue;
            }
        };
        if let Some(first) = seen.get(&raw.name) {
            cx.push(
                &file,
                Some(raw.name.clone()),
                Some("name".into()),
                format!("duplicate tool name (first declared in {first})"),
            );
            continue;
        }
        seen.insert(raw.name.clone(), file.clone());
        if let Some(tool) = lower_tool(&mut cx, &file, raw, &tiers, &scopes, &mut shapes) {
            tools.push(tool);
        }
    }
    for s in scopes.iter().filter(|_| !unparsed) {
        if !tools.iter().any(|t| t.scope.as_deref() == Some(&s.name)) {
            cx.push(
                &global_file,
                None,
                Some(format!("scopes.{}", s.name)),
                "no tool requires this scope; remove it or use it".into(),
            );
        }
    }
    if !unparsed {
        shapes.report_unused(&mut cx);
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));

    if cx.diags.is_empty() {
        Ok(Manifest {
            base_path,
            tiers,
            scopes,
            tools,
        })
    } else {
        Err(cx.finish())
    }
}

/// Deserializes one already parsed value (a tool), with the path of the first problem.
fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, (Option<String>, String)> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| (yaml::field_path(e.path()), e.inner().to_string()))
}

#[derive(Default)]
struct Cx {
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn push(&mut self, file: &str, tool: Option<String>, field: Option<String>, message: String) {
        self.diags.push(Diagnostic {
            file: file.to_string(),
            tool,
            field,
            message,
        });
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort();
        self.diags.dedup();
        self.diags
    }
}

/// Per-tool error reporting.
struct ToolCx<'a> {
    cx: &'a mut Cx,
    file: &'a str,
    tool: &'a str,
}

impl ToolCx<'_> {
    fn err(&mut self, field: impl Into<Option<String>>, message: impl Into<String>) {
        self.cx.push(
            self.file,
            Some(self.tool.to_string()),
            field.into(),
            message.into(),
        );
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// MCP tool names: 1..128 of `[A-Za-z0-9_.-]`; flowgate narrows that to snake case so the
/// name is also a Rust identifier part and a readable Cedar action id.
fn valid_tool_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && is_identifier(s)
}

fn lower_tool(
    cx: &mut Cx,
    file: &str,
    raw: RawTool,
    tiers: &[Tier],
    scopes: &[Scope],
    shapes: &mut output::Shapes,
) -> Option<Tool> {
    let name = raw.name.clone();
    let mut t = ToolCx {
        cx,
        file,
        tool: &name,
    };
    if !valid_tool_name(&raw.name) {
        t.err(
            Some("name".into()),
            "not a valid tool name: use 1 to 64 characters of [a-z0-9_], starting with a letter",
        );
    }
    if raw.title.trim().is_empty() {
        t.err(Some("title".into()), "must not be empty");
    }
    if raw.description.trim().is_empty() {
        t.err(
            Some("description".into()),
            "must say what the tool does, for the assistant",
        );
    }
    if let Some(scope) = &raw.scope
        && !scopes.iter().any(|s| &s.name == scope)
    {
        let known: Vec<_> = scopes.iter().map(|s| format!("`{}`", s.name)).collect();
        t.err(
            Some("scope".into()),
            format!(
                "scope `{scope}` is not declared in the global `scopes` (known: {})",
                known.join(", ")
            ),
        );
    }
    if !tiers.iter().any(|x| x.name == raw.tier) {
        let known: Vec<_> = tiers.iter().map(|x| format!("`{}`", x.name)).collect();
        t.err(
            Some("tier".into()),
            format!(
                "tier `{}` is not declared (known: {})",
                raw.tier,
                known.join(", ")
            ),
        );
    }
    let access = match raw.access {
        RawAccess::Read => Access::Read,
        RawAccess::Write => Access::Write,
    };
    if raw.destructive && access == Access::Read {
        t.err(
            Some("destructive".into()),
            "only write tools can be destructive",
        );
    }
    if raw.public && access == Access::Write {
        t.err(
            Some("public".into()),
            "public directory tools must be read-only",
        );
    }
    if let (Some(scope), Access::Write) = (&raw.scope, access)
        && scope.ends_with(":read")
    {
        t.err(
            Some("scope".into()),
            format!("a write tool cannot be granted by the read scope `{scope}`"),
        );
    }

    // Inputs declared in the manifest.
    let mut input = lower_object(&mut t, "input", raw.input.properties, &raw.input.required);
    for reserved in [IDEMPOTENCY_KEY, CURSOR, LIMIT] {
        if input.get(reserved).is_some() {
            t.err(
                Some(format!("input.{reserved}")),
                format!("`{reserved}` is added by the generator; do not declare it"),
            );
        }
    }
    input
        .properties
        .retain(|p| p.name != IDEMPOTENCY_KEY && p.name != CURSOR && p.name != LIMIT);
    let declared: Vec<String> = input.properties.iter().map(|p| p.name.clone()).collect();
    if raw.paginated {
        input.properties.push(Property {
            name: CURSOR.into(),
            required: false,
            added: Some(Added::Cursor),
            schema: Schema {
                description: "Opaque cursor from the `next_cursor` of a previous page; omit it for the first page.".into(),
                sensitive: false,
                nullable: false,
                kind: Kind::String { min_length: Some(1), max_length: Some(512), pattern: None, enum_values: None, format: None },
            },
        });
        input.properties.push(Property {
            name: LIMIT.into(),
            required: false,
            added: Some(Added::Limit),
            schema: Schema {
                description: "How many items to return, 1 to 100 (default 25).".into(),
                sensitive: false,
                nullable: false,
                kind: Kind::Integer {
                    minimum: Some(1),
                    maximum: Some(100),
                },
            },
        });
    }
    if access == Access::Write {
        input.properties.push(Property {
            name: IDEMPOTENCY_KEY.into(),
            required: false,
            added: Some(Added::IdempotencyKey),
            schema: Schema {
                description: "Any unique string (for example a UUID) that makes retrying this call safe: the same key with the same arguments within 24 hours returns the first result without repeating the change.".into(),
                sensitive: false,
                nullable: false,
                kind: Kind::String { min_length: Some(1), max_length: Some(255), pattern: None, enum_values: None, format: None },
            },
        });
    }

    // Target.
    let target = match (raw.upstream, raw.builtin) {
        (Some(_), Some(_)) => {
            t.err(None, "declare either `upstream` or `builtin`, not both");
            None
        }
        (None, None) => {
            t.err(None, "needs an `upstream` call or a `builtin` handler");
            None
        }
        (None, Some(b)) => {
            if !BUILTINS.contains(&b.as_str()) {
                t.err(
                    Some("builtin".into()),
                    format!(
                        "unknown built-in handler `{b}` (known: `{}`)",
                        BUILTINS.join("`, `")
                    ),
                );
            }
            Some(Target::Builtin(b))
        }
        (Some(u), None) => {
            lower_upstream(&mut t, u, access, &input, &declared).map(Target::Upstream)
        }
    };

    let output = shapes.tool_output(t.cx, file, &name, raw.output, raw.paginated);

    let idempotent = raw.idempotent.unwrap_or(match (&target, access) {
        (_, Access::Read) => true,
        (Some(Target::Upstream(u)), Access::Write) => {
            matches!(u.method.as_str(), "PUT" | "PATCH" | "DELETE")
        }
        _ => false,
    });

    let example = match raw.example {
        None => {
            t.err(
                Some("example".into()),
                "every tool needs an `example` (an input and the upstream request it makes)",
            );
            None
        }
        Some(ex) => {
            if !ex.input.is_object() {
                t.err(
                    Some("example.input".into()),
                    "must be an object of arguments",
                );
            }
            match (&target, &ex.request) {
                (Some(Target::Upstream(_)), None) => t.err(
                    Some("example.request".into()),
                    "an upstream tool's example needs the `request` it makes",
                ),
                (Some(Target::Builtin(_)), Some(_)) => t.err(
                    Some("example.request".into()),
                    "built-in tools make no upstream request",
                ),
                _ => {}
            }
            let request = ex
                .request
                .map(|r| serde_json::to_value(r).expect("plain data serializes"));
            Some(Example {
                input: ex.input,
                request,
            })
        }
    };

    Some(Tool {
        name: raw.name,
        title: raw.title,
        description: raw.description.trim().to_string(),
        scope: raw.scope,
        tier: raw.tier,
        access,
        destructive: raw.destructive,
        idempotent,
        open_world: raw.open_world,
        public: raw.public,
        paginated: raw.paginated,
        input,
        output: output?,
        target: target?,
        example: example?,
        file: file.to_string(),
    })
}

fn lower_upstream(
    t: &mut ToolCx<'_>,
    u: RawUpstream,
    access: Access,
    input: &Object,
    declared: &[String],
) -> Option<Upstream> {
    let method = u.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        t.err(
            Some("upstream.method".into()),
            format!(
                "unknown method `{}` (known: {})",
                u.method,
                METHODS.join(", ")
            ),
        );
    }
    if access == Access::Read && method != "GET" {
        t.err(
            Some("upstream.method".into()),
            format!("a read tool must use GET, not {method}"),
        );
    }
    if access == Access::Write && method == "GET" {
        t.err(
            Some("upstream.method".into()),
            "a write tool cannot use GET",
        );
    }

    // Path template.
    let mut path = Vec::new();
    let mut params = Vec::new();
    if !u.path.starts_with('/') {
        t.err(Some("upstream.path".into()), "must start with `/`");
    }
    let mut rest = u.path.as_str();
    while !rest.is_empty() {
        match rest.find('{') {
            None => {
                path.push(Segment::Literal(rest.to_string()));
                rest = "";
            }
            Some(open) => {
                if open > 0 {
                    path.push(Segment::Literal(rest[..open].to_string()));
                }
                let Some(close) = rest[open..].find('}') else {
                    t.err(Some("upstream.path".into()), "unclosed `{` in path");
                    break;
                };
                let param = &rest[open + 1..open + close];
                match input.get(param) {
                    None => t.err(
                        Some("upstream.path".into()),
                        format!("path parameter `{{{param}}}` is not an input"),
                    ),
                    Some(p) if p.added.is_some() => t.err(
                        Some("upstream.path".into()),
                        format!("path parameter `{{{param}}}` cannot be a generated input"),
                    ),
                    Some(p) => {
                        if !p.required || !matches!(p.schema.kind, Kind::String { .. }) {
                            t.err(
                                Some(format!("input.{param}")),
                                format!(
                                    "path parameter `{{{param}}}` must be a required string input"
                                ),
                            );
                        }
                    }
                }
                if params.contains(&param.to_string()) {
                    t.err(
                        Some("upstream.path".into()),
                        format!("path parameter `{{{param}}}` appears twice"),
                    );
                }
                params.push(param.to_string());
                path.push(Segment::Param(param.to_string()));
                rest = &rest[open + close + 1..];
            }
        }
    }
    if u.path.contains('}') && u.path.matches('}').count() != u.path.matches('{').count() {
        t.err(Some("upstream.path".into()), "unbalanced `}` in path");
    }

    // Routing of the remaining declared inputs.
    let remaining: Vec<&String> = declared.iter().filter(|d| !params.contains(d)).collect();
    let body_allowed = !matches!(method.as_str(), "GET" | "DELETE");
    let (mut query, mut body) = (Vec::new(), Vec::new());
    if u.query.is_none() && u.body.is_none() {
        for r in &remaining {
            if body_allowed {
                body.push((*r).clone());
            } else {
                query.push((*r).clone());
            }
        }
    } else {
        let q = u.query.unwrap_or_default();
        let b = u.body.unwrap_or_default();
        for (list, field) in [(&q, "upstream.query"), (&b, "upstream.body")] {
            for n in list {
                if !declared.contains(n) {
                    t.err(Some(field.into()), format!("`{n}` is not a declared input"));
                } else if params.contains(n) {
                    t.err(Some(field.into()), format!("`{n}` already fills the path"));
                }
            }
        }
        for n in &q {
            if b.contains(n) {
                t.err(
                    Some("upstream.query".into()),
                    format!("`{n}` is in both `query` and `body`"),
                );
            }
        }
        for r in &remaining {
            if !q.contains(r) && !b.contains(r) {
                t.err(
                    Some(format!("input.{r}")),
                    "with explicit `query`/`body` lists every input must be sent: name it in one of them",
                );
            }
        }
        if !body_allowed && !b.is_empty() {
            t.err(
                Some("upstream.body".into()),
                format!("{method} requests carry no body; send these as `query`"),
            );
        }
        query = q;
        body = b;
    }
    for q in &query {
        if let Some(p) = input.get(q)
            && !p.schema.kind.is_scalar()
        {
            t.err(
                Some(format!("input.{q}")),
                format!(
                    "query parameters must be scalars, not {}",
                    p.schema.kind.type_name()
                ),
            );
        }
    }
    // Pagination inputs always travel in the query.
    for p in &input.properties {
        if matches!(p.added, Some(Added::Cursor | Added::Limit)) {
            query.push(p.name.clone());
        }
    }
    Some(Upstream {
        method,
        path,
        path_template: u.path,
        query,
        body,
    })
}

fn lower_object(
    t: &mut ToolCx<'_>,
    at: &str,
    properties: IndexMap<String, RawSchema>,
    required: &[String],
) -> Object {
    let mut out = Object::default();
    let names: BTreeSet<&String> = properties.keys().collect();
    for r in required {
        if !names.contains(r) {
            t.err(
                Some(format!("{at}.required")),
                format!("`{r}` is required but not a property"),
            );
        }
    }
    for (name, raw) in properties {
        let path = format!("{at}.{name}");
        if !is_identifier(&name) {
            t.err(
                Some(path.clone()),
                "property names must be snake_case ([a-z][a-z0-9_]*)",
            );
        }
        let schema = lower_schema(t, &path, raw);
        out.properties.push(Property {
            required: required.contains(&name),
            name,
            schema,
            added: None,
        });
    }
    out
}

fn lower_schema(t: &mut ToolCx<'_>, path: &str, raw: RawSchema) -> Schema {
    let description = match raw.description {
        Some(d) if !d.trim().is_empty() => d.trim().to_string(),
        _ => {
            t.err(
                Some(path.to_string()),
                "needs a `description` (assistants read it)",
            );
            String::new()
        }
    };
    let mut unsupported = |keyword: &str, present: bool| {
        if present {
            t.err(
                Some(format!("{path}.{keyword}")),
                format!("`{keyword}` does not apply to type `{}`", raw.ty),
            );
        }
    };
    let is = |ty: &str| raw.ty == ty;
    unsupported("minLength", raw.min_length.is_some() && !is("string"));
    unsupported("maxLength", raw.max_length.is_some() && !is("string"));
    unsupported("pattern", raw.pattern.is_some() && !is("string"));
    unsupported("enum", raw.enum_values.is_some() && !is("string"));
    unsupported("format", raw.format.is_some() && !is("string"));
    unsupported(
        "minimum",
        raw.minimum.is_some() && !is("integer") && !is("number"),
    );
    unsupported(
        "maximum",
        raw.maximum.is_some() && !is("integer") && !is("number"),
    );
    unsupported("items", raw.items.is_some() && !is("array"));
    unsupported("minItems", raw.min_items.is_some() && !is("array"));
    unsupported("maxItems", raw.max_items.is_some() && !is("array"));
    unsupported("properties", raw.properties.is_some() && !is("object"));
    unsupported("required", raw.required.is_some() && !is("object"));

    let kind = match raw.ty.as_str() {
        "string" => {
            if let (Some(a), Some(b)) = (raw.min_length, raw.max_length)
                && a > b
            {
                t.err(
                    Some(format!("{path}.minLength")),
                    format!("minLength {a} is greater than maxLength {b}"),
                );
            }
            if let Some(p) = &raw.pattern
                && let Err(e) = regex::Regex::new(p)
            {
                t.err(
                    Some(format!("{path}.pattern")),
                    format!("pattern does not compile: {}", one_line(&e.to_string())),
                );
            }
            if let Some(values) = &raw.enum_values {
                if values.is_empty() {
                    t.err(
                        Some(format!("{path}.enum")),
                        "enum must list at least one value",
                    );
                }
                let unique: BTreeSet<_> = values.iter().collect();
                if unique.len() != values.len() {
                    t.err(Some(format!("{path}.enum")), "enum lists a value twice");
                }
            }
            let format = raw.format.as_deref().and_then(|f| {
                format_named(f)
                    .map_err(|message| t.err(Some(format!("{path}.format")), message))
                    .ok()
            });
            Kind::String {
                min_length: raw.min_length,
                max_length: raw.max_length,
                pattern: raw.pattern,
                enum_values: raw.enum_values,
                format,
            }
        }
        "integer" => {
            let mut int = |v: Option<f64>, kw: &str| {
                v.and_then(|v| {
                    if v.fract() != 0.0 || v.abs() > 9.0e15 {
                        t.err(
                            Some(format!("{path}.{kw}")),
                            format!("`{kw}` of an integer must be a whole number, got {v}"),
                        );
                        None
                    } else {
                        Some(v as i64)
                    }
                })
            };
            let minimum = int(raw.minimum, "minimum");
            let maximum = int(raw.maximum, "maximum");
            check_bounds(t, path, raw.minimum, raw.maximum);
            Kind::Integer { minimum, maximum }
        }
        "number" => {
            check_bounds(t, path, raw.minimum, raw.maximum);
            Kind::Number {
                minimum: raw.minimum,
                maximum: raw.maximum,
            }
        }
        "boolean" => Kind::Boolean,
        "array" => {
            if let (Some(a), Some(b)) = (raw.min_items, raw.max_items)
                && a > b
            {
                t.err(
                    Some(format!("{path}.minItems")),
                    format!("minItems {a} is greater than maxItems {b}"),
                );
            }
            let items = match raw.items {
                Some(items) => lower_schema(t, &format!("{path}[]"), *items),
                None => {
                    t.err(
                        Some(format!("{path}.items")),
                        "an array needs an `items` schema",
                    );
                    placeholder()
                }
            };
            Kind::Array {
                items: Box::new(items),
                min_items: raw.min_items,
                max_items: raw.max_items,
            }
        }
        "object" => {
            let props = raw.properties.unwrap_or_default();
            if props.is_empty() {
                t.err(
                    Some(format!("{path}.properties")),
                    "a nested object needs at least one property",
                );
            }
            Kind::Object(lower_object(
                t,
                path,
                props,
                raw.required.as_deref().unwrap_or_default(),
            ))
        }
        other => {
            t.err(
                Some(format!("{path}.type")),
                format!(
                    "unsupported type `{other}` (known: `string`, `integer`, `number`, `boolean`, `array`, `object`)"
                ),
            );
            Kind::Boolean
        }
    };
    Schema {
        description,
        sensitive: raw.sensitive,
        nullable: false,
        kind,
    }
}

/// Stands in for a schema whose errors are already reported, so validation can go on and find
/// the other problems.
fn placeholder() -> Schema {
    Schema {
        description: String::new(),
        sensitive: false,
        nullable: false,
        kind: Kind::Boolean,
    }
}

/// The `format` named `f`, or the message listing the known ones.
fn format_named(f: &str) -> Result<Format, String> {
    Format::ALL
        .into_iter()
        .find(|k| k.as_str() == f)
        .ok_or_else(|| {
            let known: Vec<_> = Format::ALL
                .iter()
                .map(|k| format!("`{}`", k.as_str()))
                .collect();
            format!("unknown format `{f}` (known: {})", known.join(", "))
        })
}

fn check_bounds(t: &mut ToolCx<'_>, path: &str, min: Option<f64>, max: Option<f64>) {
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        t.err(
            Some(format!("{path}.minimum")),
            format!("minimum {a} is greater than maximum {b}"),
        );
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
