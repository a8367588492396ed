//! The vehicle registry (`vehicles-service`, `transportCurrentInfo`) as kozomol asks
//! it: who owns a plate. Foreign plates are answered without the bus; answers are
//! cached briefly; attempts that meet an unavailable bus are retried with backoff, and
//! a circuit breaker stops asking a bus that keeps failing.

use std::time::Instant;

use rand::Rng;

use crate::cache::TtlCache;
use crate::config::{BusProtocol, RegistryConfig};
use crate::owner::{interpret, raw_from_json, raw_from_xml};
use crate::plate::{is_domestic_plate, normalize_plate, plate_key};
use crate::resilience::{backoff_delay, CircuitBreaker};
use crate::xml::{Element, VEHICLES_NS};
use crate::{
    ExchangeContext, Exchanged, OwnerAnswer, OwnerLookup, PlateOrigin, RestClient, SoapClient,
    TundukError,
};

const MAX_PLATE_LEN: usize = 16;

/// The `transportCurrentInfo` request body: the plate, and nil for the body, engine
/// and chassis numbers (all four are required and nillable in the WSDL).
pub fn transport_current_info_request(service_code: &str, plate: &str) -> Element {
    Element::new(service_code).in_namespace(VEHICLES_NS).child(
        Element::new("request")
            .child(Element::text("govPlate", plate))
            .child(Element::nil("bodyNo"))
            .child(Element::nil("engineNo"))
            .child(Element::nil("chassisNo")),
    )
}

/// The security server's certificates trusted and kozomol's own identity, read from
/// their files once, so a bad file stops start-up instead of failing every lookup.
fn tls(
    config: &RegistryConfig,
    mut http: reqwest::ClientBuilder,
) -> Result<reqwest::ClientBuilder, TundukError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| TundukError::Config(vec![format!("{}: {e}", path.display())]))
    };
    if let Some(path) = &config.security_server_ca_file {
        let certificates = reqwest::Certificate::from_pem_bundle(&read(path)?)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                TundukError::Config(vec![format!(
                    "{}: no PEM certificate reads",
                    path.display()
                )])
            })?;
        for certificate in certificates {
            http = http.add_root_certificate(certificate);
        }
    }
    if let (Some(certificate), Some(key)) =
        (&config.client_certificate_file, &config.client_key_file)
    {
        let mut pem = read(key)?;
        pem.push(b'\n');
        pem.extend(read(certificate)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            TundukError::Config(vec![format!(
                "{} with {}: not a certificate and its key: {e}",
                certificate.display(),
                key.display()
            )])
        })?;
        http = http.identity(identity);
    }
    Ok(http)
}

/// The HTTP client and address of kozomol's security server, as `config` names them
/// (its TLS trust and client certificate included).
fn security_server(
    config: &RegistryConfig,
) -> Result<(reqwest::Client, reqwest::Url), TundukError> {
    config.validate()?;
    let url = reqwest::Url::parse(&config.security_server_url)
        .map_err(|e| TundukError::Config(vec![e.to_string()]))?;
    let http = tls(
        config,
        reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            // X-Road passes redirects through unfollowed, and so does kozomol.
            .redirect(reqwest::redirect::Policy::none()),
    )?
    .build()
    .map_err(|e| TundukError::Config(vec![format!("http client: {e}")]))?;
    Ok((http, url))
}

/// A SOAP client of kozomol's security server as `config` names it, for services other
/// than the registry's (the notices to subscribed systems).
pub fn soap_client(config: &RegistryConfig) -> Result<SoapClient, TundukError> {
    let (http, url) = security_server(config)?;
    Ok(SoapClient::new(
        http,
        url,
        config.client.clone(),
        config.max_response_bytes,
    ))
}

/// kozomol's consumer of the vehicle registry. Share one per process (e.g. in an
/// `Arc`): the cache and the circuit breaker live in it.
#[derive(Debug)]
pub struct VehicleRegistry {
    config: RegistryConfig,
    soap: SoapClient,
    rest: RestClient,
    breaker: CircuitBreaker,
    cache: TtlCache<String, OwnerAnswer>,
}

impl VehicleRegistry {
    pub fn new(config: RegistryConfig) -> Result<Self, TundukError> {
        let (http, url) = security_server(&config)?;
        Ok(VehicleRegistry {
            soap: SoapClient::new(
                http.clone(),
                url.clone(),
                config.client.clone(),
                config.max_response_bytes,
            ),
            rest: RestClient::new(http, url, config.client.clone(), config.max_response_bytes),
            breaker: CircuitBreaker::new(
                config.breaker_failure_threshold,
                config.breaker_cool_down(),
            ),
            cache: TtlCache::new(config.cache_ttl(), config.cache_max_entries),
            config,
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Who owns the vehicle with `plate`, as `context.user_id` asks for the case
    /// `context.issue`. A plate that is not Kyrgyz (`origin`, or `is_domestic_plate`
    /// when `origin` is `Auto`) is answered `ForeignPlate` without a request.
    pub async fn transport_current_info(
        &self,
        plate: &str,
        origin: PlateOrigin,
        context: &ExchangeContext,
    ) -> Result<OwnerAnswer, TundukError> {
        context.validate()?;
        let plate = normalize_plate(plate);
        if plate.is_empty() {
            return Err(TundukError::InvalidInput("plate is empty".to_owned()));
        }
        if plate.chars().count() > MAX_PLATE_LEN || !plate.chars().all(char::is_alphanumeric) {
            return Err(TundukError::InvalidInput(format!(
                "plate `{plate}` is not up to {MAX_PLATE_LEN} letters and digits"
            )));
        }
        let service = &self.config.service;
        let domestic = match origin {
            PlateOrigin::Auto => is_domestic_plate(&plate),
            PlateOrigin::Domestic => true,
            PlateOrigin::Foreign => false,
        };
        if !domestic {
            tracing::info!(
                user_id = %context.user_id,
                issue = %context.issue,
                service = %service,
                outcome = "foreign_plate",
                "vehicle registry not asked"
            );
            return Ok(OwnerAnswer {
                lookup: OwnerLookup::ForeignPlate,
                exchange_id: None,
            });
        }
        // An owner found is the vehicle's whichever way its plate was spelled; "no such
        // plate" is an answer about the text asked (the registry may know the plate
        // only with its `KG`), so it stands for that text alone.
        let key = plate_key(&plate);
        let asked = format!("={plate}");
        let now = Instant::now();
        let cached = self
            .cache
            .get(&key, now)
            .or_else(|| self.cache.get(&asked, now));
        if let Some(answer) = cached {
            // Still a look at personal data: logged like an exchange.
            tracing::info!(
                user_id = %context.user_id,
                issue = %context.issue,
                service = %service,
                outcome = "cache_hit",
                "vehicle registry answer reused"
            );
            return Ok(answer);
        }
        let Exchanged { id, value } = self.ask_with_retries(&plate, context).await?;
        let answer = OwnerAnswer {
            lookup: value,
            exchange_id: Some(id),
        };
        let key = match answer.lookup {
            OwnerLookup::NoData => asked,
            _ => key,
        };
        self.cache.insert(key, answer.clone(), Instant::now());
        Ok(answer)
    }

    async fn ask_with_retries(
        &self,
        plate: &str,
        context: &ExchangeContext,
    ) -> Result<Exchanged<OwnerLookup>, TundukError> {
        let max_attempts = self.config.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = match self.breaker.try_acquire(Instant::now()) {
                Ok(permit) => permit,
                Err(retry_in) => {
                    tracing::warn!(
                        user_id = %context.user_id,
                        issue = %context.issue,
                        service = %self.config.service,
                        outcome = "circuit_open",
                        retry_in_ms = retry_in.as_millis() as u64,
                        "vehicle registry not asked"
                    );
                    return Err(TundukError::CircuitOpen { retry_in });
                }
            };
            let error = match self.ask(plate, context).await {
                Ok(answer) => {
                    permit.succeeded();
                    return Ok(answer);
                }
                Err(error) if error.is_transient() => error,
                Err(error) => {
                    // A definite answer: the bus works, even when it refuses.
                    permit.succeeded();
                    return Err(error);
                }
            };
            if permit.failed(Instant::now()) {
                tracing::warn!(
                    service = %self.config.service,
                    threshold = self.config.breaker_failure_threshold,
                    cool_down_ms = self.config.breaker_cool_down_ms,
                    "circuit breaker opened"
                );
                // No point waiting to be refused: the caller gets the real error.
                return Err(error);
            }
            if attempt >= max_attempts {
                return Err(error);
            }
            let jitter: f64 = rand::thread_rng().gen();
            let delay = backoff_delay(
                attempt,
                self.config.backoff_base(),
                self.config.backoff_max(),
                jitter,
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt over the configured protocol.
    async fn ask(
        &self,
        plate: &str,
        context: &ExchangeContext,
    ) -> Result<Exchanged<OwnerLookup>, TundukError> {
        let service = &self.config.service;
        let timeout = self.config.request_timeout();
        match self.config.protocol {
            BusProtocol::Soap => {
                let payload = transport_current_info_request(service.service_code(), plate);
                self.soap
                    .call(service, &payload, context, timeout, |reply| {
                        if !matches!(reply.tag_name().namespace(), None | Some(VEHICLES_NS)) {
                            return Err(TundukError::MalformedReply(format!(
                                "the reply is in namespace `{}`",
                                reply.tag_name().namespace().unwrap_or_default()
                            )));
                        }
                        if let Some(fault) = non_technical_fault(reply) {
                            return Err(TundukError::Fault(fault));
                        }
                        interpret(plate, raw_from_xml(reply))
                    })
                    .await
            }
            BusProtocol::Rest => {
                let mut path: Vec<&str> = service.service_version().into_iter().collect();
                path.push(plate);
                self.rest
                    .get(service, &path, context, timeout, |value| {
                        interpret(plate, raw_from_json(&value))
                    })
                    .await
            }
        }
    }
}

/// A provider's refusal written inside its reply (X-Road message protocol, annex D:
/// `fault` with `faultCode` and `faultString` in the response wrapper), not as a SOAP
/// fault: the provider's own answer, with its words kept.
fn non_technical_fault(reply: roxmltree::Node<'_, '_>) -> Option<crate::XRoadFault> {
    fn named<'a, 'i>(
        node: roxmltree::Node<'a, 'i>,
        local: &str,
    ) -> Option<roxmltree::Node<'a, 'i>> {
        node.children()
            .find(|n| n.is_element() && n.tag_name().name() == local)
    }
    let fault = named(reply, "fault")?;
    let code = named(fault, "faultCode").map(crate::xml::text)?;
    let text = named(fault, "faultString")
        .map(crate::xml::text)
        .unwrap_or_default();
    Some(crate::XRoadFault::new(code.trim(), text, None))
}
