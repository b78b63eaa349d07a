//! The JSON Schemas of a tool, as published in `tools/list`: its input and its result.
//!
//! The gateway compiles its argument validator from exactly the input schema at start-up, so
//! what an assistant is shown is what is enforced; input objects always carry
//! `"additionalProperties": false`.
//!
//! The result schema (`outputSchema`) describes the `structuredContent` of a successful call.
//! Its objects are open (no `additionalProperties`): the gateway passes the Management API's
//! answer through, and a field the API adds later must not turn every answer into a schema
//! violation on the client. The test that checks real answers closes them, so an undeclared
//! field still fails the build's tests. Fields that may be `null` are `"type": [t, "null"]`.

use serde_json::{Map, Value, json};

use crate::ir::{Kind, Object, Schema};

/// The input schema of a tool (a JSON Schema 2020-12 object schema).
pub fn object_schema(obj: &Object) -> Value {
    object(obj, true)
}

/// The result schema of a tool (a JSON Schema 2020-12 object schema with open objects).
pub fn output_schema(obj: &Object) -> Value {
    object(obj, false)
}

fn object(obj: &Object, closed: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in &obj.properties {
        properties.insert(p.name.clone(), schema(&p.schema, closed));
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
    if closed {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

fn schema(s: &Schema, closed: bool) -> Value {
    let mut out = match &s.kind {
        Kind::Object(o) => match object(o, closed) {
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
                    m.insert("items".into(), schema(items, closed));
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
    if s.nullable {
        let ty = out.get("type").cloned().unwrap_or(Value::Null);
        out.insert("type".into(), json!([ty, "null"]));
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    if !s.description.is_empty() {
        out.insert("description".into(), json!(s.description));
    }
    Value::Object(out)
}
