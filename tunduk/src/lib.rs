//! kozomol-tunduk: the exchange-bus adapter (Tunduk, an X-Road instance), both sides.
//!
//! - X-Road identifiers of clients and services, in their path form (`identifiers`).
//! - X-Road message protocol v4.0 over SOAP (`soap`) and the REST protocol r1
//!   (`rest`): one attempt each, header echo checked, faults in both spellings
//!   normalised into [`XRoadFault`].
//! - The vehicle registry (`vehicles-service`, `transportCurrentInfo`): owner and
//!   vehicle by plate, read leniently, with retries, a circuit breaker and a short
//!   cache ([`VehicleRegistry`], configured by [`RegistryConfig`]).
//! - The provider side of the SOAP protocol (`provider`: a request read and checked,
//!   the reply echoing its header) and the contract of the `smartcity-service` kozomol
//!   provides (`smartcity`: operations, fields, responses in the WSDL's shape).
//! - With the `standin` feature, a stand-in security server for tests (`standin`).

mod cache;
pub mod config;
pub mod error;
pub mod exchange;
mod http;
pub mod identifiers;
pub mod owner;
pub mod plate;
pub mod provider;
pub mod registry;
pub mod resilience;
pub mod rest;
pub mod smartcity;
pub mod soap;
#[cfg(feature = "standin")]
pub mod standin;
pub mod xml;

pub use config::{BusProtocol, RegistryConfig, DEFAULT_SERVICE};
pub use error::{normalise_fault_code, FaultKind, TundukError, XRoadFault};
pub use exchange::{ExchangeContext, Exchanged, SYSTEM_USER_ID};
pub use identifiers::{XRoadClient, XRoadService};
pub use owner::{
    Address, Company, IdentityDocument, Owner, OwnerAnswer, OwnerLookup, OwnerRecord, Person,
    Vehicle,
};
pub use plate::{
    is_domestic_plate, normalize_plate, plate_identity, plate_key, plate_spellings, same_plate,
    PlateOrigin,
};
pub use registry::VehicleRegistry;
pub use rest::RestClient;
pub use soap::SoapClient;
