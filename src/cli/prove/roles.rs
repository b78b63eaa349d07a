//! `flowgate policy prove`, the role policies: what a studio user may grant and do
//! (`policies/roles/*.cedar`, [`flowgate::roles`]) against `policies/roles/invariants/*.cedar`
//! ("a staff user can never grant `financials:read`", "only owners and admins manage keys").
//!
//! The same checks as the call policies, over the roles schema's request environments (one per
//! action: `grant:<scope>` and the settings actions): every invariant that applies is implied,
//! every action is allowed to someone (reachable), no policy can error. A counterexample names
//! the user's role.

use std::path::Path;
use std::time::Instant;

use cedar_policy::RequestEnv;
use cedar_policy_symcc::CedarSymCompiler;
use cedar_policy_symcc::solver::LocalSolver;
use flowgate_codegen::policy::{self, PolicyFile};

use super::{
    Check, INVARIANTS_DIR, NEVER_ERRORS, NeverErrors, ProveError, Prover, REACHABLE, Report,
    applies, solver_error, sorted_policies,
};
use flowgate::authz::PolicyError;
use flowgate::roles::{ROLES_SCHEMA, SHIPPED_ROLE_POLICIES};

/// The role invariant files shipped with the binary; a test checks this list against the folder.
pub const SHIPPED_ROLE_INVARIANTS: &[(&str, &str)] = &[(
    "roles.cedar",
    include_str!("../../../policies/roles/invariants/roles.cedar"),
)];

/// Proves the built-in role policies against the built-in role invariants.
pub async fn prove_shipped() -> Result<Report, ProveError> {
    let files = |list: &[(&str, &str)], dir: &str| {
        list.iter()
            .map(|(name, text)| PolicyFile {
                name: format!("{dir}/{name}"),
                text: (*text).to_string(),
            })
            .collect()
    };
    prove_files(
        files(SHIPPED_ROLE_POLICIES, "policies/roles"),
        files(SHIPPED_ROLE_INVARIANTS, "policies/roles/invariants"),
    )
    .await
}

/// Proves `dir/*.cedar` (role policies) against `dir/invariants/*.cedar`.
pub async fn prove_dir(dir: &Path) -> Result<Report, ProveError> {
    let policies = policy::read_dir(dir).map_err(PolicyError)?;
    let invariants = policy::read_dir(&dir.join(INVARIANTS_DIR)).map_err(ProveError::Invariants)?;
    prove_files(policies, invariants).await
}

/// Proves role policy files against invariant files, both validated against the roles schema.
pub async fn prove_files(
    policies: Vec<PolicyFile>,
    invariants: Vec<PolicyFile>,
) -> Result<Report, ProveError> {
    let started = Instant::now();
    let policy_names: Vec<String> = policies.iter().map(|f| f.name.clone()).collect();
    let invariant_names: Vec<String> = invariants.iter().map(|f| f.name.clone()).collect();
    let (schema, set) = policy::compile(ROLES_SCHEMA, &policies).map_err(PolicyError)?;
    let (inv, policies) = sorted_policies(&schema, &set, &invariants)?;

    let actions = schema.action_entities().map_err(|e| ProveError::Compile {
        what: "the roles schema's actions".into(),
        message: e.to_string(),
    })?;
    let mut envs: Vec<RequestEnv> = schema.request_envs().collect();
    envs.sort_by_key(|e| e.action().to_string());

    let solver = LocalSolver::cvc5().map_err(|e| ProveError::SolverMissing {
        solver: std::env::var("CVC5").unwrap_or_else(|_| "cvc5".into()),
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
        index: std::collections::HashMap::new(),
        queries: 0,
    };
    let mut never_errors: NeverErrors = policies
        .iter()
        .map(|p| (p.id().to_string(), 0, Vec::new()))
        .collect();
    let mut reachable: Vec<Check> = Vec::new();

    for env in &envs {
        let action = env.action().id().unescaped().to_string();
        let real = prover.enter(&set, env, "the role policies")?;
        for invariant in inv.iter().filter(|p| applies(p, env, &actions)) {
            let compiled = prover.compile(invariant, env)?.into_compiled_policyset();
            prover.queries += 1;
            let found = prover
                .symcc
                .check_implies_with_counterexample_opt(&real, &compiled)
                .await
                .map_err(|e| solver_error(env, invariant.id().as_ref(), &e))?;
            prover.record(invariant.id().as_ref(), &action, found.as_ref());
        }
        prover.queries += 1;
        let dead = prover
            .symcc
            .check_always_denies_opt(&real)
            .await
            .map_err(|e| solver_error(env, REACHABLE, &e))?;
        let mut check = Check::new(REACHABLE, &action);
        check.environments = 1;
        check.failure = dead.then(|| format!("no role may ever {action}: every user is denied"));
        check.settle();
        reachable.push(check);
        prover
            .never_errors(&policies, env, &actions, &mut never_errors)
            .await?;
    }
    let _ = prover.symcc.solver_mut().clean_up().await;

    let mut checks = prover.checks;
    for check in &mut checks {
        check.settle();
    }
    checks.extend(reachable);
    for (id, environments, counterexamples) in never_errors {
        let mut check = Check::new(NEVER_ERRORS, &id);
        check.environments = environments;
        check.counterexamples = counterexamples;
        check.settle();
        checks.push(check);
    }
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
