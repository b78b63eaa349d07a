//! flowgate: a policy-driven MCP gateway for studio Management APIs.
//!
//! A tool call goes through the stages named by the modules: [`http`] (the bearer check, session
//! binding) → [`identity`] (who the caller is: a secret key or an OAuth grant, and its studio) →
//! [`mcp`] (the MCP server) → [`call`] (the call path) → [`tool`] (the catalog generated from
//! `manifest/`, argument validation) → [`authz`] (the Cedar decision) → [`upstream`] (one
//! Management API call) → [`audit`]. [`app`] holds the shared state, [`serve`] wires it up.
//! Beside the call path: [`oauth`] (one-click sign-in) and [`settings`] (the studio owner's
//! pages).

pub mod app;
pub mod audit;
pub mod authz;
pub mod call;
pub mod config;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod limit;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod roles;
pub mod serve;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod tool;
pub mod upstream;
pub mod wire;
