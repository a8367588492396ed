//! How money reaches kozomol, over real HTTP servers: Tunduk's `smartcity-service`
//! called by a stock SOAP client (`smartcity`), and the REST payment API of payment
//! providers with bank statements reconciled (`provider_api`). One test binary: each
//! links the whole server.

mod provider_api;
mod smartcity;
