//! Sign-in flows: one authorization in progress, from `/oauth/authorize` to the code, kept in the
//! gateway's store so that each step may land on any replica.
//!
//! Contract: a flow is known by a random id that only the person's browser holds (the store keeps
//! its SHA-256); it lives [`FLOW_TTL`] from its start, and again from its sign-in; the consent
//! step [`Flows::take`]s it, once, whichever replica it reaches. At most [`MAX_FLOWS`] are live at
//! once (and one address may start only so many: `OAuth::flows_started`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::grants::{hash, random_token};
use crate::store::flows::{FlowRow, FlowUser};
use crate::store::{Store, StoreError, Timestamp};

/// How long a sign-in and consent flow may take (from the authorize request, and again from
/// the sign-in).
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// Flows live at once, on all replicas together: past this, new sign-ins are asked to come back
/// later (flows in progress are never pushed out).
pub const MAX_FLOWS: i64 = 100_000;
/// The longest `state` a client may send (it is stored with the flow and sent back).
pub const MAX_STATE: usize = 2048;

/// The studio user who signed in during a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub studio_id: String,
    pub studio_name: String,
    /// The role the studio platform gave the user (`owner`, `admin`, `staff`); `None` when it
    /// said none. It caps what they may grant ([`crate::roles`]).
    pub role: Option<String>,
}

/// One authorization in progress, between the authorize request and the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The CSRF value of the flow's forms and cookie.
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub requested: BTreeSet<String>,
    pub user: Option<SignedIn>,
}

/// The flows, in the store.
#[derive(Debug, Clone)]
pub struct Flows {
    store: Store,
}

fn ttl() -> chrono::Duration {
    chrono::Duration::from_std(FLOW_TTL).unwrap_or(chrono::Duration::minutes(10))
}

impl Flows {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Stores a new flow and returns its id, or `None` when [`MAX_FLOWS`] are live.
    pub async fn start(&self, flow: &Flow) -> Result<Option<String>, StoreError> {
        let id = random_token("");
        let now = Timestamp::now();
        let row = FlowRow {
            csrf: flow.csrf.clone(),
            client_id: flow.client_id.clone(),
            client_name: flow.client_name.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            state: flow.state.clone(),
            code_challenge: flow.code_challenge.clone(),
            requested: flow.requested.iter().cloned().collect::<Vec<_>>().join(" "),
            user_id: None,
            user_email: None,
            user_name: None,
            studio_id: None,
            studio_name: None,
            user_role: None,
            expires_at: now + ttl(),
        };
        let stored = self
            .store
            .insert_flow(&hash(&id), &row, now, MAX_FLOWS)
            .await?;
        Ok(stored.then_some(id))
    }

    /// The live flow `id`, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Flow>, StoreError> {
        Ok(self
            .store
            .flow(&hash(id), Timestamp::now())
            .await?
            .map(from_row))
    }

    /// Records who signed in, and gives the flow [`FLOW_TTL`] again; `false` when the flow is
    /// gone meanwhile.
    pub async fn signed_in(&self, id: &str, user: &SignedIn) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let user = FlowUser {
            user_id: &user.user_id,
            email: &user.email,
            name: &user.name,
            studio_id: &user.studio_id,
            studio_name: &user.studio_name,
            role: user.role.as_deref(),
        };
        self.store
            .flow_signed_in(&hash(id), &user, now, now + ttl())
            .await
    }

    /// Uses the flow up: returns it to the one caller, on any replica, that takes it first.
    pub async fn take(&self, id: &str) -> Result<Option<Flow>, StoreError> {
        Ok(self
            .store
            .take_flow(&hash(id), Timestamp::now())
            .await?
            .map(from_row))
    }

    /// Deletes expired flows; how many.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        self.store.prune_flows(Timestamp::now()).await
    }
}

fn from_row(r: FlowRow) -> Flow {
    let user = match (
        r.user_id,
        r.user_email,
        r.user_name,
        r.studio_id,
        r.studio_name,
    ) {
        (Some(user_id), Some(email), Some(name), Some(studio_id), Some(studio_name)) => {
            Some(SignedIn {
                user_id,
                email,
                name,
                studio_id,
                studio_name,
                role: r.user_role,
            })
        }
        _ => None,
    };
    Flow {
        csrf: r.csrf,
        client_id: r.client_id,
        client_name: r.client_name,
        redirect_uri: r.redirect_uri,
        state: r.state,
        code_challenge: r.code_challenge,
        requested: crate::identity::scope_list(&r.requested),
        user,
    }
}
