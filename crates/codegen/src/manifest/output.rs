//! Reading and validating what tools return: the manifest's `shapes` and each tool's `output`.
//!
//! A shape (`Class`, `Member`, …) is declared once, in any manifest file, and referenced by name
//! wherever a result contains it (`shape: Class`). References are inlined here, so the model the
//! emitters see has no references left. Contract, checked with the same compiler-style messages
//! as the rest of the manifest:
//! - every tool declares an `output`: `list: Shape` for a paginated tool (the page envelope
//!   `data` + `next_cursor` is added here), else `shape: Shape` (optionally with extra
//!   `properties`) or `properties`;
//! - every output field is always present unless marked `optional`, and never `null` unless
//!   marked `nullable`;
//! - shape names are unique, known where referenced, used by some tool, and not cyclic.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde::Deserialize;

use super::{Cx, format_named, from_value, is_identifier, placeholder};
use crate::ir::{Kind, Object, Property, Schema};

/// `output` of a tool, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    /// A page of this shape (paginated tools).
    #[serde(default)]
    list: Option<String>,
    /// One value of this shape.
    #[serde(default)]
    shape: Option<String>,
    /// Fields of the result (or fields added to `shape`).
    #[serde(default)]
    properties: Option<IndexMap<String, RawOut>>,
}

/// A declared shape, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShape {
    description: String,
    properties: IndexMap<String, RawOut>,
}

/// One field of a result, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOut {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    shape: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    nullable: bool,
    #[serde(default)]
    optional: bool,
    #[serde(default, rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    items: Option<Box<RawOut>>,
    #[serde(default)]
    properties: Option<IndexMap<String, RawOut>>,
}

/// Where a problem is reported: a file and, inside a tool's `output`, the tool.
#[derive(Clone)]
struct At {
    file: String,
    tool: Option<String>,
}

impl At {
    fn err(&self, cx: &mut Cx, field: String, message: impl Into<String>) {
        cx.push(&self.file, self.tool.clone(), Some(field), message.into());
    }
}

/// The declared shapes, lowered on first use.
#[derive(Default)]
pub(super) struct Shapes {
    /// Declared and not yet lowered: name → (file, shape).
    pending: BTreeMap<String, (String, RawShape)>,
    /// Being lowered right now (a reference to one of these is a cycle).
    lowering: Vec<String>,
    /// Lowered; `None` when the shape has errors (already reported).
    resolved: BTreeMap<String, Option<Schema>>,
    /// Where each shape was declared.
    files: BTreeMap<String, String>,
    /// Shapes referenced by a tool or by another shape.
    used: BTreeSet<String>,
}

fn valid_shape_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('A'..='Z')) && chars.all(|c| c.is_ascii_alphanumeric())
}

impl Shapes {
    /// Reads the `shapes` of every file, reporting bad names, duplicates and parse errors.
    pub(super) fn declare(cx: &mut Cx, raw: Vec<(String, String, serde_json::Value)>) -> Self {
        let mut shapes = Shapes::default();
        for (file, name, value) in raw {
            let field = format!("shapes.{name}");
            if !valid_shape_name(&name) {
                cx.push(
                    &file,
                    None,
                    Some(field.clone()),
                    format!("`{name}` is not a valid shape name (use PascalCase, e.g. `Class`)"),
                );
            }
            if let Some(first) = shapes.files.get(&name) {
                cx.push(
                    &file,
                    None,
                    Some(field),
                    format!("shape `{name}` is already declared in {first}"),
                );
                continue;
            }
            shapes.files.insert(name.clone(), file.clone());
            match from_value::<RawShape>(value) {
                Ok(shape) => {
                    shapes.pending.insert(name, (file, shape));
                }
                Err((path, message)) => {
                    let field = match path {
                        Some(p) => format!("{field}.{p}"),
                        None => field,
                    };
                    cx.push(&file, None, Some(field), message);
                    shapes.resolved.insert(name, None);
                }
            }
        }
        // Lower every shape now, so its errors are reported even if no tool uses it.
        let names: Vec<String> = shapes.pending.keys().cloned().collect();
        for name in names {
            shapes.resolve(cx, &name);
        }
        shapes
    }

    /// Reports the shapes no tool uses (when every tool parsed: an unparsed one may use them).
    pub(super) fn report_unused(&self, cx: &mut Cx) {
        for (name, file) in &self.files {
            if !self.used.contains(name) {
                cx.push(
                    file,
                    None,
                    Some(format!("shapes.{name}")),
                    "no tool returns this shape; remove it or use it".into(),
                );
            }
        }
    }

    /// The lowered shape, lowering it (and the shapes it references) if needed.
    fn resolve(&mut self, cx: &mut Cx, name: &str) -> Option<Schema> {
        if let Some(done) = self.resolved.get(name) {
            return done.clone();
        }
        let (file, raw) = self.pending.remove(name)?;
        self.lowering.push(name.to_string());
        let at = At { file, tool: None };
        let description = raw.description.trim().to_string();
        if description.is_empty() {
            at.err(
                cx,
                format!("shapes.{name}.description"),
                "must say what the shape is, for the assistant",
            );
        }
        let before = cx.diags.len();
        let object = self.object(cx, &at, &format!("shapes.{name}"), raw.properties);
        self.lowering.pop();
        let schema = (cx.diags.len() == before).then_some(Schema {
            description,
            sensitive: false,
            nullable: false,
            kind: Kind::Object(object),
        });
        self.resolved.insert(name.to_string(), schema.clone());
        schema
    }

    /// A reference to a shape from `path`.
    fn reference(&mut self, cx: &mut Cx, at: &At, path: &str, name: &str) -> Option<Schema> {
        self.used.insert(name.to_string());
        if self.lowering.iter().any(|n| n == name) {
            at.err(
                cx,
                path.to_string(),
                format!(
                    "shape `{name}` contains itself (through {}); results are finite trees",
                    self.lowering.join(" → ")
                ),
            );
            return None;
        }
        if !self.files.contains_key(name) {
            let known: Vec<String> = self.files.keys().map(|k| format!("`{k}`")).collect();
            at.err(
                cx,
                path.to_string(),
                format!(
                    "unknown shape `{name}` (declared: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        }
        self.resolve(cx, name)
    }

    /// The result of one tool.
    pub(super) fn tool_output(
        &mut self,
        cx: &mut Cx,
        file: &str,
        tool: &str,
        raw: Option<RawOutput>,
        paginated: bool,
    ) -> Option<Object> {
        let at = At {
            file: file.to_string(),
            tool: Some(tool.to_string()),
        };
        let Some(raw) = raw else {
            at.err(
                cx,
                "output".into(),
                "every tool needs an `output`: `list: Shape` for a paginated tool, otherwise `shape: Shape` or `properties`",
            );
            return None;
        };
        let before = cx.diags.len();
        let object = match (raw.list, raw.shape, raw.properties) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                at.err(
                    cx,
                    "output.list".into(),
                    "`list` is the whole result (a page); it takes no `shape` or `properties` beside it",
                );
                None
            }
            (Some(name), None, None) => {
                if !paginated {
                    at.err(
                        cx,
                        "output.list".into(),
                        "`list` is the page envelope of a paginated tool, and this tool is not `paginated: true`; declare `properties` instead",
                    );
                }
                self.reference(cx, &at, "output.list", &name).map(page)
            }
            (None, shape, properties) => {
                if paginated {
                    at.err(
                        cx,
                        "output".into(),
                        "a paginated tool returns a page: declare `list: Shape`",
                    );
                }
                let mut object = match &shape {
                    None => Object::default(),
                    Some(name) => match self.reference(cx, &at, "output.shape", name) {
                        Some(Schema {
                            kind: Kind::Object(o),
                            ..
                        }) => o,
                        _ => Object::default(),
                    },
                };
                match properties {
                    Some(props) => {
                        let extra = self.object(cx, &at, "output", props);
                        for p in extra.properties {
                            if object.get(&p.name).is_some() {
                                at.err(
                                    cx,
                                    format!("output.{}", p.name),
                                    format!(
                                        "`{}` is already a field of shape `{}`",
                                        p.name,
                                        shape.as_deref().unwrap_or_default()
                                    ),
                                );
                            } else {
                                object.properties.push(p);
                            }
                        }
                    }
                    None if shape.is_none() => at.err(
                        cx,
                        "output".into(),
                        "declare `list: Shape`, `shape: Shape` or `properties` (`properties: {}` for an answer with no fields)",
                    ),
                    None => {}
                }
                Some(object)
            }
        };
        object.filter(|_| cx.diags.len() == before)
    }

    fn object(
        &mut self,
        cx: &mut Cx,
        at: &At,
        path: &str,
        properties: IndexMap<String, RawOut>,
    ) -> Object {
        let mut out = Object::default();
        for (name, raw) in properties {
            let field = format!("{path}.{name}");
            if !is_identifier(&name) {
                at.err(
                    cx,
                    field.clone(),
                    "field names must be snake_case ([a-z][a-z0-9_]*)",
                );
            }
            let required = !raw.optional;
            let schema = self.schema(cx, at, &field, raw);
            out.properties.push(Property {
                name,
                required,
                schema,
                added: None,
            });
        }
        out
    }

    fn schema(&mut self, cx: &mut Cx, at: &At, path: &str, raw: RawOut) -> Schema {
        let description = raw.description.map(|d| d.trim().to_string());
        if let Some(name) = &raw.shape {
            for (keyword, present) in [
                ("type", raw.ty.is_some()),
                ("enum", raw.enum_values.is_some()),
                ("format", raw.format.is_some()),
                ("items", raw.items.is_some()),
                ("properties", raw.properties.is_some()),
            ] {
                if present {
                    at.err(
                        cx,
                        format!("{path}.{keyword}"),
                        format!("a `shape` reference takes only `description`, `nullable` and `optional`, not `{keyword}`"),
                    );
                }
            }
            let mut schema = self
                .reference(cx, at, path, name)
                .unwrap_or_else(placeholder);
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                schema.description = d;
            }
            schema.nullable = raw.nullable;
            return schema;
        }
        let Some(ty) = raw.ty else {
            at.err(
                cx,
                path.to_string(),
                "needs a `type` (`string`, `integer`, `number`, `boolean`, `array`, `object`) or a `shape`",
            );
            return placeholder();
        };
        let unsupported = |cx: &mut Cx, keyword: &str, present: bool| {
            if present {
                at.err(
                    cx,
                    format!("{path}.{keyword}"),
                    format!("`{keyword}` does not apply to type `{ty}`"),
                );
            }
        };
        unsupported(cx, "enum", raw.enum_values.is_some() && ty != "string");
        unsupported(cx, "format", raw.format.is_some() && ty != "string");
        unsupported(cx, "items", raw.items.is_some() && ty != "array");
        unsupported(cx, "properties", raw.properties.is_some() && ty != "object");
        let kind = match ty.as_str() {
            "string" => {
                if let Some(values) = &raw.enum_values {
                    let unique: BTreeSet<_> = values.iter().collect();
                    if values.is_empty() || unique.len() != values.len() {
                        at.err(
                            cx,
                            format!("{path}.enum"),
                            "enum must list at least one value, each once",
                        );
                    }
                }
                let format = raw.format.as_deref().and_then(|f| {
                    format_named(f)
                        .map_err(|message| at.err(cx, format!("{path}.format"), message))
                        .ok()
                });
                Kind::String {
                    min_length: None,
                    max_length: None,
                    pattern: None,
                    enum_values: raw.enum_values,
                    format,
                }
            }
            "integer" => Kind::Integer {
                minimum: None,
                maximum: None,
            },
            "number" => Kind::Number {
                minimum: None,
                maximum: None,
            },
            "boolean" => Kind::Boolean,
            "array" => {
                let items = match raw.items {
                    Some(items) => self.schema(cx, at, &format!("{path}[]"), *items),
                    None => {
                        at.err(
                            cx,
                            format!("{path}.items"),
                            "an array needs an `items` schema",
                        );
                        placeholder()
                    }
                };
                Kind::Array {
                    items: Box::new(items),
                    min_items: None,
                    max_items: None,
                }
            }
            // No properties: any object (e.g. recorded arguments).
            "object" => Kind::Object(self.object(cx, at, path, raw.properties.unwrap_or_default())),
            other => {
                at.err(
                    cx,
                    format!("{path}.type"),
                    format!(
                        "unsupported type `{other}` (known: `string`, `integer`, `number`, `boolean`, `array`, `object`)"
                    ),
                );
                Kind::Boolean
            }
        };
        Schema {
            description: description.unwrap_or_default(),
            sensitive: false,
            nullable: raw.nullable,
            kind,
        }
    }
}

/// The page envelope of a paginated tool around items of `shape`.
fn page(shape: Schema) -> Object {
    Object {
        properties: vec![
            Property {
                name: "data".into(),
                required: true,
                added: None,
                schema: Schema {
                    description: "The items of this page, in order.".into(),
                    sensitive: false,
                    nullable: false,
                    kind: Kind::Array {
                        items: Box::new(shape),
                        min_items: None,
                        max_items: None,
                    },
                },
            },
            Property {
                name: "next_cursor".into(),
                required: true,
                added: None,
                schema: Schema {
                    description:
                        "Pass it back as `cursor` for the next page; null on the last page.".into(),
                    sensitive: false,
                    nullable: true,
                    kind: Kind::String {
                        min_length: None,
                        max_length: None,
                        pattern: None,
                        enum_values: None,
                        format: None,
                    },
                },
            },
        ],
    }
}
