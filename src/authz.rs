//! The authorization decision: one choke point, [`Authz::authorize`], for every tool call.
//!
//! Principal (secret key or OAuth grant, with its studio and scopes), the studio's tier, the tool
//! and its validated arguments go in; `Allow`, or `Deny` with the deciding policy ids and a
//! sentence a studio owner understands, comes out. It fails closed: a policy that errors, a
//! request the schema rejects, or no permit at all is a deny, and every deny is explained.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request, RestrictedExpression, Schema,
};
use flowgate_codegen::policy::{self, PolicyFile};

use crate::tool::{self, Access, ToolDef};

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A secret key (`flow_sk_…`).
    Key,
    /// An OAuth grant (an MCP client a studio user approved).
    Grant,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Key => "key",
            PrincipalKind::Grant => "grant",
        }
    }
}

/// A caller, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The key or grant id (never the secret).
    pub id: String,
    /// The studio it belongs to.
    pub studio: String,
    /// The key's name or the OAuth client's name.
    pub name: String,
    pub scopes: BTreeSet<String>,
}

/// The studio a call acts on, with its tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Studio {
    pub id: String,
    pub tier: String,
}

/// The outcome of [`Authz::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the permits that allowed it.
    Allow { policies: Vec<String> },
    /// Denied; the forbids that fired (empty for a default deny) and the reason to show.
    Deny {
        policies: Vec<String>,
        reason: String,
    },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies } | Decision::Deny { policies, .. } => policies,
        }
    }
}

/// Why a policy set could not be loaded; every problem listed.
#[derive(Debug, thiserror::Error)]
#[error("the policy set is invalid:\n  {}", .0.join("\n  "))]
pub struct PolicyError(pub Vec<String>);

/// The loaded, validated policy set and everything a decision needs, built once.
pub struct Authz {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
    /// `@reason` and `@priority` of each forbid, by policy id.
    reasons: HashMap<String, (u32, String)>,
    types: Types,
    actions: HashMap<&'static str, EntityUid>,
    directory: EntityUid,
    /// The policy files, as loaded (the generated scope guards last).
    files: Vec<PolicyFile>,
}

struct Types {
    key: EntityTypeName,
    grant: EntityTypeName,
    studio: EntityTypeName,
    scope: EntityTypeName,
    tier: EntityTypeName,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz")
            .field("policies", &self.policies.policies().count())
            .finish_non_exhaustive()
    }
}

impl Authz {
    /// The policies shipped in the binary (`policies/*.cedar`, validated at build time).
    pub fn shipped() -> Result<Self, PolicyError> {
        let files = tool::SHIPPED_POLICIES
            .iter()
            .map(|(name, text)| PolicyFile {
                name: format!("policies/{name}"),
                text: (*text).to_string(),
            })
            .collect();
        Self::from_files(files)
    }

    /// The `*.cedar` files of a folder.
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        Self::from_files(policy::read_dir(dir).map_err(PolicyError)?)
    }

    /// Parses and strictly validates the files plus the generated scope guards.
    pub fn from_files(mut files: Vec<PolicyFile>) -> Result<Self, PolicyError> {
        files.push(PolicyFile {
            name: "(generated) scope_guards.cedar".into(),
            text: tool::SCOPE_GUARDS.to_string(),
        });
        let (schema, policies) =
            policy::compile(tool::CEDAR_SCHEMA, &files).map_err(PolicyError)?;
        let mut reasons = HashMap::new();
        for p in policies.policies() {
            if let Some(reason) = p.annotation("reason") {
                let priority = p
                    .annotation("priority")
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(100);
                reasons.insert(p.id().to_string(), (priority, reason.to_string()));
            }
        }
        let ty = |n: &str| {
            EntityTypeName::from_str(&format!("Flow::{n}")).expect("static entity type name")
        };
        let types = Types {
            key: ty("ApiKey"),
            grant: ty("OAuthGrant"),
            studio: ty("Studio"),
            scope: ty("Scope"),
            tier: ty("Tier"),
        };
        let action_ty = ty("Action");
        let actions = tool::catalog::TOOLS
            .iter()
            .map(|t| {
                (
                    t.action,
                    EntityUid::from_type_name_and_id(action_ty.clone(), EntityId::new(t.action)),
                )
            })
            .collect();
        let directory = EntityUid::from_type_name_and_id(ty("Directory"), EntityId::new("public"));
        Ok(Self {
            schema,
            policies,
            authorizer: Authorizer::new(),
            reasons,
            types,
            actions,
            directory,
            files,
        })
    }

    /// The policy files in force, the generated scope guards last.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// Ids of every policy in force, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Decides one call. `input` is the tool's validated arguments as a Cedar record.
    pub fn authorize(
        &self,
        principal: &Principal,
        studio: &Studio,
        tool: &ToolDef,
        input: RestrictedExpression,
    ) -> Decision {
        match self.try_authorize(principal, studio, tool, input) {
            Ok(d) => d,
            Err(internal) => {
                tracing::error!(tool = tool.name, error = %internal, "authorization failed closed");
                Decision::Deny {
                    policies: Vec::new(),
                    reason: format!(
                        "{} could not be checked against the studio's policies, so it was refused.",
                        tool.name
                    ),
                }
            }
        }
    }

    fn try_authorize(
        &self,
        principal: &Principal,
        studio: &Studio,
        tool: &ToolDef,
        input: RestrictedExpression,
    ) -> Result<Decision, String> {
        let studio_uid =
            EntityUid::from_type_name_and_id(self.types.studio.clone(), EntityId::new(&studio.id));
        let principal_studio = EntityUid::from_type_name_and_id(
            self.types.studio.clone(),
            EntityId::new(&principal.studio),
        );
        let tier = RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
            self.types.tier.clone(),
            EntityId::new(&studio.tier),
        ));
        let studio_entity = Entity::new(
            studio_uid.clone(),
            HashMap::from([("tier".to_string(), tier)]),
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?;

        // Scopes outside the manifest (e.g. `openid`) are not Cedar values: leave them out.
        let scopes = RestrictedExpression::new_set(
            principal
                .scopes
                .iter()
                .filter(|s| tool::catalog::SCOPES.iter().any(|d| d.name == s.as_str()))
                .map(|s| {
                    RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
                        self.types.scope.clone(),
                        EntityId::new(s),
                    ))
                }),
        );
        let (ptype, name_attr) = match principal.kind {
            PrincipalKind::Key => (&self.types.key, "name"),
            PrincipalKind::Grant => (&self.types.grant, "client_name"),
        };
        let principal_uid =
            EntityUid::from_type_name_and_id(ptype.clone(), EntityId::new(&principal.id));
        let principal_entity = Entity::new(
            principal_uid.clone(),
            HashMap::from([
                ("scopes".to_string(), scopes),
                (
                    name_attr.to_string(),
                    RestrictedExpression::new_string(principal.name.clone()),
                ),
            ]),
            HashSet::from([principal_studio.clone()]),
        )
        .map_err(|e| e.to_string())?;

        let mut entities = vec![principal_entity, studio_entity];
        if principal_studio != studio_uid {
            entities.push(
                Entity::new(
                    principal_studio,
                    HashMap::from([(
                        "tier".to_string(),
                        RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
                            self.types.tier.clone(),
                            EntityId::new(&studio.tier),
                        )),
                    )]),
                    HashSet::new(),
                )
                .map_err(|e| e.to_string())?,
            );
        }
        // With the schema, the action entities (and their groups) are added: without them
        // `action in Action::"tier:pro"` would silently never match.
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;

        let action = self
            .actions
            .get(tool.action)
            .ok_or_else(|| format!("no Cedar action for tool {}", tool.name))?
            .clone();
        let resource = if tool.public {
            self.directory.clone()
        } else {
            studio_uid
        };
        let context =
            Context::from_pairs([("input".to_string(), input)]).map_err(|e| e.to_string())?;
        let request = Request::new(principal_uid, action, resource, context, Some(&self.schema))
            .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);

        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            // An erroring forbid is skipped by Cedar; treat any error as a deny.
            return Err(format!("policy evaluation errors: {}", errors.join("; ")));
        }
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        match response.decision() {
            CedarDecision::Allow => {
                ids.sort();
                Ok(Decision::Allow { policies: ids })
            }
            CedarDecision::Deny => {
                ids.sort_by_key(|id| {
                    (
                        self.reasons.get(id).map(|(p, _)| *p).unwrap_or(100),
                        id.clone(),
                    )
                });
                let reason = match ids.first().and_then(|id| self.reasons.get(id)) {
                    Some((_, text)) => fill(text, tool, studio),
                    None => default_deny(principal, studio, tool),
                };
                Ok(Decision::Deny {
                    policies: ids,
                    reason,
                })
            }
        }
    }
}

/// Fills a `@reason`'s placeholders.
fn fill(text: &str, tool: &ToolDef, studio: &Studio) -> String {
    text.replace("{tool}", tool.name)
        .replace("{scope}", tool.scope.unwrap_or("(none)"))
        .replace("{tier}", tool::tier_title(tool.tier))
        .replace("{studio_tier}", tool::tier_title(&studio.tier))
}

/// No permit applied: explain the most likely cause instead of "denied".
fn default_deny(principal: &Principal, studio: &Studio, tool: &ToolDef) -> String {
    if let Some(scope) = tool.scope
        && !principal.scopes.contains(scope)
    {
        return format!(
            "{} needs the `{scope}` scope, which this connection was not granted.",
            tool.name
        );
    }
    if tool::tier_rank(&studio.tier) < tool::tier_rank(tool.tier) {
        return format!(
            "{} needs the {} plan; this studio is on {}.",
            tool.name,
            tool::tier_title(tool.tier),
            tool::tier_title(&studio.tier)
        );
    }
    if tool.access == Access::Write {
        return format!(
            "No policy allows this connection to make changes with {}.",
            tool.name
        );
    }
    format!("No policy allows this connection to use {}.", tool.name)
}
