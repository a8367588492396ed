//! Delivering a resolution: the channels it reaches its addressee by, the states of one
//! delivery in the outbox, and the contacts citizens give (a phone number or an e-mail
//! address), checked once when they are taken so that the outbox never holds an
//! address no channel can use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// How a resolution reaches (or reached) its addressee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    /// A text message through the SMS gateway, to a phone number on file.
    Sms,
    /// An e-mail with the resolution attached, to an address on file.
    Email,
    /// A letter: the resolution printed in a batch and posted to the owner's address.
    Post,
    /// Delivered by another system (the state portal) that reports it to kozomol; a
    /// system subscribed to the owner's violations is sent a notice over X-Road first.
    Portal,
}

impl DeliveryChannel {
    pub const ALL: [DeliveryChannel; 4] = [
        DeliveryChannel::Sms,
        DeliveryChannel::Email,
        DeliveryChannel::Post,
        DeliveryChannel::Portal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryChannel::Sms => "sms",
            DeliveryChannel::Email => "email",
            DeliveryChannel::Post => "post",
            DeliveryChannel::Portal => "portal",
        }
    }

    /// Whether citizens can leave a contact for this channel.
    pub fn takes_contacts(self) -> bool {
        matches!(self, DeliveryChannel::Sms | DeliveryChannel::Email)
    }
}

impl FromStr for DeliveryChannel {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryChannel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| CoreError::UnknownDeliveryChannel(s.chars().take(40).collect()))
    }
}

impl fmt::Display for DeliveryChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one delivery stands in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Queued,
    /// Claimed by a worker that is handing it to the channel.
    Sending,
    /// The channel took it (gateway, mail server, a printed batch); not yet proven
    /// delivered, so no clock has started.
    Sent,
    /// Proven delivered: the proof is stored with it.
    Delivered,
    /// Given up after the allowed attempts.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Queued,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryState {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryState::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| CoreError::UnknownDeliveryState(s.chars().take(40).collect()))
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phone number (`+` and 8 to 15 digits, E.164) or an e-mail address, checked and
/// written one way: numbers without separators, e-mail domains in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ContactAddress {
    channel: DeliveryChannel,
    address: String,
}

/// The longest address SMTP carries (RFC 5321 4.5.3.1.3, less the angle brackets).
const EMAIL_MAX: usize = 254;
const LOCAL_PART_MAX: usize = 64;
const LABEL_MAX: usize = 63;

impl ContactAddress {
    /// Checks `raw` as an address of `channel` (`sms` or `email`). The error says what
    /// is wrong without repeating the input, which is personal data.
    pub fn parse(channel: DeliveryChannel, raw: &str) -> Result<Self, CoreError> {
        let address = match channel {
            DeliveryChannel::Sms => phone(raw),
            DeliveryChannel::Email => email(raw),
            other => Err(format!(
                "`{other}` takes no contacts: only sms and email do"
            )),
        }
        .map_err(|reason| CoreError::InvalidContact {
            channel: channel.as_str(),
            reason,
        })?;
        Ok(ContactAddress { channel, address })
    }

    pub fn phone(raw: &str) -> Result<Self, CoreError> {
        Self::parse(DeliveryChannel::Sms, raw)
    }

    pub fn email(raw: &str) -> Result<Self, CoreError> {
        Self::parse(DeliveryChannel::Email, raw)
    }

    pub fn channel(&self) -> DeliveryChannel {
        self.channel
    }

    /// The address as written: `+996555123456`, `asanov@mail.kg`.
    pub fn as_str(&self) -> &str {
        &self.address
    }
}

impl fmt::Display for ContactAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// E.164: `+`, the country code and the number, 8 to 15 digits in all. Spaces,
/// hyphens, dots and brackets are dropped; a leading `00` is the international prefix.
/// A national number (`0555 ...`) is refused: without its country it cannot be dialled
/// by a gateway abroad, and guessing the country would text a stranger.
fn phone(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("the phone number is empty".to_owned());
    }
    let mut digits = String::with_capacity(trimmed.len());
    let mut plus = false;
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '+' if i == 0 => plus = true,
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => {
                return Err(
                    "a phone number holds only digits, a leading +, spaces, hyphens and brackets"
                        .to_owned(),
                )
            }
        }
    }
    if !plus {
        match digits.strip_prefix("00") {
            Some(rest) => digits = rest.to_owned(),
            None => return Err(
                "write the number in international form, + and the country code (+996 555 123 456)"
                    .to_owned(),
            ),
        }
    }
    if digits.starts_with('0') {
        return Err("a country code never starts with 0".to_owned());
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(format!(
            "an international number has 8 to 15 digits, this one {}",
            digits.len()
        ));
    }
    Ok(format!("+{digits}"))
}

/// An address SMTP can carry without extensions: ASCII, one `@`, a dot-atom local part
/// (RFC 5322 3.2.3; quoted local parts are refused, no one gives one on a form) and a
/// domain name with a top-level domain of letters; written in lower case.
fn email(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("the e-mail address is empty".to_owned());
    }
    if !trimmed.is_ascii() {
        return Err("only ASCII e-mail addresses are taken (no Cyrillic domains)".to_owned());
    }
    if trimmed.len() > EMAIL_MAX {
        return Err(format!(
            "an e-mail address has at most {EMAIL_MAX} characters"
        ));
    }
    let Some((local, domain)) = trimmed.split_once('@') else {
        return Err("an e-mail address has an @".to_owned());
    };
    if domain.contains('@') {
        return Err("an e-mail address has one @".to_owned());
    }
    if local.is_empty() || local.len() > LOCAL_PART_MAX {
        return Err(format!(
            "the part before the @ has 1 to {LOCAL_PART_MAX} characters"
        ));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(atext))
    {
        return Err(
            "the part before the @ holds letters, digits and !#$%&'*+-/=?^_`{|}~, with single dots between them"
                .to_owned(),
        );
    }
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain after the @ has a dot (mail.kg)".to_owned());
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= LABEL_MAX
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!(
                "each part of the domain has 1 to {LABEL_MAX} letters, digits or inner hyphens"
            ));
        }
    }
    let top = labels.last().copied().unwrap_or_default();
    if top.len() < 2 || !top.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err("the domain ends in a top-level domain of letters (.kg, .com)".to_owned());
    }
    // Lower case whole: mail systems take the local part in any case, and an address
    // spelt ten ways must be one contact and one budget of codes, not ten.
    Ok(format!("{}@{domain}", local.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in DeliveryChannel::ALL {
            assert_eq!(c.as_str().parse::<DeliveryChannel>(), Ok(c));
        }
        for s in DeliveryState::ALL {
            assert_eq!(s.as_str().parse::<DeliveryState>(), Ok(s));
        }
        assert!("fax".parse::<DeliveryChannel>().is_err());
        assert!("lost".parse::<DeliveryState>().is_err());
    }

    #[test]
    fn phone_numbers_are_written_one_way() {
        for (raw, want) in [
            ("+996 555 123 456", "+996555123456"),
            ("+996-(555)-12-34-56", "+996555123456"),
            ("00996555123456", "+996555123456"),
            ("  +7 701 234 5678 ", "+77012345678"),
        ] {
            assert_eq!(
                ContactAddress::phone(raw).map(|a| a.address),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
        for raw in [
            "",
            "0555 123 456",
            "+0555123456",
            "+996 555",
            "+1234567890123456",
            "+996 555 12a 456",
            "996+555123456",
        ] {
            assert!(
                matches!(
                    ContactAddress::phone(raw),
                    Err(CoreError::InvalidContact { channel: "sms", .. })
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn email_addresses_are_checked() {
        for (raw, want) in [
            ("Asanov.B@Mail.KG", "asanov.b@mail.kg"),
            (" user+fines@sub.example.com ", "user+fines@sub.example.com"),
        ] {
            assert_eq!(
                ContactAddress::email(raw).map(|a| a.address),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
        for raw in [
            "",
            "no-at.kg",
            "a@b@c.kg",
            "@mail.kg",
            "a..b@mail.kg",
            ".a@mail.kg",
            "a@localhost",
            "a@-mail.kg",
            "a@mail.k",
            "a@mail.123",
            "асанов@mail.kg",
            "a b@mail.kg",
        ] {
            let err = ContactAddress::email(raw).expect_err(raw);
            assert!(
                matches!(
                    err,
                    CoreError::InvalidContact {
                        channel: "email",
                        ..
                    }
                ),
                "{raw}"
            );
            // The message explains without echoing the input.
            assert!(
                raw.trim().is_empty() || !err.to_string().contains(raw.trim()),
                "{err}"
            );
        }
    }

    #[test]
    fn post_and_portal_take_no_contacts() {
        assert!(ContactAddress::parse(DeliveryChannel::Post, "Бишкек").is_err());
        assert!(ContactAddress::parse(DeliveryChannel::Portal, "x").is_err());
    }
}
