//! The authorization decision: one choke point, [`Authz::authorize`], for every tool call.
//!
//! Principal (secret key or OAuth grant, with its studio and scopes), the studio's tier, the tool
//! and its validated arguments go in; `Allow`, or `Deny` with the deciding policy ids and a
//! sentence a studio owner understands, comes out. It fails closed: a policy that errors, a
//! request the schema rejects, or no permit at all is a deny, and every deny is explained.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId,
    EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Request, RestrictedExpression, Schema,
};
use flowgate_codegen::policy::{self, PolicyFile};

use crate::identity::{Principal, PrincipalKind, Studio};
use crate::tool::{self, Access, ToolDef};

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

/// Why a decision could not be made. Never shown to a caller: [`Authz::authorize`] logs it and
/// denies (fail closed).
#[derive(Debug, thiserror::Error)]
enum Undecidable {
    #[error("cannot build the call's entities: {0}")]
    Entities(String),
    #[error("cannot build the authorization request: {0}")]
    Request(String),
    #[error("policy evaluation errors: {0}")]
    Evaluation(String),
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
    /// Per Cedar action id, built once: see [`ActionSlice`].
    actions: HashMap<&'static str, ActionSlice>,
    directory: EntityUid,
    /// The policy files, as loaded (the generated scope guards last).
    files: Vec<PolicyFile>,
    /// Recently built entities of a call, see [`CallEntities`].
    recent: moka::sync::Cache<u64, Arc<CallEntities>>,
    /// Randomly keyed per process, so keys cannot be aimed at each other.
    recent_hasher: std::collections::hash_map::RandomState,
}

/// The entities of a decision (principal, studio, the action and its groups) for one caller,
/// studio, tier and action: the same for every call of that tool by that caller, so they are
/// built once and remembered for a minute. Keyed by a hash of everything they are built from,
/// and used only if that is equal too (a hash collision builds afresh). Nothing else goes in:
/// revocation and expiry are checked before a call gets here, and a change of plan is a new key.
struct CallEntities {
    principal: Principal,
    studio: Studio,
    action: &'static str,
    principal_uid: EntityUid,
    studio_uid: EntityUid,
    entities: Entities,
    /// The decision, once made, if the action's slice is context-free (see [`ActionSlice`]).
    decided: std::sync::OnceLock<Decision>,
}

/// What a decision on one action needs, prepared at load time.
struct ActionSlice {
    uid: EntityUid,
    /// The action entity and the groups it is in (e.g. `tier:pro`), from the schema.
    entities: Entities,
    /// The policies whose action scope can match this action. Cedar evaluates every policy it
    /// is given; one whose action scope does not match is false before its conditions are
    /// looked at (no error, never a reason), so leaving it out changes no decision and no
    /// diagnostic, and the cost of a decision no longer grows with the size of the catalog.
    /// Actions with the same slice share one set (most tools of a scope and tier do), so the
    /// memory does not grow with the catalog either.
    policies: Arc<PolicySet>,
    /// No policy of the slice names `context`, the only part of a request that is not in
    /// [`CallEntities`]' key: its decision is then the same for every call with those
    /// entities, so it is made once and remembered with them.
    context_free: bool,
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
        let all_actions = schema
            .action_entities()
            .map_err(|e| PolicyError(vec![format!("the schema's actions: {e}")]))?;
        let mut actions = HashMap::new();
        let mut slices: HashMap<Vec<PolicyId>, Arc<PolicySet>> = HashMap::new();
        // Each policy's JSON form is written once, not once per action it applies to.
        let reading_context: HashSet<PolicyId> = policies
            .policies()
            .filter(|p| reads_context(p))
            .map(|p| p.id().clone())
            .collect();
        for t in tool::catalog::TOOLS {
            let uid = EntityUid::from_type_name_and_id(action_ty.clone(), EntityId::new(t.action));
            let needed: Vec<Entity> = std::iter::once(&uid)
                .chain(all_actions.ancestors(&uid).into_iter().flatten())
                .filter_map(|u| all_actions.get(u).cloned())
                .collect();
            if needed.is_empty() {
                return Err(PolicyError(vec![format!(
                    "the schema has no action {uid} for tool {}",
                    t.name
                )]));
            }
            let entities = Entities::from_entities(needed, None)
                .map_err(|e| PolicyError(vec![format!("the entities of {uid}: {e}")]))?;
            let applying: Vec<&Policy> = policies
                .policies()
                .filter(|p| match p.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(a) => a == uid,
                    ActionConstraint::In(groups) => groups
                        .iter()
                        .any(|g| *g == uid || entities.is_ancestor_of(g, &uid)),
                })
                .collect();
            let context_free = !applying.iter().any(|p| reading_context.contains(p.id()));
            let ids: Vec<PolicyId> = applying.iter().map(|p| p.id().clone()).collect();
            let sliced = match slices.get(&ids) {
                Some(shared) => Arc::clone(shared),
                None => {
                    let mut set = PolicySet::new();
                    for p in applying {
                        set.add(p.clone())
                            .map_err(|e| PolicyError(vec![format!("slicing for {uid}: {e}")]))?;
                    }
                    let set = Arc::new(set);
                    slices.insert(ids, Arc::clone(&set));
                    set
                }
            };
            actions.insert(
                t.action,
                ActionSlice {
                    uid,
                    entities,
                    policies: sliced,
                    context_free,
                },
            );
        }
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
            recent: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
            recent_hasher: std::collections::hash_map::RandomState::new(),
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

    /// The principal and studio entities of one call, built from what authentication and the
    /// studio lookup established (their shape is checked against the schema by a test).
    fn call_entities(
        &self,
        principal: &Principal,
        studio: &Studio,
    ) -> Result<(EntityUid, EntityUid, Vec<Entity>), Undecidable> {
        let studio_uid =
            EntityUid::from_type_name_and_id(self.types.studio.clone(), EntityId::new(&studio.id));
        let principal_studio = EntityUid::from_type_name_and_id(
            self.types.studio.clone(),
            EntityId::new(&principal.studio),
        );
        let tier = || {
            RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
                self.types.tier.clone(),
                EntityId::new(&studio.tier),
            ))
        };
        let studio_entity = Entity::new(
            studio_uid.clone(),
            HashMap::from([("tier".to_string(), tier())]),
            HashSet::new(),
        )
        .map_err(|e| Undecidable::Entities(e.to_string()))?;

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
        .map_err(|e| Undecidable::Entities(e.to_string()))?;

        let mut entities = vec![principal_entity, studio_entity];
        if principal_studio != studio_uid {
            entities.push(
                Entity::new(
                    principal_studio,
                    HashMap::from([("tier".to_string(), tier())]),
                    HashSet::new(),
                )
                .map_err(|e| Undecidable::Entities(e.to_string()))?,
            );
        }
        Ok((principal_uid, studio_uid, entities))
    }

    /// The action's slice of the policies and the call's entities.
    fn prepare(
        &self,
        principal: &Principal,
        studio: &Studio,
        tool: &ToolDef,
    ) -> Result<(&ActionSlice, Arc<CallEntities>), Undecidable> {
        let slice = self.actions.get(tool.action).ok_or_else(|| {
            Undecidable::Request(format!("no Cedar action for tool {}", tool.name))
        })?;
        let call = self.entities_for(principal, studio, tool.action, slice)?;
        Ok((slice, call))
    }

    /// The Cedar request of one call.
    fn request(
        &self,
        tool: &ToolDef,
        slice: &ActionSlice,
        call: &CallEntities,
        input: RestrictedExpression,
    ) -> Result<Request, Undecidable> {
        let resource = if tool.public {
            self.directory.clone()
        } else {
            call.studio_uid.clone()
        };
        let context = Self::context(input)?;
        Request::new(
            call.principal_uid.clone(),
            slice.uid.clone(),
            resource,
            context,
            Some(&self.schema),
        )
        .map_err(|e| Undecidable::Request(e.to_string()))
    }

    /// A call's Cedar context: its arguments as `input`.
    fn context(input: RestrictedExpression) -> Result<Context, Undecidable> {
        Context::from_pairs([("input".to_string(), input)])
            .map_err(|e| Undecidable::Request(e.to_string()))
    }

    /// The call's entities, remembered or built (see [`CallEntities`]).
    fn entities_for(
        &self,
        principal: &Principal,
        studio: &Studio,
        action: &'static str,
        slice: &ActionSlice,
    ) -> Result<Arc<CallEntities>, Undecidable> {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.recent_hasher.build_hasher();
        (
            principal.kind,
            &principal.id,
            &principal.studio,
            &principal.name,
        )
            .hash(&mut h);
        principal.scopes.hash(&mut h);
        (&studio.id, &studio.tier, action).hash(&mut h);
        let key = h.finish();
        if let Some(c) = self.recent.get(&key)
            && c.action == action
            && c.studio == *studio
            && c.principal == *principal
        {
            return Ok(c);
        }
        let (principal_uid, studio_uid, entities) = self.call_entities(principal, studio)?;
        // The action and its groups come from the schema (without them `action in
        // Action::"tier:pro"` would silently never match); the per-call entities are added
        // without a schema check, which `call_entities_conform_to_the_schema` covers.
        let entities = slice
            .entities
            .clone()
            .add_entities(entities, None)
            .map_err(|e| Undecidable::Entities(e.to_string()))?;
        let built = Arc::new(CallEntities {
            principal: principal.clone(),
            studio: studio.clone(),
            action,
            principal_uid,
            studio_uid,
            entities,
            decided: std::sync::OnceLock::new(),
        });
        self.recent.insert(key, built.clone());
        Ok(built)
    }

    fn try_authorize(
        &self,
        principal: &Principal,
        studio: &Studio,
        tool: &ToolDef,
        input: RestrictedExpression,
    ) -> Result<Decision, Undecidable> {
        let (slice, call) = self.prepare(principal, studio, tool)?;
        if slice.context_free
            && let Some(decided) = call.decided.get()
        {
            // The arguments are still checked against the schema, as `Request::new` checks
            // them: a context the schema rejects is refused whatever was decided before.
            Self::context(input)?
                .validate(&self.schema, &slice.uid)
                .map_err(|e| Undecidable::Request(e.to_string()))?;
            return Ok(decided.clone());
        }
        let request = self.request(tool, slice, &call, input)?;
        let decision = self.decide(&request, slice, &call, principal, studio, tool)?;
        if slice.context_free {
            // A concurrent first call may have set it: the same decision either way.
            let _ = call.decided.set(decision.clone());
        }
        Ok(decision)
    }

    /// Cedar's decision on `request`, with the reasons a caller is shown.
    fn decide(
        &self,
        request: &Request,
        slice: &ActionSlice,
        call: &CallEntities,
        principal: &Principal,
        studio: &Studio,
        tool: &ToolDef,
    ) -> Result<Decision, Undecidable> {
        let response = self
            .authorizer
            .is_authorized(request, &slice.policies, &call.entities);

        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            // An erroring forbid is skipped by Cedar; treat any error as a deny.
            return Err(Undecidable::Evaluation(errors.join("; ")));
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

/// Whether a policy can read the request's context: its JSON form names the variable `context`
/// anywhere (and, conservatively, if it has no JSON form).
fn reads_context(policy: &Policy) -> bool {
    fn names_context(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                m.get("Var").is_some_and(|x| x == "context") || m.values().any(names_context)
            }
            serde_json::Value::Array(a) => a.iter().any(names_context),
            _ => false,
        }
    }
    policy.to_json().map_or(true, |j| names_context(&j))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `try_authorize` adds the per-call entities without a schema check (it is the hot path);
    /// this is that check, for both kinds of principal, on the studio's own and on another studio.
    #[test]
    fn call_entities_conform_to_the_schema() {
        let authz = Authz::shipped().unwrap();
        for kind in [PrincipalKind::Key, PrincipalKind::Grant] {
            let principal = Principal {
                kind,
                id: "key_0123".into(),
                studio: "std_a".into(),
                name: "Front desk".into(),
                scopes: ["classes:read", "openid"].map(String::from).into(),
            };
            for studio in ["std_a", "std_b"] {
                let studio = Studio {
                    id: studio.into(),
                    name: "Studio".into(),
                    tier: "pro".into(),
                };
                let (_, _, entities) = authz.call_entities(&principal, &studio).unwrap();
                let checked = Entities::from_entities(entities, Some(&authz.schema));
                assert!(checked.is_ok(), "{kind:?} on {}: {checked:?}", studio.id);
            }
        }
    }

    /// Every tool's action, with the groups it is in, was taken from the schema.
    #[test]
    fn every_tool_has_its_action_and_groups() {
        let authz = Authz::shipped().unwrap();
        let all = authz.schema.action_entities().unwrap();
        for t in tool::catalog::TOOLS {
            let slice = &authz.actions[t.action];
            let want = all.ancestors(&slice.uid).unwrap().count();
            assert!(want > 0, "{} is in no action group", t.name);
            assert_eq!(slice.entities.len(), want + 1, "{}", t.name);
        }
    }

    /// Every tool with its documented example, for callers with every scope, none, or only the
    /// tool's, of both kinds, on both tiers, on their own studio and another: 18 cases a tool.
    fn every_case(
        registry: &crate::tool::Registry,
    ) -> Vec<(&crate::tool::Tool, RestrictedExpression, Principal, Studio)> {
        let all: BTreeSet<String> = tool::catalog::SCOPES
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        let mut cases = Vec::new();
        for t in registry.iter() {
            let example: serde_json::Value = serde_json::from_str(t.def.example).unwrap();
            let input = t.prepare(Some(example["input"].clone())).unwrap().context;
            let own: BTreeSet<String> = t.def.scope.map(str::to_string).into_iter().collect();
            for scopes in [all.clone(), BTreeSet::new(), own] {
                for kind in [PrincipalKind::Key, PrincipalKind::Grant] {
                    for (id, tier) in [("std_a", "free"), ("std_a", "pro"), ("std_b", "pro")] {
                        let principal = Principal {
                            kind,
                            id: "p1".into(),
                            studio: "std_a".into(),
                            name: "n".into(),
                            scopes: scopes.clone(),
                        };
                        let studio = Studio {
                            id: id.into(),
                            name: "Studio".into(),
                            tier: tier.into(),
                        };
                        cases.push((t, input.clone(), principal, studio));
                    }
                }
            }
        }
        cases
    }

    /// Slicing the policies by action changes nothing: in [`every_case`], the sliced set gives
    /// the same decision, reasons and errors as the whole set.
    #[test]
    fn the_action_slices_decide_like_the_whole_policy_set() {
        let authz = Authz::shipped().unwrap();
        let registry = crate::tool::Registry::new().unwrap();
        let mut compared = 0;
        for (t, input, principal, studio) in every_case(&registry) {
            let (slice, entities) = authz.prepare(&principal, &studio, t.def).unwrap();
            let request = authz.request(t.def, slice, &entities, input).unwrap();
            let whole =
                authz
                    .authorizer
                    .is_authorized(&request, &authz.policies, &entities.entities);
            let sliced =
                authz
                    .authorizer
                    .is_authorized(&request, &slice.policies, &entities.entities);
            let view = |r: &cedar_policy::Response| {
                let mut reasons: Vec<String> =
                    r.diagnostics().reason().map(ToString::to_string).collect();
                reasons.sort();
                let errors = r.diagnostics().errors().count();
                (r.decision(), reasons, errors)
            };
            assert_eq!(
                view(&whole),
                view(&sliced),
                "{} for {principal:?} on {studio:?}",
                t.def.name
            );
            compared += 1;
        }
        assert_eq!(compared, registry.iter().count() * 18);
        // And slicing does leave policies out.
        let most = authz
            .actions
            .values()
            .map(|s| s.policies.policies().count())
            .max();
        assert!(most < Some(authz.policies.policies().count()));
    }

    /// Remembered entities are only reused for the same caller, scopes, studio, plan and action.
    #[test]
    fn remembered_entities_follow_the_caller_and_the_plan() {
        let authz = Authz::shipped().unwrap();
        let registry = crate::tool::Registry::new().unwrap();
        let t = registry
            .iter()
            .find(|t| t.def.tier == "pro" && t.def.scope.is_some())
            .unwrap();
        let example: serde_json::Value = serde_json::from_str(t.def.example).unwrap();
        let input = t.prepare(Some(example["input"].clone())).unwrap().context;
        let all: BTreeSet<String> = tool::catalog::SCOPES
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        let caller = |scopes: &BTreeSet<String>| Principal {
            kind: PrincipalKind::Key,
            id: "key_same".into(),
            studio: "std_a".into(),
            name: "n".into(),
            scopes: scopes.clone(),
        };
        let on = |tier: &str| Studio {
            id: "std_a".into(),
            name: "Studio A".into(),
            tier: tier.into(),
        };
        let decide =
            |p: &Principal, s: &Studio| authz.authorize(p, s, t.def, input.clone()).is_allow();
        for _ in 0..2 {
            assert!(decide(&caller(&all), &on("pro")), "{}", t.def.name);
            assert!(!decide(&caller(&all), &on("free")), "{}", t.def.name);
            assert!(
                !decide(&caller(&BTreeSet::new()), &on("pro")),
                "{}",
                t.def.name
            );
        }
    }

    /// A remembered decision is the decision Cedar makes afresh, in [`every_case`]. Only slices
    /// that never name the context are remembered; one that does (a shipped coupon rule, and a studio's own rule on
    /// a read tool) decides each call on its arguments.
    #[test]
    fn remembered_decisions_are_the_decisions_cedar_makes() {
        let rule = || PolicyFile {
            name: "secret.cedar".into(),
            text: r#"@id("secret-class")
@reason("That class is private.")
forbid (principal, action == Flow::Action::"get_class", resource)
when { context.input.class_id == "cls_secret" };"#
                .into(),
        };
        let mut files: Vec<PolicyFile> = tool::SHIPPED_POLICIES
            .iter()
            .map(|(name, text)| PolicyFile {
                name: format!("policies/{name}"),
                text: (*text).to_string(),
            })
            .collect();
        files.push(rule());
        let registry = crate::tool::Registry::new().unwrap();
        let all_scopes: BTreeSet<String> = tool::catalog::SCOPES
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        for authz in [Authz::shipped().unwrap(), Authz::from_files(files).unwrap()] {
            let mut remembered = 0;
            for (t, input, principal, studio) in every_case(&registry) {
                let first = authz.authorize(&principal, &studio, t.def, input.clone());
                let again = authz.authorize(&principal, &studio, t.def, input.clone());
                let (slice, call) = authz.prepare(&principal, &studio, t.def).unwrap();
                let request = authz.request(t.def, slice, &call, input).unwrap();
                let fresh = authz
                    .decide(&request, slice, &call, &principal, &studio, t.def)
                    .unwrap();
                let case = format!("{} for {principal:?} on {studio:?}", t.def.name);
                assert_eq!(first, fresh, "{case}");
                assert_eq!(again, fresh, "{case}");
                assert_eq!(call.decided.get().is_some(), slice.context_free, "{case}");
                remembered += usize::from(slice.context_free);
            }
            // Most tools' slices are context-free, and the ones that read it are not.
            assert!(remembered > registry.len() * 18 / 2, "{remembered}");
            assert!(!authz.actions["create_coupon"].context_free);
        }
        // A studio's own rule on get_class's arguments: that slice is decided per call.
        let custom = Authz::from_files(vec![rule()]).unwrap();
        assert!(!custom.actions["get_class"].context_free);
        let t = registry.get("get_class").unwrap();
        let principal = Principal {
            kind: PrincipalKind::Key,
            id: "p1".into(),
            studio: "std_a".into(),
            name: "n".into(),
            scopes: all_scopes,
        };
        let studio = Studio {
            id: "std_a".into(),
            name: "Studio".into(),
            tier: "pro".into(),
        };
        let input = |class: &str| {
            t.prepare(Some(serde_json::json!({"class_id": class})))
                .unwrap()
                .context
        };
        let secret = custom.authorize(&principal, &studio, t.def, input("cls_secret"));
        let other = custom.authorize(&principal, &studio, t.def, input("cls_open"));
        let secret_again = custom.authorize(&principal, &studio, t.def, input("cls_secret"));
        assert!(!secret.is_allow(), "{secret:?}");
        assert_eq!(secret, secret_again);
        // A remembered decision still refuses arguments the schema rejects (a number for a
        // string), as a fresh decision does.
        let shipped = Authz::shipped().unwrap();
        assert!(shipped.actions["get_class"].context_free);
        assert!(
            shipped
                .authorize(&principal, &studio, t.def, input("cls_open"))
                .is_allow()
        );
        let wrong = RestrictedExpression::new_record([(
            "class_id".to_string(),
            RestrictedExpression::new_long(7),
        )])
        .unwrap();
        let refused = shipped.authorize(&principal, &studio, t.def, wrong);
        assert!(
            matches!(&refused, Decision::Deny { reason, .. } if reason.contains("could not be checked")),
            "{refused:?}"
        );
        // (No permit in this policy set: the other class is denied too, but by default.)
        assert_ne!(secret, other, "{other:?}");
    }
}
