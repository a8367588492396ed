//! Confirming a contact a citizen leaves on the portal: a six-digit code goes to the
//! phone number or e-mail address, and the contact is stored only when the code comes
//! back. A delivery to a contact proves the resolution delivered and starts the clocks,
//! so the address must be one its holder chose: whoever confirms holds both the
//! vehicle's certificate and the address (and is audited). A contact left on the portal
//! serves the one vehicle whose certificate the citizen showed.

use std::time::Duration;

use chrono::Utc;
use kozomol_core::{ContactAddress, DeliveryChannel};
use kozomol_store::{CodeRequest, ContactConfirmed, NewContact, NewContactConfirmation, Store};
use sha2::{Digest, Sha256};

use super::message::Notice;
use super::sender::MessageSender;
use super::DeliveryError;

/// How long a code may be typed.
pub const CODE_VALID: Duration = Duration::from_secs(15 * 60);

/// A request waiting for its code: the handle the citizen names it by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmationRequested {
    pub handle: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// What a request for a contact's confirmation names.
#[derive(Clone, Debug)]
pub struct ContactRequest<'a> {
    /// The fine whose lookup by plate and certificate asked for it.
    pub resolution_number: &'a str,
    pub owner_id: &'a str,
    /// The plate key of that fine's vehicle.
    pub plate_key: &'a str,
    pub channel: DeliveryChannel,
    pub address: &'a str,
    /// `portal:{client}`: kept with the contact and in its audit row.
    pub requested_by: &'a str,
}

/// Checks the address, keeps the request, and sends the code by `sender` (the
/// channel's own). The request is stored before the code is sent, so no code goes
/// out that could not be confirmed; an address sent a few codes in the last hour
/// already gets none (`AddressBusy`).
pub async fn request_confirmation(
    store: &dyn Store,
    sender: &dyn MessageSender,
    request: ContactRequest<'_>,
) -> Result<ConfirmationRequested, DeliveryError> {
    let owner_id = super::contact_owner(request.owner_id)?;
    let address = ContactAddress::parse(request.channel, request.address)?;
    let mut random = [0u8; 20];
    getrandom::getrandom(&mut random).map_err(|e| DeliveryError::Task(e.to_string()))?;
    let handle = hex::encode(&random[..16]);
    let code = code_from(&random[16..]);
    let expires_at = Utc::now()
        + chrono::Duration::from_std(CODE_VALID).map_err(|e| DeliveryError::Task(e.to_string()))?;
    let kept = store
        .request_contact_confirmation(&NewContactConfirmation {
            handle: handle.clone(),
            resolution_number: request.resolution_number.to_owned(),
            contact: NewContact {
                owner_id: owner_id.to_owned(),
                address: address.clone(),
                added_by: request.requested_by.to_owned(),
                plate_key: Some(request.plate_key.to_owned()),
            },
            code_sha256: code_sha256(&handle, &code),
            expires_at,
        })
        .await?;
    if kept == CodeRequest::AddressBusy {
        return Err(DeliveryError::AddressBusy);
    }
    let text = code_text(&code);
    let notice = Notice {
        to: address.as_str().to_owned(),
        number: request.resolution_number.to_owned(),
        subject: "Код подтверждения".to_owned(),
        text,
        reference: format!("kozomol-contact-{handle}"),
        pdf: None,
        subscription: None,
    };
    sender
        .send(&notice)
        .await
        .map_err(DeliveryError::CodeNotSent)?;
    Ok(ConfirmationRequested { handle, expires_at })
}

/// Judges a code typed (by `by`, `portal:{client}`) for the request `handle` of
/// resolution `number`; the right one stores the contact. A code that is not six
/// digits is no try at all.
pub async fn confirm(
    store: &dyn Store,
    number: &str,
    handle: &str,
    typed: &str,
    by: &str,
) -> Result<ContactConfirmed, DeliveryError> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DeliveryError::CodeMalformed);
    }
    Ok(store
        .confirm_contact(number, handle, &code_sha256(handle, &code), by)
        .await?)
}

/// Six digits from random bytes: 32 bits modulo a million, biased by under 0.03 %.
fn code_from(random: &[u8]) -> String {
    let value = random
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    format!("{:06}", value % 1_000_000)
}

/// What is stored of a code: its SHA-256 with the request's handle, so that the same
/// code of two requests is never the same row value.
fn code_sha256(handle: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{handle}:{code}").as_bytes()))
}

/// The message: the code, how long it holds, and what to do if no one asked for it.
pub fn code_text(code: &str) -> String {
    let minutes = CODE_VALID.as_secs() / 60;
    format!(
        "Код подтверждения для уведомлений о штрафах: {code}. Действует {minutes} минут. \
         Если вы его не запрашивали, никому его не сообщайте."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_from_the_random_bytes() {
        for (bytes, code) in [
            ([0u8, 0, 0, 0], "000000"),
            ([0, 0, 0, 7], "000007"),
            ([0, 0x0f, 0x42, 0x3f], "999999"),
            ([0, 0x0f, 0x42, 0x40], "000000"),
            ([0xff, 0xff, 0xff, 0xff], "967295"),
        ] {
            assert_eq!(code_from(&bytes), code, "{bytes:?}");
        }
    }

    #[test]
    fn a_stored_code_depends_on_its_request() {
        assert_ne!(code_sha256("a", "123456"), code_sha256("b", "123456"));
        assert_eq!(code_sha256("a", "123456"), code_sha256("a", "123456"));
        assert_eq!(code_sha256("a", "123456").len(), 64);
    }

    #[test]
    fn the_message_names_the_code_and_its_time() {
        let text = code_text("012345");
        assert!(
            text.contains("012345") && text.contains("15 минут"),
            "{text}"
        );
    }
}
