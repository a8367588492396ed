//! End-to-end tests: the real binaries, real brokers and databases.

mod backbone;
mod bad_input;
mod broker_acl;
mod fault_suite;
mod faults;
mod fines;
mod production;
mod recognition;
