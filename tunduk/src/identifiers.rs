//! X-Road identifiers of a client subsystem and of a service, in the path form
//! `central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1`.
//!
//! Both require the subsystem code: every Tunduk service lives in a subsystem, and the
//! REST protocol needs the subsystem part in practice. Each part is 1–255 characters
//! from the set the protocol allows (`A-Z a-z 0-9 ' ( ) + , - . = ?`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TundukError;

const MAX_PART_LEN: usize = 255;

fn check_part(whole: &str, what: &str, part: &str) -> Result<(), TundukError> {
    let invalid = |reason: String| TundukError::InvalidIdentifier {
        value: whole.to_owned(),
        reason,
    };
    if part.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if part.len() > MAX_PART_LEN {
        return Err(invalid(format!(
            "{what} is longer than {MAX_PART_LEN} bytes"
        )));
    }
    if let Some(bad) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "'()+,-.=?".contains(*c)))
    {
        return Err(invalid(format!("{what} contains `{bad}`")));
    }
    Ok(())
}

/// A service client: `instance/memberClass/memberCode/subsystemCode`, sent as
/// `objectType="SUBSYSTEM"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct XRoadClient {
    instance: String,
    member_class: String,
    member_code: String,
    subsystem_code: String,
}

impl XRoadClient {
    pub fn new(
        instance: &str,
        member_class: &str,
        member_code: &str,
        subsystem_code: &str,
    ) -> Result<Self, TundukError> {
        let client = XRoadClient {
            instance: instance.to_owned(),
            member_class: member_class.to_owned(),
            member_code: member_code.to_owned(),
            subsystem_code: subsystem_code.to_owned(),
        };
        let whole = client.to_string();
        check_part(&whole, "instance", instance)?;
        check_part(&whole, "member class", member_class)?;
        check_part(&whole, "member code", member_code)?;
        check_part(&whole, "subsystem code", subsystem_code)?;
        Ok(client)
    }

    /// Parses `instance/memberClass/memberCode/subsystemCode`.
    pub fn parse(path: &str) -> Result<Self, TundukError> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [instance, class, code, subsystem] => {
                XRoadClient::new(instance, class, code, subsystem)
            }
            _ => Err(TundukError::InvalidIdentifier {
                value: path.to_owned(),
                reason: format!(
                    "a client is instance/memberClass/memberCode/subsystemCode, found {} parts",
                    parts.len()
                ),
            }),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn member_class(&self) -> &str {
        &self.member_class
    }

    pub fn member_code(&self) -> &str {
        &self.member_code
    }

    pub fn subsystem_code(&self) -> &str {
        &self.subsystem_code
    }

    /// The parts in order, for encoders that handle them one by one.
    pub fn parts(&self) -> [&str; 4] {
        [
            &self.instance,
            &self.member_class,
            &self.member_code,
            &self.subsystem_code,
        ]
    }
}

impl fmt::Display for XRoadClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.instance, self.member_class, self.member_code, self.subsystem_code
        )
    }
}

impl FromStr for XRoadClient {
    type Err = TundukError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XRoadClient::parse(s)
    }
}

impl TryFrom<String> for XRoadClient {
    type Error = TundukError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        XRoadClient::parse(&value)
    }
}

impl From<XRoadClient> for String {
    fn from(value: XRoadClient) -> Self {
        value.to_string()
    }
}

/// A service: `instance/memberClass/memberCode/subsystemCode/serviceCode[/serviceVersion]`,
/// sent as `objectType="SERVICE"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct XRoadService {
    provider: XRoadClient,
    service_code: String,
    service_version: Option<String>,
}

impl XRoadService {
    pub fn new(
        provider: XRoadClient,
        service_code: &str,
        service_version: Option<&str>,
    ) -> Result<Self, TundukError> {
        let service = XRoadService {
            provider,
            service_code: service_code.to_owned(),
            service_version: service_version.map(str::to_owned),
        };
        let whole = service.to_string();
        check_part(&whole, "service code", service_code)?;
        if let Some(version) = service_version {
            check_part(&whole, "service version", version)?;
        }
        Ok(service)
    }

    /// Parses the path form with five parts (no version) or six (with version).
    pub fn parse(path: &str) -> Result<Self, TundukError> {
        let parts: Vec<&str> = path.split('/').collect();
        let (provider, code, version) = match parts.as_slice() {
            [i, c, m, s, code] => ([*i, *c, *m, *s], *code, None),
            [i, c, m, s, code, version] => ([*i, *c, *m, *s], *code, Some(*version)),
            _ => {
                return Err(TundukError::InvalidIdentifier {
                    value: path.to_owned(),
                    reason: format!(
                        "a service is instance/memberClass/memberCode/subsystemCode/serviceCode[/serviceVersion], found {} parts",
                        parts.len()
                    ),
                })
            }
        };
        let provider = XRoadClient::new(provider[0], provider[1], provider[2], provider[3])
            .map_err(|e| match e {
                TundukError::InvalidIdentifier { reason, .. } => TundukError::InvalidIdentifier {
                    value: path.to_owned(),
                    reason,
                },
                other => other,
            })?;
        XRoadService::new(provider, code, version)
    }

    /// The subsystem that provides the service.
    pub fn provider(&self) -> &XRoadClient {
        &self.provider
    }

    pub fn service_code(&self) -> &str {
        &self.service_code
    }

    pub fn service_version(&self) -> Option<&str> {
        self.service_version.as_deref()
    }

    /// The REST form of the service id (`X-Road-Service`, the path after `/r1/`):
    /// the provider's parts and the service code, without the version.
    pub fn rest_id(&self) -> String {
        format!("{}/{}", self.provider, self.service_code)
    }
}

impl fmt::Display for XRoadService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.service_code)?;
        if let Some(version) = &self.service_version {
            write!(f, "/{version}")?;
        }
        Ok(())
    }
}

impl FromStr for XRoadService {
    type Err = TundukError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XRoadService::parse(s)
    }
}

impl TryFrom<String> for XRoadService {
    type Error = TundukError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        XRoadService::parse(&value)
    }
}

impl From<XRoadService> for String {
    fn from(value: XRoadService) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients() {
        let cases = [
            ("central-server/GOV/70000005/kozomol", true),
            ("central-server/COM/01234567891011/bank-1", true),
            ("central-server/GOV/70000005", false),
            ("central-server/GOV/70000005/a/b", false),
            ("central-server//70000005/kozomol", false),
            ("central-server/GOV/700 005/kozomol", false),
            ("central-server/GOV/70000005/sub_system", false),
            ("central-server/GOV/70000005/a'(+),-.=?", true),
            ("", false),
        ];
        for (path, ok) in cases {
            let parsed = XRoadClient::parse(path);
            assert_eq!(parsed.is_ok(), ok, "{path}: {parsed:?}");
            if let Ok(client) = parsed {
                assert_eq!(client.to_string(), path);
            }
        }
    }

    #[test]
    fn services() {
        let cases = [
            (
                "central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1",
                Some(("transportCurrentInfo", Some("v1"))),
            ),
            (
                "central-server/GOV/70000005/vehicles-service/transportCurrentInfo",
                Some(("transportCurrentInfo", None)),
            ),
            ("central-server/GOV/70000005/transportCurrentInfo", None),
            ("central-server/GOV/70000005/s/code/v1/extra", None),
            ("central-server/GOV/70000005/s/code/", None),
            ("central-server/GOV/70000005/s/co%de/v1", None),
        ];
        for (path, expected) in cases {
            let parsed = XRoadService::parse(path);
            match expected {
                Some((code, version)) => {
                    let service = parsed.expect("should parse");
                    assert_eq!(service.service_code(), code);
                    assert_eq!(service.service_version(), version);
                    assert_eq!(service.provider().member_code(), "70000005");
                    assert_eq!(service.to_string(), path);
                }
                None => assert!(parsed.is_err(), "{path} should not parse"),
            }
        }
    }

    #[test]
    fn rest_id_has_no_version() {
        let service = XRoadService::parse(
            "central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1",
        )
        .expect("valid service");
        assert_eq!(
            service.rest_id(),
            "central-server/GOV/70000005/vehicles-service/transportCurrentInfo"
        );
    }

    #[test]
    fn serde_round_trip_validates() {
        let client: XRoadClient =
            serde_json::from_str("\"central-server/GOV/70000005/kozomol\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&client).expect("serialises"),
            "\"central-server/GOV/70000005/kozomol\""
        );
        assert!(serde_json::from_str::<XRoadClient>("\"central-server/GOV\"").is_err());
    }
}
