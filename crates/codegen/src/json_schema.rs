//! The JSON Schema of a tool's input, as published in `tools/list`.
//!
//! The gateway compiles its argument validator from exactly this document at start-up, so what
//! an assistant is shown is what is enforced. Objects always carry
//! `"additionalProperties": false`.

use serde_json::{Map, Value, json};

use crate::ir::{Kind, Object, Schema};

/// The input schema of a tool (a JSON Schema 2020-12 object schema).
pub fn object_schema(obj: &Object) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in &obj.properties {
        properties.insert(p.name.clone(), schema(&p.schema));
        if p.required {
            required.push(Value::String(p.name.clone()));
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    out.insert("additionalProperties".into(), json!(false));
    Value::Object(out)
}

fn schema(s: &Schema) -> Value {
    let mut out = match &s.kind {
        Kind::Object(o) => match object_schema(o) {
            Value::Object(m) => m,
            _ => unreachable!("object_schema returns an object"),
        },
        kind => {
            let mut m = Map::new();
            m.insert("type".into(), json!(kind.type_name()));
            match kind {
                Kind::String {
                    min_length,
                    max_length,
                    pattern,
                    enum_values,
                    format,
                } => {
                    if let Some(v) = min_length {
                        m.insert("minLength".into(), json!(v));
                    }
                    if let Some(v) = max_length {
                        m.insert("maxLength".into(), json!(v));
                    }
                    if let Some(v) = pattern {
                        m.insert("pattern".into(), json!(v));
                    }
                    if let Some(v) = enum_values {
                        m.insert("enum".into(), json!(v));
                    }
                    if let Some(v) = format {
                        m.insert("format".into(), json!(v.as_str()));
                    }
                }
                Kind::Integer { minimum, maximum } => {
                    if let Some(v) = minimum {
                        m.insert("minimum".into(), json!(v));
                    }
                    if let Some(v) = maximum {
                        m.insert("maximum".into(), json!(v));
                    }
                }
                Kind::Number { minimum, maximum } => {
                    if let Some(v) = minimum {
                        m.insert("minimum".into(), json!(v));
                    }
                    if let Some(v) = maximum {
                        m.insert("maximum".into(), json!(v));
                    }
                }
                Kind::Array {
                    items,
                    min_items,
                    max_items,
                } => {
                    m.insert("items".into(), schema(items));
                    if let Some(v) = min_items {
                        m.insert("minItems".into(), json!(v));
                    }
                    if let Some(v) = max_items {
                        m.insert("maxItems".into(), json!(v));
                    }
                }
                Kind::Boolean | Kind::Object(_) => {}
            }
            m
        }
    };
    if !s.description.is_empty() {
        out.insert("description".into(), json!(s.description));
    }
    Value::Object(out)
}
