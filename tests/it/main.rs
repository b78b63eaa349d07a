//! flowgate's integration tests: one binary, modules by subject. Servers bind 127.0.0.1:0.
mod catalog;
mod every_tool;
mod gateway;
mod harness;
mod policies;
