//! flowgate's integration tests: one binary, modules by subject. Servers bind 127.0.0.1:0.
mod abuse;
mod audit_log;
mod catalog;
mod cli;
mod clients;
mod every_tool;
mod fuzz;
mod gateway;
mod guarantees;
mod hardening;
mod harness;
mod oauth;
mod operations;
mod policies;
mod postgres;
mod prove;
mod store;
