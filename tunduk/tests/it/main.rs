//! One test binary for the crate: the consumer against the stand-in security server.

mod common;
mod rest;
mod robustness;
mod schema;
mod soap;
mod standin;
mod tls;
