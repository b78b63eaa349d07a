//! flowgate's integration tests: one binary, modules by subject. Servers bind 127.0.0.1:0.
mod catalog;
mod cli;
mod every_tool;
mod fuzz;
mod gateway;
mod guarantees;
mod harness;
mod oauth;
mod operations;
mod policies;
mod prove;
