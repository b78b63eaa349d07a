//! `flowgate policy prove`: the shipped policies prove every invariant, and broken copies of
//! them produce the counterexample an auditor needs. Needs the SMT solver `cvc5`; without it the
//! tests skip with a message, except in CI (`CI` set), where they fail.

use std::path::Path;

use flowgate::prove::{self, Check, Report};
use flowgate::tool::{Access, catalog};

/// Whether cvc5 can run; panics in CI when it cannot.
fn solver_available() -> bool {
    let bin = std::env::var("CVC5").unwrap_or_else(|_| "cvc5".into());
    let ok = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the SMT solver `{bin}` cannot run: install cvc5 (.ci/run does)"
        );
        println!(
            "SKIPPED: the SMT solver `{bin}` is not installed (apt-get install cvc5); the prover tests need it"
        );
    }
    ok
}

/// A copy of `policies/` (policies and invariants), with `edit` applied to each policy file:
/// `None` drops the file.
fn broken_copy(edit: impl Fn(&str, String) -> Option<String>) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join(prove::INVARIANTS_DIR);
    std::fs::create_dir(&inv).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "cedar") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            if let Some(text) = edit(&name, text) {
                std::fs::write(dir.path().join(&name), text).unwrap();
            }
        }
    }
    for entry in std::fs::read_dir(src.join(prove::INVARIANTS_DIR)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, inv.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn failed(report: &Report) -> Vec<&Check> {
    report.failed().collect()
}

#[tokio::test]
async fn shipped_policies_prove_every_invariant_for_every_tool() {
    if !solver_available() {
        return;
    }
    let report = prove::prove_shipped().await.unwrap();
    println!("{report}");
    assert!(report.passed(), "failed: {:#?}", failed(&report));
    for t in catalog::TOOLS {
        let has = |property: &str| report.check(property, t.name).is_some_and(Check::proved);
        assert!(has(prove::REACHABLE), "{} is not proved reachable", t.name);
        if t.public {
            assert!(has("tenant.directory-is-public-only"), "{}", t.name);
        } else {
            assert!(has("tenant.isolation"), "{} lacks tenant isolation", t.name);
        }
        if t.tier == "pro" {
            assert!(
                has("tier.pro-tools-need-pro"),
                "{} lacks the tier proof",
                t.name
            );
        }
        if t.access == Access::Write {
            assert!(has("tier.free-read-only"), "{}", t.name);
            assert!(has("least-privilege.read-never-writes"), "{}", t.name);
        }
        if let Some(scope) = t.scope {
            assert!(
                has(&format!("least-privilege.{scope}")),
                "{} lacks the least-privilege proof",
                t.name
            );
        }
    }
    for invariant in [
        "coupons.at-most-50-percent-off",
        "coupons.fixed-amount-at-most-1000",
    ] {
        let check = report
            .check(invariant, "create_coupon")
            .unwrap_or_else(|| panic!("{invariant} was not checked"));
        // Both principal types (secret keys and OAuth grants).
        assert_eq!(check.environments, 2, "{invariant}");
        assert!(check.proved(), "{invariant}");
    }
    // Every policy in force, the generated scope guards included, is proved never to error.
    let never_errors = report
        .checks
        .iter()
        .filter(|c| c.property == prove::NEVER_ERRORS)
        .count();
    let policies = flowgate::authz::Authz::shipped()
        .unwrap()
        .policy_ids()
        .len();
    assert_eq!(never_errors, policies);
}

#[tokio::test]
async fn without_the_tier_gate_a_free_studio_runs_a_write_tool() {
    if !solver_available() {
        return;
    }
    let dir = broken_copy(|name, text| (name != "tiers.cedar").then_some(text));
    let report = prove::prove_dir(dir.path()).await.unwrap();
    assert!(!report.passed());
    let writes: Vec<&str> = catalog::TOOLS
        .iter()
        .filter(|t| t.access == Access::Write)
        .map(|t| t.name)
        .collect();
    let free_write = report
        .failed()
        .filter(|c| c.property.starts_with("tier.") && writes.contains(&c.subject.as_str()))
        .flat_map(|c| c.counterexamples.iter())
        .find(|cex| cex.studio_tier.as_deref() == Some("free"))
        .unwrap_or_else(|| panic!("no tier counterexample with a free studio:\n{report}"));
    assert!(writes.contains(&free_write.tool.as_str()));
    assert!(free_write.resource.starts_with("Flow::Studio::"));
    // Only the tier invariants break: the rest still holds.
    for c in report.failed() {
        assert!(
            c.property.starts_with("tier."),
            "unexpected failure:\n{report}"
        );
    }
}

#[tokio::test]
async fn a_weakened_coupon_limit_is_caught_with_a_coupon_between_51_and_60_percent() {
    if !solver_available() {
        return;
    }
    let dir = broken_copy(|name, text| {
        Some(if name == "coupons.cedar" {
            assert!(text.contains("percent_off > 50"));
            text.replace("percent_off > 50", "percent_off > 60")
        } else {
            text
        })
    });
    let report = prove::prove_dir(dir.path()).await.unwrap();
    let fails = failed(&report);
    assert_eq!(
        fails.len(),
        1,
        "only the coupon invariant breaks:\n{report}"
    );
    let check = fails[0];
    assert_eq!(check.property, "coupons.at-most-50-percent-off");
    assert_eq!(check.subject, "create_coupon");
    assert!(!check.counterexamples.is_empty());
    for cex in &check.counterexamples {
        let off = cex.arguments["percent_off"]
            .as_i64()
            .unwrap_or_else(|| panic!("no percent_off in {cex}"));
        assert!((51..=60).contains(&off), "percent_off {off} in {cex}");
        assert_eq!(cex.tool, "create_coupon");
        // The tier gate still holds, so the studio in the counterexample is on Pro.
        assert_eq!(cex.studio_tier.as_deref(), Some("pro"), "{cex}");
    }
    let text = report.to_string();
    assert!(
        text.contains("FAILED  coupons.at-most-50-percent-off"),
        "{text}"
    );
    assert!(text.contains("\"percent_off\":5"), "{text}");
}

/// The fixed-amount side of the coupon promise: with the cap raised to 50.00, or gone, the
/// prover finds a fixed-amount coupon above 10.00 that the policies allow.
#[tokio::test]
async fn a_weakened_or_missing_fixed_amount_cap_is_caught_with_a_fixed_amount_counterexample() {
    if !solver_available() {
        return;
    }
    let rule = "amount_off_cents > 1000";
    let weakened = broken_copy(|name, text| {
        Some(if name == "coupons.cedar" {
            assert!(text.contains(rule));
            text.replace(rule, "amount_off_cents > 5000")
        } else {
            text
        })
    });
    // Removed: the whole policy, from its `@id` to the end of the file (it is the last one).
    let removed = broken_copy(|name, text| {
        Some(if name == "coupons.cedar" {
            let at = text.find("@id(\"coupons.max-fixed-amount\")").unwrap();
            text[..at].to_string()
        } else {
            text
        })
    });
    for (dir, highest) in [(weakened, 5000), (removed, i64::MAX)] {
        let report = prove::prove_dir(dir.path()).await.unwrap();
        let fails = failed(&report);
        assert_eq!(
            fails.len(),
            1,
            "only the fixed-amount invariant breaks:\n{report}"
        );
        let check = fails[0];
        assert_eq!(check.property, "coupons.fixed-amount-at-most-1000");
        assert_eq!(check.subject, "create_coupon");
        assert_eq!(check.counterexamples.len(), 2, "one per principal type");
        for cex in &check.counterexamples {
            let amount = cex.arguments["amount_off_cents"]
                .as_i64()
                .unwrap_or_else(|| panic!("no amount_off_cents in {cex}"));
            assert!(
                (1001..=highest).contains(&amount),
                "amount_off_cents {amount} in {cex}"
            );
            assert_eq!(cex.tool, "create_coupon");
            assert_eq!(cex.studio_tier.as_deref(), Some("pro"), "{cex}");
            // The percent rule still holds in the counterexample.
            assert!(
                cex.arguments["percent_off"]
                    .as_i64()
                    .is_none_or(|p| p <= 50),
                "{cex}"
            );
        }
        let text = report.to_string();
        assert!(
            text.contains("FAILED  coupons.fixed-amount-at-most-1000"),
            "{text}"
        );
        assert!(text.contains("\"amount_off_cents\":"), "{text}");
    }
}

#[test]
fn the_shipped_invariants_are_the_invariants_folder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(prove::INVARIANTS_DIR);
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    on_disk.sort();
    let shipped: Vec<(String, String)> = prove::SHIPPED_INVARIANTS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(
        shipped, on_disk,
        "add every file of policies/invariants/ to prove::SHIPPED_INVARIANTS"
    );
}

#[tokio::test]
async fn a_forbid_in_the_invariants_is_refused() {
    let dir = broken_copy(|_, text| Some(text));
    std::fs::write(
        dir.path().join(prove::INVARIANTS_DIR).join("bad.cedar"),
        "@id(\"bad\")\n@reason(\"no\")\nforbid (principal, action, resource);\n",
    )
    .unwrap();
    let err = prove::prove_dir(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("is a forbid"), "{err}");
}
