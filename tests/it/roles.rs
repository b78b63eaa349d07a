//! The role policies (`policies/roles/`) as the `flowgate policy prove` command proves them:
//! the shipped ones prove every role invariant, and a copy that lets staff grant revenue is
//! caught with a counterexample naming the role. Driven through the real command, so the
//! prover's home (library or command) does not matter. Needs cvc5, like tests/it/prove.rs.

use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_flowgate");

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
        println!("SKIPPED: the SMT solver `{bin}` is not installed (apt-get install cvc5)");
    }
    ok
}

/// Copies `from` into `to`, recursively, applying `edit` to each role policy file.
fn copy(from: &Path, to: &Path, edit: &dyn Fn(&str, String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy(&path, &target, edit);
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            std::fs::write(target, edit(name, text)).unwrap();
        }
    }
}

fn prove(dir: Option<&Path>) -> (bool, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["policy", "prove"]);
    if let Some(d) = dir {
        cmd.arg(d);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_shipped_role_policies_prove_every_role_invariant() {
    if !solver_available() {
        return;
    }
    let (ok, out) = prove(None);
    assert!(ok, "{out}");
    let roles = out.split("Role policies (roles/):").nth(1).expect(&out);
    for line in [
        "PROVED  roles.only-owners-grant-money             grant:financials:read",
        "PROVED  roles.only-owners-grant-money             grant:expenses:write",
        "PROVED  roles.only-owners-and-admins-manage-keys  manage_keys",
        "PROVED  roles.staff-writes-only-bookings          grant:members:write",
        "PROVED  roles.own-studio-only                     grant:classes:read",
        "PROVED  reachable                                 grant:financials:read",
        "PROVED  never-errors                              role.staff-operations",
    ] {
        assert!(roles.contains(line), "missing `{line}` in\n{roles}");
    }
    assert!(!roles.contains("FAILED"), "{roles}");
}

#[test]
fn a_role_policy_that_lets_staff_grant_revenue_or_manage_keys_is_caught() {
    if !solver_available() {
        return;
    }
    let root = crate::harness::crate_dir().join("policies");
    let dir = tempfile::tempdir().unwrap();
    copy(&root, dir.path(), &|name, text| {
        if name != "roles.cedar" || !text.contains("role.staff-operations") {
            return text;
        }
        text.replace(
            r#"    Roles::Action::"grant:audit:read""#,
            r#"    Roles::Action::"grant:audit:read",
    Roles::Action::"grant:financials:read",
    Roles::Action::"manage_keys""#,
        )
    });
    let (ok, out) = prove(Some(dir.path()));
    assert!(!ok, "the broken copy passed:\n{out}");
    let roles = out.split("Role policies (roles/):").nth(1).expect(&out);
    assert!(
        roles.contains("FAILED  roles.only-owners-grant-money             grant:financials:read"),
        "{roles}"
    );
    assert!(
        roles.contains("FAILED  roles.only-owners-and-admins-manage-keys  manage_keys"),
        "{roles}"
    );
    assert!(roles.contains("with role staff"), "{roles}");
    assert!(out.contains("checks FAILED"), "{out}");
}
