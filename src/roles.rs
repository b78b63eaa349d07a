//! Roles: what a studio user may grant to a connection and do on the settings pages, decided
//! by the role policies (`policies/roles/*.cedar`), a Cedar policy set of its own.
//!
//! Contract: the studio platform says a user's role when they sign in (`owner`, `admin`,
//! `staff`). Every question ("may this user grant `financials:read`?", "may they manage
//! keys?") is one Cedar decision on `Roles::User` (with its role, a member of its studio)
//! asking for a `Roles::Action` on its own studio, against the schema generated from the
//! manifest (`roles.cedarschema`). It fails closed: a role flowgate does not know, a policy
//! that errors, or entities that do not fit the schema deny, and the denial says why. The
//! policies are validated in strict mode at build time and proved by `flowgate policy prove`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema,
};
use flowgate_codegen::policy::{self, PolicyFile};

use crate::authz::PolicyError;
use crate::tool::catalog::SCOPES;

/// The generated schema of the role policies.
pub const ROLES_SCHEMA: &str = include_str!(concat!(env!("OUT_DIR"), "/roles.cedarschema"));

mod shipped {
    include!(concat!(env!("OUT_DIR"), "/role_policies.rs"));
}
pub use shipped::SHIPPED_ROLE_POLICIES;

/// A role the studio platform gives its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    Staff,
}

impl Role {
    /// The role of the platform's sign-in answer; `None` for one flowgate does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Staff => "staff",
        }
    }

    /// As a person reads it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Owner => "Owner",
            Self::Admin => "Admin",
            Self::Staff => "Staff",
        }
    }
}

/// What a user may do on the settings pages (one Cedar action each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsAction {
    ViewKeys,
    ManageKeys,
    ViewConnectedApps,
    DisconnectApps,
    ViewAuditLog,
}

impl SettingsAction {
    pub fn action(self) -> &'static str {
        match self {
            Self::ViewKeys => "view_keys",
            Self::ManageKeys => "manage_keys",
            Self::ViewConnectedApps => "view_connected_apps",
            Self::DisconnectApps => "disconnect_apps",
            Self::ViewAuditLog => "view_audit_log",
        }
    }
}

/// The studio user a question is about.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    pub id: &'a str,
    pub studio: &'a str,
    /// As the platform said it (`None`: it said none).
    pub role: Option<&'a str>,
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused, and why (for the person).
    Refused(String),
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }
}

/// The loaded, validated role policies.
pub struct Roles {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
    user_type: EntityTypeName,
    studio_type: EntityTypeName,
    role_type: EntityTypeName,
    action_type: EntityTypeName,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles")
            .field("policies", &self.policies.policies().count())
            .finish_non_exhaustive()
    }
}

impl Roles {
    /// The role policies shipped in the binary (validated at build time, and again here).
    pub fn shipped() -> Result<Self, PolicyError> {
        Self::from_files(
            &SHIPPED_ROLE_POLICIES
                .iter()
                .map(|(name, text)| PolicyFile {
                    name: format!("policies/roles/{name}"),
                    text: (*text).to_string(),
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Role policies from files, validated against the generated schema.
    pub fn from_files(files: &[PolicyFile]) -> Result<Self, PolicyError> {
        let (schema, policies) = policy::compile(ROLES_SCHEMA, files).map_err(PolicyError)?;
        let name = |n: &str| {
            EntityTypeName::from_str(&format!("Roles::{n}"))
                .map_err(|e| PolicyError(vec![format!("Roles::{n}: {e}")]))
        };
        Ok(Self {
            schema,
            policies,
            authorizer: Authorizer::new(),
            user_type: name("User")?,
            studio_type: name("Studio")?,
            role_type: name("Role")?,
            action_type: name("Action")?,
        })
    }

    /// Whether `user` may grant `scope` to a connection (an OAuth client, a key).
    pub fn may_grant(&self, user: User<'_>, scope: &str) -> Verdict {
        if !SCOPES.iter().any(|d| d.name == scope) {
            return Verdict::Refused(format!("{scope} is not a scope of this gateway."));
        }
        self.decide(user, &format!("grant:{scope}"), "grant this")
    }

    /// The scopes of the manifest `user` may grant.
    pub fn ceiling(&self, user: User<'_>) -> BTreeSet<String> {
        SCOPES
            .iter()
            .filter(|d| self.may_grant(user, d.name).is_allowed())
            .map(|d| d.name.to_string())
            .collect()
    }

    /// Whether `user` may do `action` on the settings pages.
    pub fn may(&self, user: User<'_>, action: SettingsAction) -> Verdict {
        self.decide(user, action.action(), "do this")
    }

    /// One decision; `what` completes "A Staff account cannot …" when no forbid says why.
    fn decide(&self, user: User<'_>, action: &str, what: &str) -> Verdict {
        let Some(role) = user.role.and_then(Role::parse) else {
            return Verdict::Refused(match user.role {
                Some(r) => format!(
                    "Your studio's platform gave your account the role \"{r}\", which flowgate does not know, so it cannot grant anything."
                ),
                None => "Your studio's platform did not say your account's role, so it cannot grant anything.".into(),
            });
        };
        match self.try_decide(user, role, action, what) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(action, role = role.as_str(), error = %e, "role decision failed closed");
                Verdict::Refused(
                    "Your role could not be checked against the studio's role policies.".into(),
                )
            }
        }
    }

    fn try_decide(
        &self,
        user: User<'_>,
        role: Role,
        action: &str,
        what: &str,
    ) -> Result<Verdict, String> {
        let studio =
            EntityUid::from_type_name_and_id(self.studio_type.clone(), EntityId::new(user.studio));
        let principal =
            EntityUid::from_type_name_and_id(self.user_type.clone(), EntityId::new(user.id));
        let role_uid =
            EntityUid::from_type_name_and_id(self.role_type.clone(), EntityId::new(role.as_str()));
        let entities = [
            Entity::new(
                principal.clone(),
                HashMap::from([(
                    "role".to_string(),
                    RestrictedExpression::new_entity_uid(role_uid),
                )]),
                HashSet::from([studio.clone()]),
            )
            .map_err(|e| e.to_string())?,
            Entity::new_no_attrs(studio.clone(), HashSet::new()),
        ];
        // With the schema: the attributes are checked and the action entities (the groups
        // `grant`, `resource:…`) are added, without which a group never matches.
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;
        let action =
            EntityUid::from_type_name_and_id(self.action_type.clone(), EntityId::new(action));
        let request = Request::new(
            principal,
            action,
            studio,
            Context::empty(),
            Some(&self.schema),
        )
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
            return Err(errors.join("; "));
        }
        if response.decision() == Decision::Allow {
            return Ok(Verdict::Allowed);
        }
        let mut reasons: Vec<&str> = response
            .diagnostics()
            .reason()
            .filter_map(|id| self.policies.annotation(id, "reason"))
            .collect();
        reasons.sort_unstable();
        Ok(Verdict::Refused(reasons.first().map_or_else(
            || {
                format!(
                    "A {} account cannot {what}: ask the studio's owner.",
                    role.title()
                )
            },
            |r| (*r).to_string(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: &str) -> User<'_> {
        User {
            id: "usr_1",
            studio: "std_1",
            role: Some(role),
        }
    }

    #[test]
    fn the_shipped_ceilings_are_the_documented_ones() {
        let roles = Roles::shipped().unwrap();
        let all: BTreeSet<String> = SCOPES.iter().map(|d| d.name.to_string()).collect();
        assert_eq!(roles.ceiling(user("owner")), all);
        let money = ["financials:read", "expenses:read", "expenses:write"];
        let admin: BTreeSet<String> = all
            .iter()
            .filter(|s| !money.contains(&s.as_str()))
            .cloned()
            .collect();
        assert_eq!(roles.ceiling(user("admin")), admin);
        let staff: BTreeSet<String> = [
            "audit:read",
            "bookings:read",
            "bookings:write",
            "classes:read",
            "content:read",
            "directory:read",
            "instructors:read",
            "locations:read",
            "members:read",
            "plans:read",
            "programs:read",
            "schedule:read",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(roles.ceiling(user("staff")), staff);
    }

    #[test]
    fn a_refusal_says_why() {
        let roles = Roles::shipped().unwrap();
        assert_eq!(
            roles.may_grant(user("admin"), "financials:read"),
            Verdict::Refused(
                "Revenue and expenses are for the studio's owner: an admin cannot grant them."
                    .into()
            )
        );
        assert_eq!(
            roles.may_grant(user("staff"), "classes:write"),
            Verdict::Refused("A Staff account cannot grant this: ask the studio's owner.".into())
        );
        for role in [Some("manager"), None] {
            let u = User { role, ..user("") };
            assert!(roles.ceiling(u).is_empty(), "{role:?}");
            assert!(!roles.may(u, SettingsAction::ViewAuditLog).is_allowed());
        }
    }

    #[test]
    fn only_owners_and_admins_manage_keys() {
        let roles = Roles::shipped().unwrap();
        for (role, manage) in [("owner", true), ("admin", true), ("staff", false)] {
            assert_eq!(
                roles
                    .may(user(role), SettingsAction::ManageKeys)
                    .is_allowed(),
                manage,
                "{role}"
            );
            assert_eq!(
                roles
                    .may(user(role), SettingsAction::DisconnectApps)
                    .is_allowed(),
                manage,
                "{role}"
            );
            assert!(
                roles
                    .may(user(role), SettingsAction::ViewAuditLog)
                    .is_allowed()
            );
        }
    }
}
