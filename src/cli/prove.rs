//! `flowgate policy prove`: the product's guarantees as theorems, checked by an SMT solver.
//!
//! The effective policy set (the hand-written `policies/*.cedar` plus the generated scope
//! guards) is compiled with Cedar's symbolic compiler (`cedar-policy-symcc`, the same Cedar as
//! the runtime) for every request environment of the generated schema, i.e. every principal
//! type × tool action × resource type. For each environment the prover asks `cvc5`:
//!
//! - **invariants**: every request the real set allows is also allowed by each invariant that
//!   applies to it. Invariants are Cedar `permit` policies: the hand-written ones in
//!   `policies/invariants/*.cedar` (tenant isolation, tiers, the coupon limit, …) and the
//!   least-privilege ones generated here from the manifest ([`generated_invariants`]), because
//!   Cedar cannot relate a tool's scope group to a scope generically. An invariant *applies* to
//!   an environment when its scope (principal type, action or action group, resource type) can
//!   match it; its `when`/`unless` is then what must hold of every allowed request;
//! - **reachable**: some request is allowed (a tool nobody can call is a bug too);
//! - **never-errors**: no policy can raise an evaluation error (Cedar skips an erroring policy,
//!   so an erroring `forbid` would silently not deny).
//!
//! A failed check comes with a counterexample: a concrete request (principal, its studio and
//! scopes, the studio's tier, the arguments) the real set allows and the invariant does not.
//!
//! The solver is `cvc5` on `PATH`, or the binary the `CVC5` environment variable names.
//!
//! A module of the `flowgate` command, not of the gateway library: nothing that serves requests
//! compiles or links the symbolic compiler or the solver binding. `--json` prints the [`Report`]
//! as one JSON document, for auditors' tools and for `tests/it/prove.rs`.

pub mod roles;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use cedar_policy::{
    ActionConstraint, Effect, Entities, EntityUid, EvalResult, Policy, PrincipalConstraint,
    RequestEnv, ResourceConstraint, Schema,
};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet, Env, SymEnv};
use flowgate_codegen::policy::{self, PolicyFile};

use flowgate::authz::{Authz, PolicyError};
use flowgate::tool;
use serde::Serialize;

/// The invariant files shipped with the binary (`policies/invariants/*.cedar`); a test checks
/// this list against the folder.
pub const SHIPPED_INVARIANTS: &[(&str, &str)] = &[
    (
        "coupons.cedar",
        include_str!("../../policies/invariants/coupons.cedar"),
    ),
    (
        "least-privilege.cedar",
        include_str!("../../policies/invariants/least-privilege.cedar"),
    ),
    (
        "tenant.cedar",
        include_str!("../../policies/invariants/tenant.cedar"),
    ),
    (
        "tiers.cedar",
        include_str!("../../policies/invariants/tiers.cedar"),
    ),
];

/// The sub-folder of a policy folder that holds the invariants.
pub const INVARIANTS_DIR: &str = "invariants";

/// Property name of the reachability check.
pub const REACHABLE: &str = "reachable";
/// Property name of the never-errors check.
pub const NEVER_ERRORS: &str = "never-errors";

/// Why the prover could not run (a failed proof is not an error: it is in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Policies(#[from] PolicyError),
    #[error("the invariants are invalid:\n  {}", .0.join("\n  "))]
    Invariants(Vec<String>),
    #[error(
        "cannot start the SMT solver `{solver}`: {message}. Install cvc5 (`apt-get install cvc5`) or set CVC5 to its path"
    )]
    SolverMissing { solver: String, message: String },
    #[error("the symbolic compiler failed on {what}: {message}")]
    Compile { what: String, message: String },
    #[error("the SMT solver failed on {what}: {message}")]
    Solver { what: String, message: String },
}

/// A concrete request that breaks a property, as the solver found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterexample {
    /// `Flow::ApiKey` or `Flow::OAuthGrant`.
    pub principal_type: String,
    pub principal_id: String,
    /// The studio the principal belongs to (`None`: none in the counterexample).
    pub principal_studio: Option<String>,
    /// The principal's scopes, sorted.
    pub scopes: Vec<String>,
    /// The tool (Cedar action id).
    pub tool: String,
    /// The resource, as a Cedar entity uid (`Flow::Studio::"…"` or `Flow::Directory::"…"`).
    pub resource: String,
    /// The resource studio's tier (`None` for the directory).
    pub studio_tier: Option<String>,
    /// The call's arguments (`context.input`) as JSON.
    pub arguments: serde_json::Value,
    /// The principal's role, for the role policies (`None` for a key or grant).
    pub role: Option<String>,
}

/// The outcome of one property for one tool (or, for never-errors, one policy).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The invariant's `@id`, [`REACHABLE`] or [`NEVER_ERRORS`].
    pub property: String,
    /// The tool name, or the policy id for [`NEVER_ERRORS`].
    pub subject: String,
    /// No counterexample and no failure (in the JSON report, so a reader need not derive it).
    pub proved: bool,
    /// Request environments checked (one per principal type, for a tool).
    pub environments: usize,
    /// One counterexample per failing environment; empty when proved.
    pub counterexamples: Vec<Counterexample>,
    /// Why it failed when there is no counterexample (an unreachable tool).
    pub failure: Option<String>,
}

impl Check {
    pub(super) fn new(property: &str, subject: &str) -> Self {
        Self {
            property: property.to_string(),
            subject: subject.to_string(),
            proved: true,
            environments: 0,
            counterexamples: Vec::new(),
            failure: None,
        }
    }

    pub(super) fn settle(&mut self) {
        self.proved = self.counterexamples.is_empty() && self.failure.is_none();
    }
}

/// Everything the prover checked.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every check proved.
    pub passed: bool,
    /// The policy files proved (the generated scope guards are always added).
    pub policies: Vec<String>,
    /// The invariant files they were proved against, the generated least-privilege ones last.
    pub invariants: Vec<String>,
    pub checks: Vec<Check>,
    /// Request environments (principal type × tool × resource type).
    pub environments: usize,
    /// Solver queries issued.
    pub queries: usize,
    /// Wall time, compilation and solving.
    #[serde(rename = "elapsed_secs", serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.proved)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.property.len())
            .max()
            .unwrap_or(0);
        for c in &self.checks {
            let verdict = if c.proved { "PROVED" } else { "FAILED" };
            writeln!(f, "{verdict}  {:width$}  {}", c.property, c.subject)?;
            if let Some(why) = &c.failure {
                writeln!(f, "        {why}")?;
            }
            for cex in &c.counterexamples {
                writeln!(f, "        counterexample: {cex}")?;
            }
        }
        let failed = self.failed().count();
        writeln!(
            f,
            "{} proved, {failed} failed: {} checks over {} request environments, {} solver queries, in {:.2} s",
            self.checks.len() - failed,
            self.checks.len(),
            self.environments,
            self.queries,
            self.elapsed.as_secs_f64()
        )
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.principal_type, self.principal_id)?;
        if let Some(role) = &self.role {
            write!(f, " with role {role}")?;
        }
        match &self.principal_studio {
            Some(s) => write!(f, " of studio {s}")?,
            None => write!(f, " of no studio")?,
        }
        if self.role.is_none() {
            write!(f, " with scopes [{}]", self.scopes.join(", "))?;
        }
        write!(f, " calls {} on {}", self.tool, self.resource)?;
        if let Some(t) = &self.studio_tier {
            write!(f, " (tier {t})")?;
        }
        if self.arguments.is_null() {
            return Ok(());
        }
        write!(f, " with arguments {}", self.arguments)
    }
}

/// The least-privilege invariants Cedar cannot state generically, generated from the manifest:
/// one per scope (a tool of the scope's group runs only with that scope), and one saying that
/// a write tool never runs on `:read` scopes alone.
pub fn generated_invariants() -> String {
    let mut used: Vec<&str> = tool::catalog::TOOLS
        .iter()
        .filter_map(|t| t.scope)
        .collect();
    used.sort_unstable();
    used.dedup();
    let mut s = String::from(
        "// @generated by flowgate policy prove from the manifest: least privilege.\n",
    );
    for scope in &used {
        s.push_str(&format!(
            "\n// A tool that needs `{scope}` runs only for a connection granted `{scope}`.\n\
             @id(\"least-privilege.{scope}\")\n\
             permit (principal, action in Flow::Action::\"scope:{scope}\", resource)\n\
             when {{ principal.scopes.contains(Flow::Scope::\"{scope}\") }};\n"
        ));
    }
    let writes: Vec<String> = tool::catalog::SCOPES
        .iter()
        .filter(|s| s.name.ends_with(":write"))
        .map(|s| format!("Flow::Scope::\"{}\"", s.name))
        .collect();
    if !writes.is_empty() {
        s.push_str(&format!(
            "\n// `:read` scopes alone never run a write tool.\n\
             @id(\"least-privilege.read-never-writes\")\n\
             permit (principal, action in Flow::Action::\"access:write\", resource)\n\
             when {{ principal.scopes.containsAny([{}]) }};\n",
            writes.join(", ")
        ));
    }
    s
}

/// Proves the built-in policies against the built-in invariants.
pub async fn prove_shipped() -> Result<Report, ProveError> {
    let policies = tool::SHIPPED_POLICIES
        .iter()
        .map(|(name, text)| PolicyFile {
            name: format!("policies/{name}"),
            text: (*text).to_string(),
        })
        .collect();
    let invariants = SHIPPED_INVARIANTS
        .iter()
        .map(|(name, text)| PolicyFile {
            name: format!("policies/{INVARIANTS_DIR}/{name}"),
            text: (*text).to_string(),
        })
        .collect();
    prove_files(policies, invariants).await
}

/// Proves `dir/*.cedar` against `dir/invariants/*.cedar` (and the generated invariants).
pub async fn prove_dir(dir: &Path) -> Result<Report, ProveError> {
    let policies = policy::read_dir(dir).map_err(PolicyError)?;
    let invariants = policy::read_dir(&dir.join(INVARIANTS_DIR)).map_err(ProveError::Invariants)?;
    prove_files(policies, invariants).await
}

/// Proves the policy files (the generated scope guards are added) against the invariant files
/// (the generated invariants are added).
pub async fn prove_files(
    policies: Vec<PolicyFile>,
    mut invariants: Vec<PolicyFile>,
) -> Result<Report, ProveError> {
    let started = Instant::now();
    let policy_names: Vec<String> = policies.iter().map(|f| f.name.clone()).collect();
    // The same loading and strict validation as the gateway, so what is proved is what runs.
    let authz = Authz::from_files(policies)?;
    let (schema, set) = policy::compile(tool::CEDAR_SCHEMA, authz.files()).map_err(PolicyError)?;

    invariants.push(PolicyFile {
        name: "(generated) least-privilege invariants".into(),
        text: generated_invariants(),
    });
    let invariant_names: Vec<String> = invariants.iter().map(|f| f.name.clone()).collect();
    let (inv, policies) = sorted_policies(&schema, &set, &invariants)?;

    let actions = schema.action_entities().map_err(|e| ProveError::Compile {
        what: "the schema's actions".into(),
        message: e.to_string(),
    })?;
    let mut envs: Vec<RequestEnv> = schema.request_envs().collect();
    envs.sort_by_key(|e| {
        (
            e.action().to_string(),
            e.principal().to_string(),
            e.resource().to_string(),
        )
    });

    let solver_name = std::env::var("CVC5").unwrap_or_else(|_| "cvc5".into());
    let solver = LocalSolver::cvc5().map_err(|e| ProveError::SolverMissing {
        solver: solver_name,
        message: e.to_string(),
    })?;
    let mut prover = Prover {
        symcc: CedarSymCompiler::new(solver).map_err(|e| ProveError::Solver {
            what: "start-up".into(),
            message: e.to_string(),
        })?,
        schema: &schema,
        symenv: None,
        checks: Vec::new(),
        index: HashMap::new(),
        queries: 0,
    };
    let mut reachable: Vec<(String, bool)> = Vec::new();
    let mut never_errors: NeverErrors = policies
        .iter()
        .map(|p| (p.id().to_string(), 0, Vec::new()))
        .collect();

    for env in &envs {
        let tool = tool_name(env.action());
        let real = prover.enter(&set, env, "the policy set")?;
        for invariant in inv.iter().filter(|p| applies(p, env, &actions)) {
            let compiled = prover.compile(invariant, env)?.into_compiled_policyset();
            prover.queries += 1;
            let holds = prover
                .symcc
                .check_implies_opt(&real, &compiled)
                .await
                .map_err(|e| solver_error(env, invariant.id().as_ref(), &e))?;
            let found = if holds {
                None
            } else {
                prover.queries += 1;
                prover
                    .symcc
                    .check_implies_with_counterexample_opt(&real, &compiled)
                    .await
                    .map_err(|e| solver_error(env, invariant.id().as_ref(), &e))?
            };
            prover.record(invariant.id().as_ref(), &tool, found.as_ref());
        }

        prover.queries += 1;
        let dead = prover
            .symcc
            .check_always_denies_opt(&real)
            .await
            .map_err(|e| solver_error(env, REACHABLE, &e))?;
        match reachable.iter_mut().find(|(t, _)| *t == tool) {
            Some((_, r)) => *r |= !dead,
            None => reachable.push((tool.clone(), !dead)),
        }

        prover
            .never_errors(&policies, env, &actions, &mut never_errors)
            .await?;
    }
    let _ = prover.symcc.solver_mut().clean_up().await;

    let mut checks = prover.checks;
    // Reachability comes right after each tool's invariants.
    for (tool, ok) in reachable {
        let at = checks
            .iter()
            .rposition(|c| c.subject == tool)
            .map_or(checks.len(), |i| i + 1);
        let mut check = Check::new(REACHABLE, &tool);
        check.environments = envs
            .iter()
            .filter(|e| tool_name(e.action()) == tool)
            .count();
        check.failure = (!ok).then(|| {
            format!("no request is ever allowed: every principal type is always denied {tool}")
        });
        checks.insert(at, check);
    }
    for (id, environments, counterexamples) in never_errors {
        let mut check = Check::new(NEVER_ERRORS, &id);
        check.environments = environments;
        check.counterexamples = counterexamples;
        checks.push(check);
    }
    checks.iter_mut().for_each(Check::settle);
    Ok(Report {
        passed: checks.iter().all(|c| c.proved),
        policies: policy_names,
        invariants: invariant_names,
        checks,
        environments: envs.len(),
        queries: prover.queries,
        elapsed: started.elapsed(),
    })
}

/// The invariants (permits only, validated against `schema`) and the policies of `set`, each
/// sorted by id: what both provers (call policies, role policies) check.
pub(super) fn sorted_policies(
    schema: &cedar_policy::Schema,
    set: &cedar_policy::PolicySet,
    invariants: &[PolicyFile],
) -> Result<(Vec<Policy>, Vec<Policy>), ProveError> {
    let inv_set = policy::parse_policies(invariants).map_err(ProveError::Invariants)?;
    let mut inv: Vec<Policy> = inv_set.policies().cloned().collect();
    let forbids: Vec<String> = inv
        .iter()
        .filter(|p| p.effect() == Effect::Forbid)
        .map(|p| format!("invariant `{}` is a forbid: write invariants as permits (what every allowed request satisfies)", p.id()))
        .collect();
    if !forbids.is_empty() {
        return Err(ProveError::Invariants(forbids));
    }
    policy::validate(schema, &inv_set).map_err(ProveError::Invariants)?;
    inv.sort_by_key(|p| p.id().to_string());
    let mut policies: Vec<Policy> = set.policies().cloned().collect();
    policies.sort_by_key(|p| p.id().to_string());
    Ok((inv, policies))
}

struct Prover<'a> {
    symcc: CedarSymCompiler<LocalSolver>,
    schema: &'a Schema,
    /// The symbolic environment of the request environment being checked.
    symenv: Option<SymEnv>,
    checks: Vec<Check>,
    index: HashMap<(String, String), usize>,
    queries: usize,
}

/// Per policy: its id, the environments it was checked in, and its counterexamples.
pub(super) type NeverErrors = Vec<(String, usize, Vec<Counterexample>)>;

impl Prover<'_> {
    /// Makes `env` the request environment being checked, and compiles `set` (`what`, for an
    /// error) in it. The symbolic environment is the one `compile` would derive; built once per
    /// request environment instead of once per policy (it walks the whole schema).
    pub(super) fn enter(
        &mut self,
        set: &cedar_policy::PolicySet,
        env: &RequestEnv,
        what: &str,
    ) -> Result<CompiledPolicySet, ProveError> {
        let symenv = SymEnv::new(self.schema, env).map_err(|e| ProveError::Compile {
            what: describe(env),
            message: e.to_string(),
        })?;
        self.symenv = Some(symenv.clone());
        CompiledPolicySet::compile_with_custom_symenv(set, env, self.schema, symenv).map_err(|e| {
            ProveError::Compile {
                what: format!("{what} for {}", describe(env)),
                message: e.to_string(),
            }
        })
    }

    /// Checks, in `env`, that no policy that applies to it can error (both provers).
    pub(super) async fn never_errors(
        &mut self,
        policies: &[Policy],
        env: &RequestEnv,
        actions: &Entities,
        slots: &mut NeverErrors,
    ) -> Result<(), ProveError> {
        for (p, slot) in policies.iter().zip(slots.iter_mut()) {
            if !applies(p, env, actions) {
                continue;
            }
            let compiled = self.compile(p, env)?;
            self.queries += 1;
            let found = self
                .symcc
                .check_never_errors_with_counterexample_opt(&compiled)
                .await
                .map_err(|e| solver_error(env, NEVER_ERRORS, &e))?;
            slot.1 += 1;
            if let Some(env) = found {
                slot.2.push(counterexample(&env));
            }
        }
        Ok(())
    }

    fn compile(&self, p: &Policy, env: &RequestEnv) -> Result<CompiledPolicy, ProveError> {
        let compiled = match &self.symenv {
            Some(symenv) => {
                CompiledPolicy::compile_with_custom_symenv(p, env, self.schema, symenv.clone())
            }
            None => CompiledPolicy::compile(p, env, self.schema),
        };
        compiled.map_err(|e| ProveError::Compile {
            what: format!("policy `{}` for {}", p.id(), describe(env)),
            message: e.to_string(),
        })
    }

    fn record(&mut self, property: &str, subject: &str, found: Option<&Env>) {
        let key = (property.to_string(), subject.to_string());
        let i = *self.index.entry(key).or_insert_with(|| {
            self.checks.push(Check::new(property, subject));
            self.checks.len() - 1
        });
        let check = &mut self.checks[i];
        check.environments += 1;
        if let Some(env) = found {
            check.counterexamples.push(counterexample(env));
        }
    }
}

/// Whether a policy's scope can match requests of this environment. Invariants and policies
/// constrain principals and resources by type (`is`); an `==`/`in` on a specific entity is
/// treated as matching its type.
fn applies(p: &Policy, env: &RequestEnv, actions: &Entities) -> bool {
    let principal = match p.principal_constraint() {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => &t == env.principal(),
        PrincipalConstraint::Eq(u) => u.type_name() == env.principal(),
        PrincipalConstraint::In(_) => true,
    };
    let action = match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => &a == env.action(),
        ActionConstraint::In(groups) => groups
            .iter()
            .any(|g| g == env.action() || actions.is_ancestor_of(g, env.action())),
    };
    let resource = match p.resource_constraint() {
        ResourceConstraint::Any => true,
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => &t == env.resource(),
        ResourceConstraint::Eq(u) => u.type_name() == env.resource(),
        ResourceConstraint::In(_) => true,
    };
    principal && action && resource
}

fn tool_name(action: &EntityUid) -> String {
    let id = action.id().unescaped();
    tool::catalog::TOOLS
        .iter()
        .find(|t| t.action == id)
        .map_or_else(|| id.to_string(), |t| t.name.to_string())
}

fn describe(env: &RequestEnv) -> String {
    format!(
        "{} × {} × {}",
        env.principal(),
        env.action(),
        env.resource()
    )
}

fn solver_error(env: &RequestEnv, what: &str, e: &impl fmt::Display) -> ProveError {
    ProveError::Solver {
        what: format!("{what} for {}", describe(env)),
        message: e.to_string(),
    }
}

/// Reads the solver's model back as a request a person can check.
fn counterexample(env: &Env) -> Counterexample {
    let request = &env.request;
    let entities = &env.entities;
    let principal = request.principal();
    let resource = request.resource();
    let attr = |uid: Option<&EntityUid>, name: &str| -> Option<EvalResult> {
        entities.get(uid?)?.attr(name)?.ok()
    };
    let scopes = match attr(principal, "scopes") {
        Some(EvalResult::Set(s)) => {
            let mut v: Vec<String> = s.iter().map(plain).collect();
            v.sort();
            v
        }
        _ => Vec::new(),
    };
    let principal_studio = principal.and_then(|p| {
        entities
            .ancestors(p)?
            .find(|a| a.type_name().basename() == "Studio")
            .map(ToString::to_string)
    });
    let studio_tier = attr(resource, "tier").map(|t| plain(&t));
    let arguments = request
        .context()
        .and_then(|c| c.get("input"))
        .map_or(serde_json::Value::Null, |v| json(&v));
    Counterexample {
        principal_type: principal.map_or_else(String::new, |p| p.type_name().to_string()),
        principal_id: principal.map_or_else(String::new, |p| p.id().unescaped().to_string()),
        principal_studio,
        scopes,
        tool: request
            .action()
            .map_or_else(String::new, |a| a.id().unescaped().to_string()),
        resource: resource.map_or_else(String::new, ToString::to_string),
        studio_tier,
        arguments,
        role: attr(principal, "role").map(|r| plain(&r)),
    }
}

/// An entity's id (an enum value like a scope or a tier) or the value as Cedar prints it.
fn plain(v: &EvalResult) -> String {
    match v {
        EvalResult::EntityUid(u) => u.id().unescaped().to_string(),
        EvalResult::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json(v: &EvalResult) -> serde_json::Value {
    use serde_json::Value;
    match v {
        EvalResult::Bool(b) => Value::Bool(*b),
        EvalResult::Long(i) => Value::from(*i),
        EvalResult::String(s) => Value::String(s.clone()),
        EvalResult::EntityUid(u) => Value::String(u.to_string()),
        EvalResult::Set(s) => Value::Array(s.iter().map(json).collect()),
        EvalResult::Record(r) => {
            Value::Object(r.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
        EvalResult::ExtensionValue(s) => Value::String(s.clone()),
    }
}
