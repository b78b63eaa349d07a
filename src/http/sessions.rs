//! MCP sessions (2025-11-25 `Mcp-Session-Id`): which principal opened each one, and how many a
//! principal may hold.
//!
//! A session belongs to the principal that created it; another credential presenting its id is
//! told it does not exist. A principal holds at most `max_per_principal` sessions: opening one
//! more closes its oldest (a client that reconnects without ending its sessions keeps working,
//! and nobody can pile up sessions). rmcp itself closes a session idle for five minutes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::transport::streamable_http_server::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// The sessions of one gateway.
pub struct Sessions {
    /// rmcp's session manager (stateful mode); the gateway closes sessions through it.
    pub manager: Arc<LocalSessionManager>,
    /// Session id → the principal that created it (`kind:id`).
    owners: moka::sync::Cache<String, String>,
    /// Principal → its session ids, oldest first.
    opened: Mutex<HashMap<String, VecDeque<String>>>,
    max_per_principal: usize,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("max_per_principal", &self.max_per_principal)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(max_per_principal: usize) -> Self {
        Self {
            manager: Arc::new(LocalSessionManager::default()),
            owners: moka::sync::Cache::builder()
                .name("sessions")
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            opened: Mutex::new(HashMap::new()),
            max_per_principal: max_per_principal.max(1),
        }
    }

    /// The principal that created `session`, if the gateway knows it.
    pub fn owner(&self, session: &str) -> Option<String> {
        self.owners.get(session)
    }

    /// Records a session `owner` just opened, and closes the owner's oldest sessions beyond the
    /// limit.
    pub async fn opened(&self, owner: &str, session: &str) {
        self.owners.insert(session.to_string(), owner.to_string());
        let live = {
            let sessions = self.manager.sessions.read().await;
            let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
            opened.get(owner).map(|ids| {
                ids.iter()
                    .filter(|id| sessions.contains_key(id.as_str()))
                    .cloned()
                    .collect::<VecDeque<_>>()
            })
        };
        let mut ids = live.unwrap_or_default();
        ids.push_back(session.to_string());
        let mut excess = Vec::new();
        while ids.len() > self.max_per_principal {
            excess.extend(ids.pop_front());
        }
        // One entry per principal that has opened a session: bounded by the keys and grants
        // in the store, not by what clients send.
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(owner.to_string(), ids);
        for id in excess {
            self.owners.invalidate(&id);
            if let Err(e) = self.manager.close_session(&id.as_str().into()).await {
                tracing::debug!(error = %e, "cannot close an old session");
            }
        }
    }

    /// Whether `session` is open now.
    pub async fn is_open(&self, session: &str) -> bool {
        self.manager.sessions.read().await.contains_key(session)
    }

    /// Sessions open now (for tests and metrics).
    pub async fn open_count(&self) -> usize {
        self.manager.sessions.read().await.len()
    }
}
