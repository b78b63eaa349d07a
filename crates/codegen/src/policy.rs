//! Loading and validating a Cedar policy set: shared by `build.rs` (a bad policy fails
//! `cargo build`) and the gateway (`flowgate serve` and `flowgate policy check` refuse an
//! invalid set and say why).
//!
//! Rules on top of Cedar's strict validation:
//! - every policy has a unique `@id`, which is its id everywhere (logs, audit, tests);
//! - every `forbid` has a `@reason` a studio owner can read; its placeholders are limited to
//!   [`PLACEHOLDERS`];
//! - validation warnings (an impossible policy, an action that never applies) are errors,
//!   because they mean a rule silently does nothing.

use std::path::Path;
use std::str::FromStr;

use cedar_policy::{Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator};

/// What a `@reason` may mention; the gateway fills them in per call.
pub const PLACEHOLDERS: [&str; 4] = ["{tool}", "{scope}", "{tier}", "{studio_tier}"];

/// A policy file: its display name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub name: String,
    pub text: String,
}

/// Reads every `*.cedar` file of `dir`, sorted by name.
pub fn read_dir(dir: &Path) -> Result<Vec<PolicyFile>, Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![format!(
            "{}: cannot read the policy folder: {e}",
            dir.display()
        )]
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::read_to_string(&p) {
            Ok(text) => files.push(PolicyFile {
                name: p.display().to_string(),
                text,
            }),
            Err(e) => errors.push(format!("{}: cannot read: {e}", p.display())),
        }
    }
    if files.is_empty() && errors.is_empty() {
        errors.push(format!(
            "{}: no *.cedar files: an empty policy set would deny every call",
            dir.display()
        ));
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Parses a Cedar schema, turning warnings into errors.
pub fn parse_schema(src: &str) -> Result<Schema, Vec<String>> {
    let (schema, warnings) = Schema::from_cedarschema_str(src)
        .map_err(|e| vec![format!("the Cedar schema does not parse: {e}")])?;
    let warnings: Vec<String> = warnings.map(|w| format!("schema warning: {w}")).collect();
    if warnings.is_empty() {
        Ok(schema)
    } else {
        Err(warnings)
    }
}

/// Parses the files into one policy set with `@id`s as policy ids, checking the house rules.
pub fn parse_policies(files: &[PolicyFile]) -> Result<PolicySet, Vec<String>> {
    let mut set = PolicySet::new();
    let mut errors = Vec::new();
    for file in files {
        let parsed = match PolicySet::from_str(&file.text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("{}: does not parse: {e}", file.name));
                continue;
            }
        };
        // `policies()` iterates a map: sort by source position for stable messages.
        let mut policies: Vec<_> = parsed.policies().collect();
        policies.sort_by_key(|p| p.to_string());
        for policy in policies {
            let Some(id) = policy.annotation("id") else {
                errors.push(format!(
                    "{}: a policy has no @id annotation: {}",
                    file.name,
                    first_line(&policy.to_string())
                ));
                continue;
            };
            if policy.effect() == Effect::Forbid {
                match policy.annotation("reason") {
                    None => errors.push(format!(
                        "{}: policy `{id}` is a forbid without a @reason: say why, for the studio owner",
                        file.name
                    )),
                    Some(reason) => {
                        if let Err(e) = check_placeholders(reason) {
                            errors.push(format!("{}: policy `{id}`: {e}", file.name));
                        }
                    }
                }
            }
            if let Some(p) = policy.annotation("priority")
                && p.parse::<u32>().is_err()
            {
                errors.push(format!(
                    "{}: policy `{id}`: @priority must be a whole number, got `{p}`",
                    file.name
                ));
            }
            if let Err(e) = set.add(policy.new_id(PolicyId::new(id))) {
                errors.push(format!("{}: policy `{id}`: {e}", file.name));
            }
        }
        if parsed.templates().next().is_some() {
            errors.push(format!(
                "{}: templates are not supported in the policy folder",
                file.name
            ));
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Strict validation against the schema; warnings count as errors.
pub fn validate(schema: &Schema, set: &PolicySet) -> Result<(), Vec<String>> {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    let mut errors: Vec<String> = result.validation_errors().map(|e| format!("{e}")).collect();
    errors.extend(
        result
            .validation_warnings()
            .map(|w| format!("{w} (warnings are errors: the rule would silently do nothing)")),
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Parses the schema and the files and validates them: the whole check in one call.
pub fn compile(schema_src: &str, files: &[PolicyFile]) -> Result<(Schema, PolicySet), Vec<String>> {
    let schema = parse_schema(schema_src)?;
    let set = parse_policies(files)?;
    validate(&schema, &set)?;
    Ok((schema, set))
}

fn check_placeholders(reason: &str) -> Result<(), String> {
    let mut rest = reason;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err("@reason has an unclosed `{`".into());
        };
        let ph = &rest[open..open + close + 1];
        if !PLACEHOLDERS.contains(&ph) {
            return Err(format!(
                "@reason uses the unknown placeholder `{ph}` (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim_start().starts_with('@'))
        .unwrap_or("")
        .trim()
        .to_string()
}
