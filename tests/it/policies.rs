//! Policy tests as data (`policies/tests/*.yaml`): each case names the caller, the studio, the
//! tool and its arguments, the expected decision **and** the deciding policies. Every policy is
//! covered in both directions; the generated scope guards are covered for every scope.

use std::collections::{BTreeMap, BTreeSet};

use flowgate::authz::{Authz, Decision};
use flowgate::identity::{Principal, PrincipalKind, Studio};
use flowgate::tool::Registry;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    principal: CasePrincipal,
    studio: CaseStudio,
    tool: String,
    #[serde(default)]
    input: Option<Value>,
    expect: Expect,
    deciding: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasePrincipal {
    kind: PrincipalKind,
    studio: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseStudio {
    id: String,
    tier: String,
}

#[derive(Deserialize, PartialEq, Eq, Debug, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Allow,
    Deny,
}

fn cases() -> Vec<(String, Case)> {
    let dir = crate::harness::crate_dir().join("policies/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let cases: Vec<Case> =
            flowgate_codegen::yaml::from_str(&std::fs::read_to_string(&f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let file = f.file_name().unwrap().to_string_lossy().to_string();
        out.extend(cases.into_iter().map(|c| (file.clone(), c)));
    }
    out
}

fn decide(authz: &Authz, registry: &Registry, c: &Case) -> Decision {
    let tool = registry
        .get(&c.tool)
        .unwrap_or_else(|| panic!("{}: unknown tool {}", c.name, c.tool));
    let input = c.input.clone().unwrap_or_else(|| {
        let example: Value = serde_json::from_str(tool.def.example).unwrap();
        example["input"].clone()
    });
    let decoded = tool
        .prepare(Some(input))
        .unwrap_or_else(|e| panic!("{}: invalid input: {e:?}", c.name));
    let principal = Principal {
        kind: c.principal.kind,
        id: "p_test".into(),
        studio: c.principal.studio.clone(),
        name: "test".into(),
        scopes: c.principal.scopes.iter().cloned().collect(),
    };
    let studio = Studio {
        id: c.studio.id.clone(),
        name: String::new(),
        tier: c.studio.tier.clone(),
    };
    authz.authorize(&principal, &studio, tool.def, decoded.context)
}

#[test]
fn policy_cases_decide_as_written() {
    let authz = Authz::shipped().unwrap();
    let registry = Registry::new().unwrap();
    let mut failures = Vec::new();
    for (file, c) in cases() {
        let decision = decide(&authz, &registry, &c);
        let (got, policies, reason) = match &decision {
            Decision::Allow { policies } => (Expect::Allow, policies.clone(), None),
            Decision::Deny { policies, reason } => {
                (Expect::Deny, policies.clone(), Some(reason.clone()))
            }
        };
        if got != c.expect || policies != c.deciding {
            failures.push(format!(
                "{file}: {}: expected {:?} by {:?}, got {got:?} by {policies:?} ({reason:?})",
                c.name, c.expect, c.deciding
            ));
        }
        if let Some(expected) = &c.reason
            && reason.as_ref() != Some(expected)
        {
            failures.push(format!(
                "{file}: {}: reason {reason:?}, expected {expected:?}",
                c.name
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_hand_written_policy_is_tested_both_ways() {
    let authz = Authz::shipped().unwrap();
    let cases = cases();
    let mut denies: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut allowed_tools: BTreeSet<&str> = BTreeSet::new();
    let mut allow_ids: BTreeSet<&str> = BTreeSet::new();
    for (_, c) in &cases {
        for id in &c.deciding {
            match c.expect {
                Expect::Deny => {
                    denies.entry(id).or_default().insert(&c.tool);
                }
                Expect::Allow => {
                    allow_ids.insert(id);
                }
            }
        }
        if c.expect == Expect::Allow {
            allowed_tools.insert(&c.tool);
        }
    }
    for id in authz.policy_ids() {
        if id.starts_with("scope.") {
            continue; // generated: covered for every scope below
        }
        if let Some(tools) = denies.get(id.as_str()) {
            // A forbid: it fires in some case, and the same tool is allowed in another.
            assert!(
                tools.iter().any(|t| allowed_tools.contains(t)),
                "forbid {id} has no case where one of {tools:?} is allowed"
            );
        } else {
            // A permit: it allows something, and some case is denied despite it.
            assert!(
                allow_ids.contains(id.as_str()),
                "policy {id} has no test case"
            );
        }
    }
}

#[test]
fn every_scope_guard_denies_without_its_scope_and_allows_with_it() {
    let authz = Authz::shipped().unwrap();
    let registry = Registry::new().unwrap();
    for scope in flowgate::tool::catalog::SCOPES {
        let tool = registry
            .iter()
            .find(|t| t.def.scope == Some(scope.name))
            .unwrap_or_else(|| panic!("no tool uses {}", scope.name));
        let case = |scopes: Vec<String>| Case {
            name: format!("{} via {}", scope.name, tool.def.name),
            principal: CasePrincipal {
                kind: PrincipalKind::Key,
                studio: "std_a".into(),
                scopes,
            },
            studio: CaseStudio {
                id: "std_a".into(),
                tier: "pro".into(),
            },
            tool: tool.def.name.into(),
            input: None,
            expect: Expect::Allow,
            deciding: vec![],
            reason: None,
        };
        let all_but: Vec<String> = flowgate::tool::catalog::SCOPES
            .iter()
            .filter(|s| s.name != scope.name)
            .map(|s| s.name.to_string())
            .collect();
        match decide(&authz, &registry, &case(all_but)) {
            Decision::Deny { policies, reason } => {
                assert_eq!(policies, [format!("scope.{}", scope.name)]);
                assert_eq!(
                    reason,
                    format!(
                        "{} needs the `{}` scope, which this connection was not granted.",
                        tool.def.name, scope.name
                    )
                );
            }
            d => panic!(
                "{}: expected a deny without the scope, got {d:?}",
                scope.name
            ),
        }
        assert!(
            decide(&authz, &registry, &case(vec![scope.name.to_string()])).is_allow(),
            "{}: the scope alone should allow {}",
            scope.name,
            tool.def.name
        );
    }
}
