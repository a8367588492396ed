//! What the tests share: kozomol's client id, a stand-in, a registry pointed at it.

use kozomol_tunduk::standin::{FaultStyle, StandIn, StandInConfig};
use kozomol_tunduk::{BusProtocol, ExchangeContext, RegistryConfig, VehicleRegistry, XRoadClient};

pub const PLATE: &str = "01KG123ABC";

pub fn kozomol() -> XRoadClient {
    XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("valid client")
}

pub fn context() -> ExchangeContext {
    ExchangeContext::new("KG21234567890123", "case-42")
}

pub async fn standin(style: FaultStyle) -> StandIn {
    let mut config = StandInConfig::new(vec![kozomol()]);
    config.fault_style = style;
    StandIn::start(config).await.expect("stand-in starts")
}

/// Quick retries, a breaker that never opens, the cache off unless asked for.
pub fn config(standin: &StandIn, protocol: BusProtocol) -> RegistryConfig {
    let mut config = RegistryConfig::new(standin.url(), kozomol());
    config.protocol = protocol;
    config.request_timeout_ms = 2_000;
    config.backoff_base_ms = 10;
    config.backoff_max_ms = 40;
    config.breaker_failure_threshold = 100;
    config.cache_ttl_secs = 0;
    config
}

pub fn registry(config: RegistryConfig) -> VehicleRegistry {
    VehicleRegistry::new(config).expect("valid registry config")
}
