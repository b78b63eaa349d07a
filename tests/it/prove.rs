//! `flowgate policy prove`: the shipped policies prove every invariant, and broken copies of
//! them produce the counterexample an auditor needs. The prover is part of the `flowgate`
//! command, not of the library, so these tests run the command and read its `--json` report.
//! Needs the SMT solver `cvc5`; without it the tests skip with a message, except in CI (`CI`
//! set), where they fail.

use std::path::Path;
use std::process::Output;

use flowgate::tool::{Access, catalog};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_flowgate");
const INVARIANTS_DIR: &str = "invariants";
const REACHABLE: &str = "reachable";
const NEVER_ERRORS: &str = "never-errors";

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

/// Runs `flowgate policy prove [DIR] [--json]`.
fn run(dir: Option<&Path>, json: bool) -> Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["policy", "prove"]);
    if let Some(dir) = dir {
        cmd.arg(dir);
    }
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

/// The JSON report of `flowgate policy prove [DIR] --json`; checks that the exit status says
/// whether every check was proved.
fn prove(dir: Option<&Path>) -> Report {
    let out = run(dir, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON document: {stdout}\n{stderr}"
    );
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    let report = Report(json);
    let failed = report.failed().len();
    assert_eq!(report.passed(), failed == 0, "{stdout}");
    assert_eq!(out.status.success(), report.passed(), "{stderr}");
    if failed > 0 {
        assert!(
            stderr.contains(&format!(
                "{failed} of {} checks FAILED",
                report.checks().len()
            )),
            "{stderr}"
        );
    }
    report
}

/// The text report of `flowgate policy prove DIR`, for a set that fails.
fn prove_text(dir: &Path) -> String {
    let out = run(Some(dir), false);
    assert!(!out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `flowgate policy prove --json`'s report.
struct Report(Value);

impl Report {
    fn passed(&self) -> bool {
        self.0["passed"].as_bool().unwrap()
    }

    fn checks(&self) -> Vec<Check<'_>> {
        self.0["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(Check)
            .collect()
    }

    fn failed(&self) -> Vec<Check<'_>> {
        self.checks().into_iter().filter(|c| !c.proved()).collect()
    }

    fn check(&self, property: &str, subject: &str) -> Option<Check<'_>> {
        self.checks()
            .into_iter()
            .find(|c| c.property() == property && c.subject() == subject)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.failed() {
            writeln!(f, "FAILED {}", c.0)?;
        }
        write!(f, "{} checks", self.checks().len())
    }
}

#[derive(Clone, Copy)]
struct Check<'a>(&'a Value);

impl<'a> Check<'a> {
    fn property(&self) -> &'a str {
        self.0["property"].as_str().unwrap()
    }

    fn subject(&self) -> &'a str {
        self.0["subject"].as_str().unwrap()
    }

    /// Proved, and consistent: no counterexample and no failure.
    fn proved(&self) -> bool {
        let proved = self.0["proved"].as_bool().unwrap();
        let clean = self.counterexamples().is_empty() && self.0["failure"].is_null();
        assert_eq!(proved, clean, "{}", self.0);
        proved
    }

    fn environments(&self) -> u64 {
        self.0["environments"].as_u64().unwrap()
    }

    fn counterexamples(&self) -> &'a [Value] {
        self.0["counterexamples"].as_array().unwrap()
    }
}

/// A copy of `policies/` (policies and invariants), with `edit` applied to each policy file:
/// `None` drops the file.
fn broken_copy(edit: impl Fn(&str, String) -> Option<String>) -> tempfile::TempDir {
    let src = crate::harness::crate_dir().join("policies");
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join(INVARIANTS_DIR);
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
    for entry in std::fs::read_dir(src.join(INVARIANTS_DIR)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, inv.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn shipped_policies_prove_every_invariant_for_every_tool() {
    if !solver_available() {
        return;
    }
    let report = prove(None);
    assert!(report.passed(), "{report}");
    for t in catalog::TOOLS {
        let has = |property: &str| report.check(property, t.name).is_some_and(|c| c.proved());
        assert!(has(REACHABLE), "{} is not proved reachable", t.name);
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
        assert_eq!(check.environments(), 2, "{invariant}");
        assert!(check.proved(), "{invariant}");
    }
    // Every policy in force, the generated scope guards included, is proved never to error.
    let never_errors = report
        .checks()
        .iter()
        .filter(|c| c.property() == NEVER_ERRORS)
        .count();
    let policies = flowgate::authz::Authz::shipped()
        .unwrap()
        .policy_ids()
        .len();
    assert_eq!(never_errors, policies);
    // The built-in invariants are every file of policies/invariants/ (plus the generated ones).
    let dir = crate::harness::crate_dir()
        .join("policies")
        .join(INVARIANTS_DIR);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .map(|p| {
            format!(
                "policies/{INVARIANTS_DIR}/{}",
                p.file_name().unwrap().to_str().unwrap()
            )
        })
        .collect();
    on_disk.sort();
    on_disk.push("(generated) least-privilege invariants".into());
    assert_eq!(
        report.0["invariants"],
        serde_json::json!(on_disk),
        "add every file of policies/invariants/ to SHIPPED_INVARIANTS in src/cli/prove.rs"
    );
}

#[test]
fn without_the_tier_gate_a_free_studio_runs_a_write_tool() {
    if !solver_available() {
        return;
    }
    let dir = broken_copy(|name, text| (name != "tiers.cedar").then_some(text));
    let report = prove(Some(dir.path()));
    assert!(!report.passed());
    let writes: Vec<&str> = catalog::TOOLS
        .iter()
        .filter(|t| t.access == Access::Write)
        .map(|t| t.name)
        .collect();
    let failed = report.failed();
    let free_write = failed
        .iter()
        .filter(|c| c.property().starts_with("tier.") && writes.contains(&c.subject()))
        .flat_map(|c| c.counterexamples())
        .find(|cex| cex["studio_tier"] == "free")
        .unwrap_or_else(|| panic!("no tier counterexample with a free studio:\n{report}"));
    assert!(writes.contains(&free_write["tool"].as_str().unwrap()));
    assert!(
        free_write["resource"]
            .as_str()
            .unwrap()
            .starts_with("Flow::Studio::")
    );
    // Only the tier invariants break: the rest still holds.
    for c in &failed {
        assert!(
            c.property().starts_with("tier."),
            "unexpected failure:\n{report}"
        );
    }
}

#[test]
fn a_weakened_coupon_limit_is_caught_with_a_coupon_between_51_and_60_percent() {
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
    let report = prove(Some(dir.path()));
    let fails = report.failed();
    assert_eq!(
        fails.len(),
        1,
        "only the coupon invariant breaks:\n{report}"
    );
    let check = fails[0];
    assert_eq!(check.property(), "coupons.at-most-50-percent-off");
    assert_eq!(check.subject(), "create_coupon");
    assert!(!check.counterexamples().is_empty());
    for cex in check.counterexamples() {
        let off = cex["arguments"]["percent_off"]
            .as_i64()
            .unwrap_or_else(|| panic!("no percent_off in {cex}"));
        assert!((51..=60).contains(&off), "percent_off {off} in {cex}");
        assert_eq!(cex["tool"], "create_coupon");
        // The tier gate still holds, so the studio in the counterexample is on Pro.
        assert_eq!(cex["studio_tier"], "pro", "{cex}");
    }
    let text = prove_text(dir.path());
    assert!(
        text.contains("FAILED  coupons.at-most-50-percent-off"),
        "{text}"
    );
    assert!(text.contains("\"percent_off\":5"), "{text}");
}

/// The fixed-amount side of the coupon promise: with the cap raised to 50.00, or gone, the
/// prover finds a fixed-amount coupon above 10.00 that the policies allow.
#[test]
fn a_weakened_or_missing_fixed_amount_cap_is_caught_with_a_fixed_amount_counterexample() {
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
    for (dir, highest) in [(&weakened, 5000), (&removed, i64::MAX)] {
        let report = prove(Some(dir.path()));
        let fails = report.failed();
        assert_eq!(
            fails.len(),
            1,
            "only the fixed-amount invariant breaks:\n{report}"
        );
        let check = fails[0];
        assert_eq!(check.property(), "coupons.fixed-amount-at-most-1000");
        assert_eq!(check.subject(), "create_coupon");
        assert_eq!(check.counterexamples().len(), 2, "one per principal type");
        for cex in check.counterexamples() {
            let amount = cex["arguments"]["amount_off_cents"]
                .as_i64()
                .unwrap_or_else(|| panic!("no amount_off_cents in {cex}"));
            assert!(
                (1001..=highest).contains(&amount),
                "amount_off_cents {amount} in {cex}"
            );
            assert_eq!(cex["tool"], "create_coupon");
            assert_eq!(cex["studio_tier"], "pro", "{cex}");
            // The percent rule still holds in the counterexample.
            assert!(
                cex["arguments"]["percent_off"]
                    .as_i64()
                    .is_none_or(|p| p <= 50),
                "{cex}"
            );
        }
    }
    // The text report names the invariant and shows the amount (one run: the rendering is the
    // same for both copies).
    let text = prove_text(weakened.path());
    assert!(
        text.contains("FAILED  coupons.fixed-amount-at-most-1000"),
        "{text}"
    );
    assert!(text.contains("\"amount_off_cents\":"), "{text}");
}

/// Refused before the solver starts: runs without cvc5 too.
#[test]
fn a_forbid_in_the_invariants_is_refused() {
    let dir = broken_copy(|_, text| Some(text));
    std::fs::write(
        dir.path().join(INVARIANTS_DIR).join("bad.cedar"),
        "@id(\"bad\")\n@reason(\"no\")\nforbid (principal, action, resource);\n",
    )
    .unwrap();
    let out = run(Some(dir.path()), true);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "no report when the prover cannot run"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a forbid"), "{err}");
}
