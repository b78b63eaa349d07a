//! The sign-in, consent and error pages: server-rendered HTML that works without JavaScript.
//!
//! Contract: every page is an askama template in `templates/` (checked when flowgate compiles,
//! every value escaped unless a template says otherwise) extending one layout, `base.html`,
//! with one stylesheet, `templates/flowgate.css`, served at [`STYLESHEET_PATH`]. One view
//! struct per page; the handlers in `oauth` gather the data and pick the view.
//!
//! The consent page groups the requested scopes by the resource they are about (`bookings`
//! for `bookings:read` and `bookings:write`), with one None / View / View & change choice each
//! (`access.<resource>` = `none`, `read`, `write`); a choice above the user's role is disabled
//! and the row says why.

use std::collections::BTreeSet;

use askama::Template;
use flowgate_codegen::cedar::scope_resource;

use crate::tool::catalog::SCOPES;

/// The one stylesheet of the pages.
pub const STYLESHEET: &str = include_str!("../../templates/flowgate.css");
/// Where the pages load it from.
pub const STYLESHEET_PATH: &str = "/assets/flowgate.css";

/// A template as HTML; a template that fails to render (it cannot, short of a formatting
/// error in a value) is logged and answered with a plain page.
pub fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page failed to render");
        "<!doctype html><title>flowgate</title><p>This page could not be shown. Try again.</p>"
            .into()
    })
}

/// The application asking, as the pages show it.
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'a> {
    /// The name it registered or published (never trusted for anything but display).
    pub name: &'a str,
    /// The host its redirect URI sends the person back to.
    pub host: &'a str,
    /// For a client described by a metadata document: the host that published it.
    pub verified_by: Option<&'a str>,
}

/// The sign-in step of an authorization.
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignIn<'a> {
    pub flow: &'a str,
    pub csrf: &'a str,
    pub client: ClientView<'a>,
    pub error: Option<&'a str>,
    pub email: &'a str,
}

/// A page for an error that cannot be sent back to the client (unknown client, bad redirect
/// URI, expired flow).
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub message: &'a str,
}

/// The error page as HTML.
pub fn error(message: &str) -> String {
    render(&ErrorPage { message })
}

/// The consent step.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub flow: &'a str,
    pub csrf: &'a str,
    pub client: ClientView<'a>,
    pub user_name: &'a str,
    pub user_email: &'a str,
    pub studio: &'a str,
    /// The user's role, as a person reads it.
    pub role: &'a str,
    /// Why the last answer was not accepted.
    pub error: Option<String>,
    pub rows: Vec<ResourceRow>,
    /// Why some choices are greyed out (the distinct reasons of the rows).
    pub limit: Option<String>,
}

/// The distinct reasons of the rows, in order, as one sentence for the page.
pub fn limit(rows: &[ResourceRow]) -> Option<String> {
    let mut reasons: Vec<&str> = Vec::new();
    for r in rows.iter().filter_map(|r| r.reason.as_deref()) {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    (!reasons.is_empty()).then(|| format!("Greyed out for your role: {}", reasons.join(" ")))
}

/// One resource of the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    /// `bookings`: the form field is `access.bookings`.
    pub key: String,
    pub title: String,
    pub choices: Vec<Choice>,
    /// What the requested scopes allow, from the manifest's descriptions.
    pub description: String,
    /// Which choice is above the user's role (short, shown in the row).
    pub note: Option<&'static str>,
    /// Why, as the role policies say it.
    pub reason: Option<String>,
}

/// One radio button of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    /// `none`, `read` or `write`.
    pub value: &'static str,
    pub label: &'static str,
    /// The scopes it grants, space-separated (shown on hover).
    pub scopes: String,
    pub checked: bool,
    pub disabled: bool,
}

/// The scopes a resource choice grants, within what was requested; `None` for a value the
/// form cannot have sent.
pub fn choice_scopes(
    resource: &str,
    value: &str,
    requested: &BTreeSet<String>,
) -> Option<BTreeSet<String>> {
    let read = format!("{resource}:read");
    let write = format!("{resource}:write");
    let wanted: &[&String] = match value {
        "none" => &[],
        "read" => &[&read],
        "write" => &[&read, &write],
        _ => return None,
    };
    Some(
        wanted
            .iter()
            .filter(|s| requested.contains(s.as_str()))
            .map(|s| s.to_string())
            .collect(),
    )
}

fn scope_description(scope: &str) -> &'static str {
    SCOPES
        .iter()
        .find(|d| d.name == scope)
        .map_or("", |d| d.description)
}

/// A resource as the pages title it (`Audit log`, `Classes`).
pub fn title(resource: &str) -> String {
    if resource == "audit" {
        return "Audit log".into();
    }
    let mut c = resource.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The consent page's rows: one per resource with a requested scope, in the catalog's order.
/// `ticked` is what is chosen now; `refused(scope)` says why the user may not grant a scope
/// (`None`: they may).
pub fn resource_rows(
    requested: &BTreeSet<String>,
    ticked: &BTreeSet<String>,
    refused: impl Fn(&str) -> Option<String>,
) -> Vec<ResourceRow> {
    let mut resources: Vec<&str> = requested.iter().map(|s| scope_resource(s)).collect();
    resources.dedup();
    let mut rows = Vec::new();
    for r in resources {
        let read = format!("{r}:read");
        let write = format!("{r}:write");
        let (has_read, has_write) = (requested.contains(&read), requested.contains(&write));
        let read_refused = has_read.then(|| refused(&read)).flatten();
        let write_refused = has_write.then(|| refused(&write)).flatten();
        let current = if ticked.contains(&write) {
            "write"
        } else if ticked.contains(&read) {
            "read"
        } else {
            "none"
        };
        let mut choices = vec![("none", "None", false)];
        if has_read {
            choices.push(("read", "View", read_refused.is_some()));
        }
        if has_write {
            let label = if has_read { "View & change" } else { "Change" };
            choices.push((
                "write",
                label,
                read_refused.is_some() || write_refused.is_some(),
            ));
        }
        // A choice above the role is never the checked one.
        let current = choices
            .iter()
            .find(|(v, _, off)| *v == current && !off)
            .map_or("none", |(v, _, _)| *v);
        let choices = choices
            .into_iter()
            .map(|(value, label, disabled)| Choice {
                id: format!("access-{r}-{value}"),
                value,
                label,
                scopes: choice_scopes(r, value, requested)
                    .map(|s| s.into_iter().collect::<Vec<_>>().join(" "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "nothing".into()),
                checked: value == current,
                disabled,
            })
            .collect();
        // What it gives, as far as the user may give it: a change above the role is not
        // described, the row says it is above the role instead (one screen on a laptop).
        let mut description = String::new();
        if has_read {
            description.push_str(scope_description(&read));
        }
        if has_write && read_refused.is_none() && write_refused.is_none() {
            if !description.is_empty() {
                description.push_str(" Change: ");
            }
            description.push_str(scope_description(&write));
        }
        let note = match (&read_refused, &write_refused) {
            (Some(_), _) => Some("Above your role."),
            (None, Some(_)) if has_read => Some("Changing is above your role."),
            (None, Some(_)) => Some("Above your role."),
            (None, None) => None,
        };
        rows.push(ResourceRow {
            key: r.to_string(),
            title: title(r),
            choices,
            description,
            note,
            reason: read_refused.or(write_refused),
        });
    }
    rows
}

/// The scopes of a quick choice, within what was requested.
pub fn preset(name: &str, requested: &BTreeSet<String>) -> BTreeSet<String> {
    requested
        .iter()
        .filter(|s| match name {
            "read-only" => s.ends_with(":read"),
            "bookings" => matches!(
                s.as_str(),
                "bookings:read"
                    | "bookings:write"
                    | "schedule:read"
                    | "classes:read"
                    | "members:read"
            ),
            _ => true,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &[&str]) -> BTreeSet<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scopes_are_grouped_by_resource_with_the_choice_each_allows() {
        let requested = set(&[
            "classes:read",
            "classes:write",
            "coupons:write",
            "financials:read",
        ]);
        let ticked = set(&["classes:read", "coupons:write"]);
        let rows = resource_rows(&requested, &ticked, |s| {
            (s == "financials:read").then(|| "not for staff".to_string())
        });
        type Shape<'a> = (&'a str, Vec<(&'a str, bool, bool)>, Option<&'a str>);
        let shape: Vec<Shape<'_>> = rows
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.choices
                        .iter()
                        .map(|c| (c.label, c.checked, c.disabled))
                        .collect(),
                    r.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    "classes",
                    vec![
                        ("None", false, false),
                        ("View", true, false),
                        ("View & change", false, false)
                    ],
                    None
                ),
                (
                    "coupons",
                    vec![("None", false, false), ("Change", true, false)],
                    None
                ),
                (
                    "financials",
                    vec![("None", true, false), ("View", false, true)],
                    Some("not for staff")
                ),
            ]
        );
        assert_eq!(rows[0].choices[2].scopes, "classes:read classes:write");
    }

    #[test]
    fn a_choice_grants_only_requested_scopes() {
        let requested = set(&["coupons:write", "classes:read"]);
        assert_eq!(
            choice_scopes("coupons", "write", &requested),
            Some(set(&["coupons:write"]))
        );
        assert_eq!(
            choice_scopes("classes", "write", &requested),
            Some(set(&["classes:read"]))
        );
        assert_eq!(choice_scopes("classes", "none", &requested), Some(set(&[])));
        assert_eq!(choice_scopes("classes", "all", &requested), None);
    }

    #[test]
    fn values_are_escaped() {
        let html = render(&SignIn {
            flow: "f",
            csrf: "c",
            client: ClientView {
                name: "<script>alert(1)</script>",
                host: "a\"b",
                verified_by: None,
            },
            error: None,
            email: "x@y",
        });
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }
}
