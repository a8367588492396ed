//! What a notice says, in Russian: the resolution's number, the amount (and the
//! discounted amount where the law grants one), the payment code and the link where
//! anyone can check the document (`{public_base_url}/v/{number}`). One short text for
//! SMS, a subject and a body for e-mail; the e-mail carries the PDF itself.

use kozomol_store::{ResolutionRecord, SubscriptionRecord};
use sha2::Digest;

use crate::resolution::wording;

/// A notice for one delivery, as the channel senders take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The phone number or e-mail address.
    pub to: String,
    pub number: String,
    /// The SMS text, or the e-mail's body.
    pub text: String,
    /// The e-mail's subject (unused by SMS).
    pub subject: String,
    /// Passed to the channel so that a repeated send (after a crash between sending and
    /// recording it) is recognised as the same message: [`delivery_reference`].
    pub reference: String,
    /// The resolution PDF, for channels that attach it.
    pub pdf: Option<Vec<u8>>,
    /// For a notice to a subscribed system: the subscription it answers.
    pub subscription: Option<SubscriptionRecord>,
}

/// `https://kozomol.example.kg/v/KG-BSK-2026-0000001`.
pub fn verification_url(public_base_url: &str, number: &str) -> String {
    format!("{}/v/{number}", public_base_url.trim_end_matches('/'))
}

/// Amounts as the document writes them, with plain spaces: some SMS gateways turn a
/// no-break space into `?`.
fn money(amount: kozomol_core::Money, resolution: &ResolutionRecord) -> String {
    wording::money(amount, resolution.jurisdiction).replace('\u{a0}', " ")
}

/// The SMS: one Cyrillic text of about three UCS-2 parts.
pub fn sms_text(resolution: &ResolutionRecord, public_base_url: &str) -> String {
    let discount = resolution
        .discounted
        .map(|d| {
            format!(
                " (при оплате в срок, указанный в постановлении, — {})",
                money(d, resolution)
            )
        })
        .unwrap_or_default();
    format!(
        "Постановление № {number} о штрафе {amount}{discount}. Код платежа {code}. \
         Проверить и скачать: {url}",
        number = resolution.number,
        amount = money(resolution.amount, resolution),
        code = resolution.payment_code,
        url = verification_url(public_base_url, &resolution.number),
    )
}

pub fn email_subject(resolution: &ResolutionRecord) -> String {
    format!(
        "Постановление № {} об административном правонарушении",
        resolution.number
    )
}

pub fn email_body(resolution: &ResolutionRecord, public_base_url: &str) -> String {
    let issued = wording::date(resolution.jurisdiction.local_date(resolution.issued_at));
    let discount = resolution
        .discounted
        .map(|d| {
            format!(
                "При оплате в срок, указанный в постановлении, — {}.\n",
                money(d, resolution)
            )
        })
        .unwrap_or_default();
    format!(
        "Здравствуйте.\n\n\
         В отношении Вас вынесено постановление № {number} от {issued} \
         об административном правонарушении (статья {article}).\n\n\
         Сумма штрафа: {amount}.\n\
         {discount}\
         Код платежа: {code}.\n\n\
         Постановление приложено к письму (PDF). Проверить его подлинность и скачать его \
         можно по ссылке:\n{url}\n\n\
         Сроки для оплаты со скидкой и для обжалования исчисляются со дня вручения \
         постановления.\n\n\
         Письмо отправлено автоматически, отвечать на него не нужно.\n",
        number = resolution.number,
        article = resolution.article,
        amount = money(resolution.amount, resolution),
        code = resolution.payment_code,
        url = verification_url(public_base_url, &resolution.number),
    )
}

/// The idempotency reference a delivery's message is sent under. A channel that dedupes
/// by reference (the SMS gateway) sends nothing for a reference it has seen: the first
/// send is `kozomol-delivery-{id}`, and after a message the channel reported failed
/// (the row keeps that message's id) the next carries a digest of it, so the resend
/// goes out, while a send retried after a time-out, whose fate is unknown, keeps the
/// reference it had and is never sent twice.
pub fn delivery_reference(
    delivery: kozomol_store::DeliveryId,
    failed_message: Option<&str>,
) -> String {
    match failed_message {
        None => format!("kozomol-delivery-{delivery}"),
        Some(failed) => {
            let digest = sha2::Sha256::digest(failed.as_bytes());
            format!(
                "kozomol-delivery-{delivery}-after-{}",
                &hex::encode(digest)[..16]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kozomol_core::{CaseId, Currency, Jurisdiction, Money};
    use kozomol_store::FrameLocation;

    fn resolution() -> ResolutionRecord {
        ResolutionRecord {
            number: "KG-BSK-2026-0000001".into(),
            case_id: CaseId(1),
            payment_code: "111260010000000014".into(),
            jurisdiction: Jurisdiction::Kg,
            article: "246 ч. 2".into(),
            units: 75,
            amount: Money::new(750_000, Currency::KGS),
            discounted: Some(Money::new(375_000, Currency::KGS)),
            issued_at: chrono::Utc
                .with_ymd_and_hms(2026, 3, 10, 20, 0, 0)
                .single()
                .expect("instant"),
            pdf_sha256: [0; 32],
            pdf_location: FrameLocation {
                segment: "seg-a-0000000001.kzs".into(),
                offset: 40,
                len: 1,
            },
            signature: vec![],
            signature_key_id: String::new(),
            signer: String::new(),
            repeat_of: None,
            delivered_at: None,
            delivered_via: None,
        }
    }

    #[test]
    fn the_sms_names_number_amounts_code_and_link() {
        let text = sms_text(&resolution(), "https://kozomol.example.kg/");
        assert_eq!(
            text,
            "Постановление № KG-BSK-2026-0000001 о штрафе 7 500,00 сом (при оплате в срок, \
             указанный в постановлении, — 3 750,00 сом). Код платежа 111260010000000014. \
             Проверить и скачать: https://kozomol.example.kg/v/KG-BSK-2026-0000001"
        );
        assert!(!text.contains('\u{a0}'));
    }

    #[test]
    fn the_email_dates_the_resolution_in_local_time() {
        let body = email_body(&resolution(), "https://kozomol.example.kg");
        // 20:00 UTC is 02:00 the next day in Bishkek.
        assert!(body.contains("от 11.03.2026"), "{body}");
        assert!(body.contains("https://kozomol.example.kg/v/KG-BSK-2026-0000001"));
        assert!(body.contains("Код платежа: 111260010000000014."));
        let mut plain = resolution();
        plain.discounted = None;
        assert!(!email_body(&plain, "x").contains("При оплате в срок"));
        assert_eq!(
            email_subject(&plain),
            "Постановление № KG-BSK-2026-0000001 об административном правонарушении"
        );
    }

    #[test]
    fn a_resend_after_a_failed_message_has_a_reference_of_its_own() {
        let id = kozomol_store::DeliveryId(17);
        let first = delivery_reference(id, None);
        let after_a = delivery_reference(id, Some("sg-000001"));
        let after_b = delivery_reference(id, Some("sg-000002"));
        assert_eq!(first, "kozomol-delivery-17");
        assert!(
            after_a.starts_with("kozomol-delivery-17-after-"),
            "{after_a}"
        );
        assert_eq!(after_a.len(), "kozomol-delivery-17-after-".len() + 16);
        // The same failed message, the same reference: a time-out's retry is one send.
        assert_eq!(after_a, delivery_reference(id, Some("sg-000001")));
        assert_ne!(after_a, after_b);
        assert_ne!(after_a, first);
        // Whatever the gateway's id holds, the reference keeps to safe characters.
        let odd = delivery_reference(id, Some("../ü id/"));
        assert!(
            odd.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{odd}"
        );
    }
}
