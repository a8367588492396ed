//! The demo's Tunduk: the stand-in security server (tests and the demo only) with a
//! vehicle registry that knows every plate, so `serve --demo` issues resolutions
//! without a connection to the real bus. Owners are made up from the plate, the same
//! plate always giving the same owner.

use kozomol_tunduk::standin::{RegistryEntry, StandIn, StandInConfig};
use kozomol_tunduk::{RegistryConfig, XRoadClient};
use sha2::{Digest, Sha256};

use crate::serve::ServeError;

/// The X-Road client kozomol is in the demo.
const DEMO_CLIENT: &str = "central-server/GOV/70000001/kozomol";

const SURNAMES: &[&str] = &["Асанов", "Токтогулов", "Иманалиев", "Садыков", "Жумабеков"];
const NAMES: &[&str] = &["Бакыт", "Азамат", "Нурлан", "Эрлан", "Марат"];
const PATRONYMICS: &[&str] = &["Асанович", "Маратович", "Кубанычбекович", "Сергеевич"];

/// Starts the stand-in on a free local port; returns it (it stops when dropped) and
/// the registry settings that reach it.
pub async fn start() -> Result<(StandIn, RegistryConfig), ServeError> {
    let client = XRoadClient::parse(DEMO_CLIENT)?;
    let bus = StandIn::start(StandInConfig::new(vec![client.clone()]))
        .await
        .map_err(|source| ServeError::Io {
            what: "demo Tunduk stand-in".into(),
            source,
        })?;
    bus.set_fallback(Some(std::sync::Arc::new(owner_of)));
    let config = RegistryConfig::new(bus.url(), client);
    Ok((bus, config))
}

/// A made-up owner for `plate`: a person with a 14-digit PIN.
pub fn owner_of(plate: &str) -> RegistryEntry {
    let hash = Sha256::digest(plate.as_bytes());
    let pick = |list: &[&'static str], byte: u8| list[usize::from(byte) % list.len()];
    let pin: String = hash
        .iter()
        .take(14)
        .enumerate()
        .map(|(i, b)| {
            // A PIN starts with 1 or 2 (the holder's sex), then digits.
            let digit = if i == 0 { 1 + b % 2 } else { b % 10 };
            char::from(b'0' + digit)
        })
        .collect();
    RegistryEntry::person(
        plate,
        &pin,
        pick(SURNAMES, hash[20]),
        pick(NAMES, hash[21]),
        pick(PATRONYMICS, hash[22]),
    )
}
