//! kozomol-server: the `kozomol` binary's parts as a library.
//!
//! It owns configuration, wiring of the parts into one process (`serve`) or one part
//! per process (`run PART`), the embedded MQTT broker, the demo's Tunduk stand-in, the HTTP API with its access
//! control, metrics and OpenAPI description, and the camera simulator command.

pub mod broker;
pub mod settings;

pub mod api;
pub mod auth;
pub mod card_standin;
pub mod demo_bus;
pub mod metrics;
pub mod oidc_standin;
pub mod openapi;
pub mod plate_reading;
pub mod serve;
pub mod simulate;
