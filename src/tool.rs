//! The tool spec stage: the catalog generated from the manifest, compiled once at start-up.
//!
//! [`Registry`] holds every tool with its argument validator (compiled from the published input
//! schema), its published input and result schemas, and its decoder into a Cedar context and an
//! upstream request.
//! Nothing here is per call except [`Tool::prepare`].
//!
//! The published schemas are kept as the JSON text the generator wrote (in the binary), not as
//! `serde_json` trees: a tree costs about eight times its text in heap (22 KB for `get_class`'s
//! two schemas), which made the gateway's memory grow by 23 MB from 51 to 500 tools. A listing
//! writes the text as it is; what needs a tree (rmcp's own `Tool`) parses it when asked.

pub mod args;
pub mod glue;

/// The code generated from `manifest/` by `build.rs` (see `$OUT_DIR/tools.rs`).
#[allow(clippy::all, clippy::pedantic, unused_qualifications, missing_docs)]
pub mod catalog {
    include!(concat!(env!("OUT_DIR"), "/tools.rs"));
}

use std::collections::HashMap;

use serde_json::value::RawValue;

pub use args::Problem;
pub use glue::{Access, Builtin, BuiltinInput, Decoded, ScopeDef, Target, TierDef, ToolDef};

/// The generated Cedar schema.
pub const CEDAR_SCHEMA: &str = include_str!(concat!(env!("OUT_DIR"), "/flowgate.cedarschema"));
/// The generated least-privilege guards, one per scope; always part of the policy set.
pub const SCOPE_GUARDS: &str = include_str!(concat!(env!("OUT_DIR"), "/scope_guards.cedar"));

mod shipped {
    include!(concat!(env!("OUT_DIR"), "/policies.rs"));
}
pub use shipped::SHIPPED_POLICIES;

/// A tool ready to be called: its definition, published schemas and compiled validator.
#[derive(Debug)]
pub struct Tool {
    pub def: &'static ToolDef,
    /// The published input schema, a JSON object (the text the validator was compiled from).
    pub input_schema: &'static RawValue,
    /// The published result schema (`outputSchema`): always an object schema (`"type": "object"`),
    /// as MCP requires, describing the `structuredContent` of a successful call.
    pub output_schema: &'static RawValue,
    validator: args::Validator,
}

/// A JSON object, as `serde_json` and rmcp hold one.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Why a call's arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// Schema violations, every one listed.
    Invalid(Vec<Problem>),
    /// Valid by the schema but not decodable (a generator bug; reported, never a panic).
    Decode(String),
}

/// Every tool of the catalog, compiled.
#[derive(Debug)]
pub struct Registry {
    tools: Vec<Tool>,
    by_name: HashMap<&'static str, usize>,
}

impl Registry {
    /// Compiles the generated catalog. Fails only if a published schema is outside the
    /// supported subset, which the generator prevents and a test checks.
    pub fn new() -> Result<Self, String> {
        Self::from_defs(catalog::TOOLS)
    }

    pub fn from_defs(defs: &'static [ToolDef]) -> Result<Self, String> {
        let mut tools = Vec::with_capacity(defs.len());
        let mut by_name = HashMap::with_capacity(defs.len());
        for def in defs {
            let value: serde_json::Value = serde_json::from_str(def.input_schema)
                .map_err(|e| format!("{}: input schema is not JSON: {e}", def.name))?;
            if !value.is_object() {
                return Err(format!("{}: input schema is not an object", def.name));
            }
            let validator = args::Validator::compile(&value, def.sensitive)
                .map_err(|e| format!("{}: input schema: {e}", def.name))?;
            match serde_json::from_str::<serde_json::Value>(def.output_schema) {
                Ok(serde_json::Value::Object(m)) if m.get("type") == Some(&"object".into()) => {}
                Ok(_) => {
                    return Err(format!(
                        "{}: output schema is not an object schema",
                        def.name
                    ));
                }
                Err(e) => return Err(format!("{}: output schema is not JSON: {e}", def.name)),
            }
            let raw = |text: &'static str| {
                serde_json::from_str::<&'static RawValue>(text)
                    .map_err(|e| format!("{}: schema is not JSON: {e}", def.name))
            };
            by_name.insert(def.name, tools.len());
            tools.push(Tool {
                def,
                input_schema: raw(def.input_schema)?,
                output_schema: raw(def.output_schema)?,
                validator,
            });
        }
        Ok(Self { tools, by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.find(name).map(|(_, t)| t)
    }

    /// The tool `name` and where it is in [`Registry::iter`]'s order.
    pub fn find(&self, name: &str) -> Option<(usize, &Tool)> {
        let i = *self.by_name.get(name)?;
        Some((i, &self.tools[i]))
    }

    /// All tools, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Tool> {
        self.tools.iter()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

impl Tool {
    /// The published input schema as a JSON object, parsed anew (see the module's note).
    pub fn input_schema_object(&self) -> JsonObject {
        object(self.input_schema)
    }

    /// The published result schema as a JSON object, parsed anew.
    pub fn output_schema_object(&self) -> JsonObject {
        object(self.output_schema)
    }

    /// Validates and decodes one call's arguments (`None` is an empty object).
    pub fn prepare(&self, args: Option<serde_json::Value>) -> Result<Decoded, ArgsError> {
        let mut args = args.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        let problems = self.problems(&mut args);
        if !problems.is_empty() {
            return Err(ArgsError::Invalid(problems));
        }
        (self.def.decode)(args).map_err(|e| ArgsError::Decode(e.to_string()))
    }

    /// Validates only, returning the normalised arguments.
    pub fn validate(&self, mut args: serde_json::Value) -> Result<serde_json::Value, Vec<Problem>> {
        let problems = self.problems(&mut args);
        if problems.is_empty() {
            Ok(args)
        } else {
            Err(problems)
        }
    }

    /// The schema's problems, then the path parameters' (each must be exactly one segment).
    fn problems(&self, args: &mut serde_json::Value) -> Vec<Problem> {
        let mut problems = self.validator.validate(args);
        for &field in self.def.path_params {
            if let Some(s) = args.get(field).and_then(serde_json::Value::as_str)
                && let Some(message) = glue::segment_problem(s)
                && !problems.iter().any(|p| p.path == field)
            {
                problems.push(Problem {
                    path: field.to_string(),
                    message: message.to_string(),
                });
            }
        }
        problems
    }
}

/// A published schema as a JSON object. [`Registry::from_defs`] checked that it is one; anything
/// else (which that check makes impossible) would read as the empty schema rather than fail a
/// request.
pub fn object(schema: &RawValue) -> JsonObject {
    serde_json::from_str(schema.get()).unwrap_or_default()
}

/// The title of a tier (`pro` → `Pro`).
pub fn tier_title(name: &str) -> &str {
    catalog::TIERS
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.title)
        .unwrap_or(name)
}

/// The rank of a tier in the manifest's order (0 = lowest); unknown tiers rank lowest.
pub fn tier_rank(name: &str) -> usize {
    catalog::TIERS
        .iter()
        .position(|t| t.name == name)
        .unwrap_or(0)
}
