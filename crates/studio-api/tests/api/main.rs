//! Integration tests: the real server on `127.0.0.1:0` with a temporary data directory, driven
//! over real HTTP.

mod bookings;
mod catalog;
mod classes;
mod harness;
mod idempotency;
mod platform;
mod resources;
mod tenancy;
