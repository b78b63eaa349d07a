//! flowgate: a policy-driven MCP gateway for studio Management APIs.
//!
//! A tool call goes through the stages named by the modules: [`tool`] (the catalog generated
//! from `manifest/`, argument validation) → [`authz`] (the Cedar decision) → [`upstream`] (one
//! Management API call).

pub mod authz;
pub mod tool;
pub mod upstream;
