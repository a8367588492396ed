//! Whom the channels that cross networks trust: the SMS gateway over HTTPS and e-mail
//! over SMTP with TLS both use rustls with Mozilla's roots built in, plus the
//! certificates an operator names — a city's own CA, or a test peer's self-signed
//! certificate. Read and checked once, when the channel is made, so a bad file stops
//! start-up instead of failing every message.

use std::path::Path;

use super::DeliveryError;

/// Certificates trusted as roots besides the built-in public ones, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedCertificates {
    pem: Vec<u8>,
    count: usize,
}

impl std::fmt::Debug for TrustedCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedCertificates({} certificates)", self.count)
    }
}

impl TrustedCertificates {
    /// One or more `CERTIFICATE` blocks; anything else in `pem` is ignored, as PEM
    /// bundles carry comments.
    pub fn from_pem(pem: Vec<u8>) -> Result<Self, DeliveryError> {
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| DeliveryError::Config(format!("certificates do not read: {e}")))?;
        if certificates.is_empty() {
            return Err(DeliveryError::Config(
                "no PEM `CERTIFICATE` block among the certificates".into(),
            ));
        }
        Ok(TrustedCertificates {
            count: certificates.len(),
            pem,
        })
    }

    pub fn read(path: &Path) -> Result<Self, DeliveryError> {
        let pem = std::fs::read(path).map_err(|e| {
            DeliveryError::Config(format!("certificates in {}: {e}", path.display()))
        })?;
        Self::from_pem(pem).map_err(|e| match e {
            DeliveryError::Config(why) => {
                DeliveryError::Config(format!("{why} (in {})", path.display()))
            }
            other => other,
        })
    }

    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    pub(super) fn for_http(&self) -> Result<Vec<reqwest::Certificate>, DeliveryError> {
        reqwest::Certificate::from_pem_bundle(&self.pem)
            .map_err(|e| DeliveryError::Config(format!("certificates do not read: {e}")))
    }

    pub(super) fn for_smtp(
        &self,
    ) -> Result<lettre::transport::smtp::client::Certificate, DeliveryError> {
        lettre::transport::smtp::client::Certificate::from_pem(&self.pem)
            .map_err(|e| DeliveryError::Config(format!("certificates do not read: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_a_certificate_is_refused() {
        for (pem, want) in [
            (&b""[..], "no PEM"),
            (b"# only a comment\n", "no PEM"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no PEM",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "do not read",
            ),
        ] {
            let error = TrustedCertificates::from_pem(pem.to_vec())
                .expect_err("refused")
                .to_string();
            assert!(error.contains(want), "{error}");
        }
    }

    #[test]
    fn a_missing_file_names_itself() {
        let error = TrustedCertificates::read(Path::new("/nonexistent/city-ca.pem"))
            .expect_err("refused")
            .to_string();
        assert!(error.contains("/nonexistent/city-ca.pem"), "{error}");
    }
}
