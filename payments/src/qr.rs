//! Payment QR payloads: EMVCo merchant-presented TLV text, in its Kyrgyz national form
//! (SHA-256 checksum) and in EMVCo's own form (CRC-16), for Kazakhstan.
//!
//! A payload is a run of fields: a two-digit tag, a two-digit length, then that many
//! characters of value. Template fields (26-51, 62, 64, 80-99) hold fields of their own.
//! Field 63, always last with length 04, is the checksum:
//! - Kyrgyz national QR: the last four lower-case hex digits of SHA-256 over every
//!   character before `6304`;
//! - EMVCo: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over everything up to and
//!   including `6304`, as four upper-case hex digits.
//!
//! Lengths count characters, not bytes; checksums are taken over the UTF-8 bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kozomol_core::{Currency, Jurisdiction, Money};
use sha2::{Digest, Sha256};

use crate::code::PaymentCode;
use crate::error::QrError;

/// The merchant account template of the Kyrgyz national form.
pub const KG_MERCHANT_TEMPLATE: u8 = 32;
/// The merchant account template of kozomol's EMVCo form: the first of the tags (26-51)
/// EMVCo leaves to payment systems, until an acquirer in Kazakhstan assigns another.
pub const EMVCO_MERCHANT_TEMPLATE: u8 = 26;
/// ISO 18245 merchant category code 9222, "Fines".
pub const MCC_FINES: &str = "9222";

const MAX_VALUE_LEN: usize = 99;
/// EMVCo limits: amount 13, merchant name 25, merchant city 15 characters.
const MAX_AMOUNT_LEN: usize = 13;
const EMVCO_MAX_NAME_LEN: usize = 25;
const EMVCO_MAX_CITY_LEN: usize = 15;

const TAG_FORMAT: u8 = 0;
const TAG_INITIATION: u8 = 1;
const TAG_MCC: u8 = 52;
const TAG_CURRENCY: u8 = 53;
const TAG_AMOUNT: u8 = 54;
const TAG_COUNTRY: u8 = 58;
const TAG_NAME: u8 = 59;
const TAG_CITY: u8 = 60;
const TAG_ADDITIONAL: u8 = 62;
const TAG_CHECKSUM: u8 = 63;
/// Bill number, inside the additional data template 62.
const SUB_TAG_BILL_NUMBER: u8 = 1;
/// Point of initiation 12: dynamic, one payment of one amount.
const DYNAMIC: &str = "12";

/// Whether a field with this tag holds fields of its own.
pub fn is_template(tag: u8) -> bool {
    matches!(tag, 26..=51 | 62 | 64 | 80..=99)
}

/// One field of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlvField {
    tag: u8,
    value: String,
    sub_fields: Vec<TlvField>,
}

impl TlvField {
    /// The tag, 0-99 (written with two digits).
    pub fn tag(&self) -> u8 {
        self.tag
    }

    /// The raw value, for a template the text of its sub-fields.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The parsed sub-fields of a template; empty for other fields.
    pub fn sub_fields(&self) -> &[TlvField] {
        &self.sub_fields
    }

    /// The first sub-field with this tag.
    pub fn sub_field(&self, tag: u8) -> Option<&TlvField> {
        self.sub_fields.iter().find(|f| f.tag == tag)
    }
}

/// Parses a payload into its fields, and template fields into their sub-fields.
/// Error offsets count characters from the start of `payload`.
pub fn parse_tlv(payload: &str) -> Result<Vec<TlvField>, QrError> {
    let chars: Vec<char> = payload.chars().collect();
    parse_fields(&chars, 0)
}

fn two_digits(a: char, b: char) -> Option<u8> {
    let high = u8::try_from(a.to_digit(10)?).ok()?;
    let low = u8::try_from(b.to_digit(10)?).ok()?;
    Some(high * 10 + low)
}

fn parse_fields(chars: &[char], base: usize) -> Result<Vec<TlvField>, QrError> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        let at = base + pos;
        if chars.len() - pos < 4 {
            return Err(QrError::TruncatedHeader { at });
        }
        let tag = two_digits(chars[pos], chars[pos + 1]).ok_or(QrError::NonDigitTag { at })?;
        let len = usize::from(
            two_digits(chars[pos + 2], chars[pos + 3])
                .ok_or(QrError::NonDigitLength { tag, at })?,
        );
        let start = pos + 4;
        let left = chars.len() - start;
        if len > left {
            return Err(QrError::TruncatedValue { tag, at, len, left });
        }
        let end = start + len;
        let value_chars = &chars[start..end];
        let sub_fields = if is_template(tag) {
            parse_fields(value_chars, base + start)?
        } else {
            Vec::new()
        };
        fields.push(TlvField {
            tag,
            value: value_chars.iter().collect(),
            sub_fields,
        });
        pos = end;
    }
    Ok(fields)
}

/// Which checksum a payload carries in field 63.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// Kyrgyz national QR: last four lower-case hex digits of SHA-256.
    KgSha256,
    /// EMVCo: CRC-16/CCITT-FALSE as four upper-case hex digits.
    EmvcoCrc16,
}

/// Checks a payload's structure and its checksum, and says which form it has.
///
/// The payload must parse, start with field 00 and end with field 63 holding four hex
/// digits, with no other field 63. The checksum must match one of the two forms exactly
/// (case included). The other rules of a form (currency, amount) are not checked here.
pub fn verify(payload: &str) -> Result<Checksum, QrError> {
    let fields = parse_tlv(payload)?;
    if fields.first().map(TlvField::tag) != Some(TAG_FORMAT) {
        return Err(QrError::MissingFormatIndicator);
    }
    let position = fields
        .iter()
        .position(|f| f.tag == TAG_CHECKSUM)
        .ok_or(QrError::MissingChecksum)?;
    if position + 1 != fields.len() {
        return Err(QrError::ChecksumNotLast);
    }
    let found = &fields[position].value;
    if found.len() != 4 || !found.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(QrError::BadChecksumFormat);
    }
    // The payload ends with the ASCII text `6304` and four ASCII hex digits.
    let through_tag = &payload[..payload.len() - 4];
    let before_tag = &through_tag[..through_tag.len() - 4];
    if *found == kg_checksum(before_tag) {
        Ok(Checksum::KgSha256)
    } else if *found == emvco_checksum(through_tag) {
        Ok(Checksum::EmvcoCrc16)
    } else {
        Err(QrError::ChecksumMismatch {
            found: found.clone(),
        })
    }
}

/// Kyrgyz checksum: the last four lower-case hex digits of SHA-256 over `before_6304`.
pub fn kg_checksum(before_6304: &str) -> String {
    let digest = Sha256::digest(before_6304.as_bytes());
    hex::encode(&digest[digest.len() - 2..])
}

/// EMVCo checksum: CRC-16/CCITT-FALSE over `through_6304` as four upper-case hex digits.
pub fn emvco_checksum(through_6304: &str) -> String {
    format!("{:04X}", crc16_ccitt_false(through_6304.as_bytes()))
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final
/// XOR.
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The payee of kozomol's payment QR codes: the merchant account its bank assigned.
///
/// The account template (field 32 in the Kyrgyz form, 26 in the EMVCo form) holds the
/// globally unique id as sub-field 00, then the other sub-fields in tag order. In the
/// Kyrgyz samples banks use 01 for a service or app id, 10 for the account and 11-13 for
/// bank-specific settings; take them from the bank's onboarding letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantAccount {
    guid: String,
    sub_fields: BTreeMap<u8, String>,
    name: String,
    city: Option<String>,
}

fn check_value(field: &str, value: &str, max: usize) -> Result<(), QrError> {
    let len = value.chars().count();
    if len == 0 {
        return Err(QrError::EmptyField {
            field: field.to_owned(),
        });
    }
    if len > max {
        return Err(QrError::FieldTooLong {
            field: field.to_owned(),
            len,
            max,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(QrError::ControlCharacter {
            field: field.to_owned(),
        });
    }
    Ok(())
}

impl MerchantAccount {
    /// A merchant with its globally unique id (e.g. `qr.<bank>.kg`) and its name as the
    /// payer's app shows it (field 59).
    pub fn new(guid: &str, name: &str) -> Result<MerchantAccount, QrError> {
        check_value("merchant guid", guid, MAX_VALUE_LEN)?;
        check_value("merchant name", name, MAX_VALUE_LEN)?;
        Ok(MerchantAccount {
            guid: guid.to_owned(),
            sub_fields: BTreeMap::new(),
            name: name.to_owned(),
            city: None,
        })
    }

    /// Adds sub-field `tag` (01-99) of the account template.
    pub fn with_sub_field(mut self, tag: u8, value: &str) -> Result<MerchantAccount, QrError> {
        if !(1..=99).contains(&tag) {
            return Err(QrError::InvalidSubTag(tag));
        }
        if self.sub_fields.contains_key(&tag) {
            return Err(QrError::DuplicateSubField(tag));
        }
        check_value(
            &format!("merchant sub-field {tag:02}"),
            value,
            MAX_VALUE_LEN,
        )?;
        self.sub_fields.insert(tag, value.to_owned());
        Ok(self)
    }

    /// The merchant city (field 60), which the EMVCo form needs and the Kyrgyz form omits.
    pub fn with_city(mut self, city: &str) -> Result<MerchantAccount, QrError> {
        check_value("merchant city", city, MAX_VALUE_LEN)?;
        self.city = Some(city.to_owned());
        Ok(self)
    }

    pub fn guid(&self) -> &str {
        &self.guid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn city(&self) -> Option<&str> {
        self.city.as_deref()
    }

    /// The sub-fields after the guid, in tag order.
    pub fn sub_fields(&self) -> impl Iterator<Item = (u8, &str)> {
        self.sub_fields.iter().map(|(t, v)| (*t, v.as_str()))
    }

    /// The value of the account template: guid as 00, then the sub-fields.
    fn template(&self, template_tag: u8) -> Result<String, QrError> {
        let mut out = Writer::default();
        out.field(0, &self.guid, MAX_VALUE_LEN)?;
        for (tag, value) in self.sub_fields() {
            out.field(tag, value, MAX_VALUE_LEN)?;
        }
        out.finish_field(template_tag)
    }
}

/// Writes fields one after another.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn field(&mut self, tag: u8, value: &str, max: usize) -> Result<(), QrError> {
        check_value(&format!("{tag:02}"), value, max)?;
        let len = value.chars().count();
        write!(self.out, "{tag:02}{len:02}{value}").expect("writing to a String cannot fail");
        Ok(())
    }

    /// Checks that the fields written fit one template field's value.
    fn finish_field(self, tag: u8) -> Result<String, QrError> {
        check_value(&format!("{tag:02}"), &self.out, MAX_VALUE_LEN)?;
        Ok(self.out)
    }
}

fn check_amount(amount: Money, currency: Currency) -> Result<(), QrError> {
    if amount.currency != currency {
        return Err(QrError::WrongCurrency {
            expected: currency,
            found: amount.currency,
        });
    }
    if amount.minor <= 0 {
        return Err(QrError::NonPositiveAmount {
            minor: amount.minor,
        });
    }
    Ok(())
}

fn check_jurisdiction(code: &PaymentCode, jurisdiction: Jurisdiction) -> Result<(), QrError> {
    if code.jurisdiction() != jurisdiction {
        return Err(QrError::WrongJurisdiction {
            expected: jurisdiction,
            found: code.jurisdiction(),
        });
    }
    Ok(())
}

/// Additional data template 62 with the payment code as bill number (sub-field 01).
fn bill_number(code: &PaymentCode) -> Result<String, QrError> {
    let mut out = Writer::default();
    out.field(SUB_TAG_BILL_NUMBER, &code.to_string(), MAX_VALUE_LEN)?;
    out.finish_field(TAG_ADDITIONAL)
}

/// The payment QR in the form of the code's own jurisdiction: the Kyrgyz national form
/// for a Kyrgyz code, EMVCo for a Kazakh one.
pub fn payment_payload(
    merchant: &MerchantAccount,
    payment_code: &PaymentCode,
    amount: Money,
) -> Result<String, QrError> {
    match payment_code.jurisdiction() {
        Jurisdiction::Kg => kg_payment_payload(merchant, payment_code, amount),
        Jurisdiction::Kz => emvco_payment_payload(merchant, payment_code, amount),
    }
}

/// kozomol's payment QR for one fine (or receipt) in the Kyrgyz national form.
///
/// Fields: 00 `01`, 01 `12` (dynamic), 32 merchant account, 52 `9222`, 53 `417`, 54 the
/// amount in whole tyiyn, 59 merchant name, 62 with the payment code as bill number 01,
/// 63 the SHA-256 checksum. No 58 or 60. The code must be a Kyrgyz one and the amount a
/// positive sum in KGS.
pub fn kg_payment_payload(
    merchant: &MerchantAccount,
    payment_code: &PaymentCode,
    amount: Money,
) -> Result<String, QrError> {
    check_jurisdiction(payment_code, Jurisdiction::Kg)?;
    check_amount(amount, Currency::KGS)?;
    let mut out = Writer::default();
    out.field(TAG_FORMAT, "01", MAX_VALUE_LEN)?;
    out.field(TAG_INITIATION, DYNAMIC, MAX_VALUE_LEN)?;
    out.field(
        KG_MERCHANT_TEMPLATE,
        &merchant.template(KG_MERCHANT_TEMPLATE)?,
        MAX_VALUE_LEN,
    )?;
    out.field(TAG_MCC, MCC_FINES, MAX_VALUE_LEN)?;
    out.field(TAG_CURRENCY, Currency::KGS.numeric(), MAX_VALUE_LEN)?;
    out.field(TAG_AMOUNT, &amount.minor.to_string(), MAX_AMOUNT_LEN)?;
    out.field(TAG_NAME, merchant.name(), MAX_VALUE_LEN)?;
    out.field(TAG_ADDITIONAL, &bill_number(payment_code)?, MAX_VALUE_LEN)?;
    let mut payload = out.out;
    let checksum = kg_checksum(&payload);
    payload.push_str("6304");
    payload.push_str(&checksum);
    Ok(payload)
}

/// kozomol's payment QR for one fine (or receipt) in the EMVCo form, for Kazakhstan.
///
/// Fields: 00 `01`, 01 `12` (dynamic), 26 merchant account, 52 `9222`, 53 `398`, 54 the
/// amount in tenge with two decimals (`4325.00`), 58 `KZ`, 59 merchant name (at most 25
/// characters), 60 merchant city (at most 15), 62 with the payment code as bill number
/// 01, 63 the CRC-16. The code must be a Kazakh one and the amount a positive sum in KZT.
pub fn emvco_payment_payload(
    merchant: &MerchantAccount,
    payment_code: &PaymentCode,
    amount: Money,
) -> Result<String, QrError> {
    check_jurisdiction(payment_code, Jurisdiction::Kz)?;
    check_amount(amount, Currency::KZT)?;
    let city = merchant.city().ok_or(QrError::MissingCity)?;
    let mut out = Writer::default();
    out.field(TAG_FORMAT, "01", MAX_VALUE_LEN)?;
    out.field(TAG_INITIATION, DYNAMIC, MAX_VALUE_LEN)?;
    out.field(
        EMVCO_MERCHANT_TEMPLATE,
        &merchant.template(EMVCO_MERCHANT_TEMPLATE)?,
        MAX_VALUE_LEN,
    )?;
    out.field(TAG_MCC, MCC_FINES, MAX_VALUE_LEN)?;
    out.field(TAG_CURRENCY, Currency::KZT.numeric(), MAX_VALUE_LEN)?;
    let decimal = format!("{}.{:02}", amount.minor / 100, amount.minor % 100);
    out.field(TAG_AMOUNT, &decimal, MAX_AMOUNT_LEN)?;
    out.field(TAG_COUNTRY, "KZ", MAX_VALUE_LEN)?;
    out.field(TAG_NAME, merchant.name(), EMVCO_MAX_NAME_LEN)?;
    out.field(TAG_CITY, city, EMVCO_MAX_CITY_LEN)?;
    out.field(TAG_ADDITIONAL, &bill_number(payment_code)?, MAX_VALUE_LEN)?;
    let mut payload = out.out;
    payload.push_str("6304");
    let checksum = emvco_checksum(&payload);
    payload.push_str(&checksum);
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::CodeKind;

    // Test vectors: public reference contracts, copied unchanged from
    // shared/reference/qr/ (see shared/reference/README.md, section qr/).
    // kg-samples.txt: real merchant payloads of Kyrgyz banks (Demir Bank, Finik).
    const KG_SAMPLES: [&str; 6] = [
        "00020101021132590015qr.demirbank.kg01047001101611800003896513311202111302125204482953034175909DEMIRBANK6304dcb6",
        "00020101021132590015qr.demirbank.kg01047001101611800003478401861202111302125204482953034175909DEMIRBANK63049e3a",
        "00020101021232810011qr.finik.kg0114averspay-items1032bbfd79c838a6483eb57bc42ea362fa811202121302125204482953034175405500005908Finik-QR6304a55c",
        "00020101021232810011qr.finik.kg0114averspay-items1032f51f3d85c0da4eeab638f8ed65f0a3831202121302125204482953034175405500005908Finik-QR6304e37c",
        "00020101021232810011qr.finik.kg0114averspay-items1032946f1ce95e414d5b965a9e8574a95f361202121302125204482953034175405100005908Finik-QR63042d14",
        "00020101021232990015qr.demirbank.kg0108ib_andro1016118000035393208912021213021211328454d5b3ee5d47c7b61c0a0b07bb939a5204482953034175405100535909DEMIRBANK6304283f",
    ];
    // emvco-sample.txt: the published EMVCo sample, CRC 1FF2.
    const EMVCO_SAMPLE: &str = "00020101021252044131153137210116372101160123456789ABCDE6016Banteay Meanchey5913Kuntheas Shop5802KH540510.005303840621201081234567863041FF2";

    fn kg_merchant() -> MerchantAccount {
        MerchantAccount::new("qr.demirbank.kg", "KOZOMOL")
            .and_then(|m| m.with_sub_field(1, "7001"))
            .and_then(|m| m.with_sub_field(10, "1180000389651331"))
            .expect("test merchant")
    }

    fn kz_merchant() -> MerchantAccount {
        MerchantAccount::new("kz.example.qr", "KOZOMOL ALMATY")
            .and_then(|m| m.with_sub_field(1, "KZ000000000000000001"))
            .and_then(|m| m.with_city("Almaty"))
            .expect("test merchant")
    }

    fn kg_code() -> PaymentCode {
        PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, 12_345).expect("code")
    }

    fn kz_code() -> PaymentCode {
        PaymentCode::new(CodeKind::Fine, Jurisdiction::Kz, 2026, 7, 42).expect("code")
    }

    fn field(fields: &[TlvField], tag: u8) -> &TlvField {
        fields
            .iter()
            .find(|f| f.tag() == tag)
            .unwrap_or_else(|| panic!("field {tag:02} present"))
    }

    #[test]
    fn every_sample_verifies_in_its_form() {
        for sample in KG_SAMPLES {
            assert_eq!(verify(sample), Ok(Checksum::KgSha256), "{sample}");
        }
        assert_eq!(verify(EMVCO_SAMPLE), Ok(Checksum::EmvcoCrc16));
    }

    #[test]
    fn samples_parse_into_nested_fields() {
        let fields = parse_tlv(KG_SAMPLES[5]).expect("sample parses");
        let tags: Vec<u8> = fields.iter().map(TlvField::tag).collect();
        assert_eq!(tags, [0, 1, 32, 52, 53, 54, 59, 63]);
        let account = field(&fields, 32);
        assert_eq!(account.value().len(), 99);
        let sub_tags: Vec<u8> = account.sub_fields().iter().map(TlvField::tag).collect();
        assert_eq!(sub_tags, [0, 1, 10, 12, 13, 11]);
        assert_eq!(
            account.sub_field(0).map(TlvField::value),
            Some("qr.demirbank.kg")
        );
        assert_eq!(
            account.sub_field(10).map(TlvField::value),
            Some("1180000353932089")
        );
        assert_eq!(field(&fields, 54).value(), "10053");
        assert!(field(&fields, 54).sub_fields().is_empty());

        let fields = parse_tlv(EMVCO_SAMPLE).expect("sample parses");
        assert_eq!(field(&fields, 54).value(), "10.00");
        assert_eq!(field(&fields, 60).value(), "Banteay Meanchey");
        assert_eq!(
            field(&fields, 62).sub_field(1).map(TlvField::value),
            Some("12345678")
        );
        // 15 is a primitive merchant account field (02-25), not a template.
        assert!(field(&fields, 15).sub_fields().is_empty());
    }

    #[test]
    fn any_one_character_change_fails() {
        for sample in KG_SAMPLES.iter().chain([&EMVCO_SAMPLE]) {
            let chars: Vec<char> = sample.chars().collect();
            for i in 0..chars.len() {
                let mut changed = chars.clone();
                changed[i] = if chars[i] == '7' { '8' } else { '7' };
                let changed: String = changed.into_iter().collect();
                assert!(verify(&changed).is_err(), "{changed}");
            }
        }
    }

    #[test]
    fn checksum_helpers_match_known_values() {
        // The CRC-16/CCITT-FALSE check value of the catalogue of CRCs.
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc16_ccitt_false(b""), 0xFFFF);
        let sample = KG_SAMPLES[0];
        assert_eq!(kg_checksum(&sample[..sample.len() - 8]), "dcb6");
        assert_eq!(
            emvco_checksum(&EMVCO_SAMPLE[..EMVCO_SAMPLE.len() - 4]),
            "1FF2"
        );
    }

    #[test]
    fn tlv_faults_are_reported_with_their_offset() {
        let table: [(&str, QrError); 8] = [
            ("000201010", QrError::TruncatedHeader { at: 6 }),
            ("00", QrError::TruncatedHeader { at: 0 }),
            ("0002010A0201", QrError::NonDigitTag { at: 6 }),
            ("00020101x212", QrError::NonDigitLength { tag: 1, at: 6 }),
            (
                "000201011212",
                QrError::TruncatedValue {
                    tag: 1,
                    at: 6,
                    len: 12,
                    left: 2,
                },
            ),
            // Inside template 32: sub-field 00 claims 20 characters of the 5 there are.
            (
                "00020132090020qr.kg",
                QrError::TruncatedValue {
                    tag: 0,
                    at: 10,
                    len: 20,
                    left: 5,
                },
            ),
            ("000201320400a1", QrError::NonDigitLength { tag: 0, at: 10 }),
            // Characters, not bytes: `ü` is one character of the value.
            ("0002015903Tüv63", QrError::TruncatedHeader { at: 13 }),
        ];
        for (payload, want) in table {
            assert_eq!(parse_tlv(payload), Err(want.clone()), "{payload}");
            assert_eq!(verify(payload), Err(want), "{payload}");
        }
        assert_eq!(parse_tlv(""), Ok(Vec::new()));
        assert_eq!(
            QrError::TruncatedValue {
                tag: 1,
                at: 6,
                len: 12,
                left: 2
            }
            .to_string(),
            "field 01 at offset 6 declares 12 characters but only 2 remain"
        );
    }

    #[test]
    fn checksum_field_faults() {
        let table = [
            ("", QrError::MissingFormatIndicator),
            ("0102115802KG", QrError::MissingFormatIndicator),
            ("0002010102115802KG", QrError::MissingChecksum),
            ("00020163041FF25802KG", QrError::ChecksumNotLast),
            ("0002016304ABCD63041FF2", QrError::ChecksumNotLast),
            ("000201630212", QrError::BadChecksumFormat),
            ("0002016304ZZZZ", QrError::BadChecksumFormat),
            (
                "0002016304abcd",
                QrError::ChecksumMismatch {
                    found: "abcd".into(),
                },
            ),
        ];
        for (payload, want) in table {
            assert_eq!(verify(payload), Err(want), "{payload}");
        }
        // The EMVCo checksum in lower case is not accepted.
        let lower = EMVCO_SAMPLE.replace("1FF2", "1ff2");
        assert_eq!(
            verify(&lower),
            Err(QrError::ChecksumMismatch {
                found: "1ff2".into()
            })
        );
        // A KG checksum in upper case is not accepted either.
        let upper = KG_SAMPLES[0].replace("dcb6", "DCB6");
        assert!(verify(&upper).is_err());
    }

    #[test]
    fn kg_payload_builds_parses_back_and_verifies() {
        let code = kg_code();
        let payload = kg_payment_payload(&kg_merchant(), &code, Money::major(5_000, Currency::KGS))
            .expect("builds");
        assert_eq!(
            payload,
            format!(
                "000201010212\
                 32470015qr.demirbank.kg01047001101611800003896513315204922253034175406500000\
                 5907KOZOMOL62220118{code}6304{}",
                &payload[payload.len() - 4..]
            )
        );
        assert_eq!(verify(&payload), Ok(Checksum::KgSha256));
        let fields = parse_tlv(&payload).expect("parses");
        let tags: Vec<u8> = fields.iter().map(TlvField::tag).collect();
        assert_eq!(tags, [0, 1, 32, 52, 53, 54, 59, 62, 63]);
        assert_eq!(field(&fields, 54).value(), "500000");
        let bill = field(&fields, 62).sub_field(1).expect("bill number");
        assert_eq!(PaymentCode::parse(bill.value()), Ok(code));
        assert_eq!(
            field(&fields, 32).sub_field(0).map(TlvField::value),
            Some("qr.demirbank.kg")
        );
    }

    #[test]
    fn emvco_payload_builds_parses_back_and_verifies() {
        let code = kz_code();
        let payload =
            emvco_payment_payload(&kz_merchant(), &code, Money::new(432_505, Currency::KZT))
                .expect("builds");
        assert_eq!(verify(&payload), Ok(Checksum::EmvcoCrc16));
        let fields = parse_tlv(&payload).expect("parses");
        let tags: Vec<u8> = fields.iter().map(TlvField::tag).collect();
        assert_eq!(tags, [0, 1, 26, 52, 53, 54, 58, 59, 60, 62, 63]);
        assert_eq!(field(&fields, 1).value(), "12");
        assert_eq!(field(&fields, 53).value(), "398");
        assert_eq!(field(&fields, 54).value(), "4325.05");
        assert_eq!(field(&fields, 58).value(), "KZ");
        assert_eq!(field(&fields, 60).value(), "Almaty");
        let bill = field(&fields, 62).sub_field(1).expect("bill number");
        assert_eq!(PaymentCode::parse(bill.value()), Ok(code));
        // Tiyn below one tenge keep two decimals.
        let small = emvco_payment_payload(&kz_merchant(), &code, Money::new(5, Currency::KZT))
            .expect("builds");
        assert_eq!(
            field(&parse_tlv(&small).expect("parses"), 54).value(),
            "0.05"
        );
    }

    /// The two annotated examples of docs/payments.md, byte for byte.
    #[test]
    fn docs_examples() {
        let kg = MerchantAccount::new("qr.examplebank.kg", "KOZOMOL")
            .and_then(|m| m.with_sub_field(1, "7001"))
            .and_then(|m| m.with_sub_field(10, "1234567890123456"))
            .expect("merchant");
        let payload = kg_payment_payload(&kg, &kg_code(), Money::major(5_000, Currency::KGS))
            .expect("builds");
        assert_eq!(
            payload,
            "00020101021232490017qr.examplebank.kg0104700110161234567890123456\
             52049222530341754065000005907KOZOMOL62220118112600100000123454630409a0"
        );
        let kz = MerchantAccount::new("kz.example.qr", "KOZOMOL ALMATY")
            .and_then(|m| m.with_sub_field(1, "KZ000000000000000001"))
            .and_then(|m| m.with_city("Almaty"))
            .expect("merchant");
        let payload = emvco_payment_payload(&kz, &kz_code(), Money::major(43_250, Currency::KZT))
            .expect("builds");
        assert_eq!(
            payload,
            "00020101021226410013kz.example.qr0120KZ000000000000000001\
             520492225303398540843250.005802KZ5914KOZOMOL ALMATY6006Almaty\
             62220118122600700000000421\
             6304F20B"
        );
    }

    #[test]
    fn receipt_codes_are_payable_too() {
        let receipt =
            PaymentCode::new(CodeKind::Receipt, Jurisdiction::Kg, 2026, 1, 9).expect("code");
        let payload = kg_payment_payload(&kg_merchant(), &receipt, Money::major(1, Currency::KGS))
            .expect("builds");
        assert_eq!(verify(&payload), Ok(Checksum::KgSha256));
    }

    #[test]
    fn builders_reject_what_does_not_fit() {
        let kg = kg_merchant();
        let kz = kz_merchant();
        let som = Money::major(100, Currency::KGS);
        let tenge = Money::major(100, Currency::KZT);
        assert_eq!(
            kg_payment_payload(&kg, &kg_code(), tenge),
            Err(QrError::WrongCurrency {
                expected: Currency::KGS,
                found: Currency::KZT
            })
        );
        assert_eq!(
            emvco_payment_payload(&kz, &kz_code(), som),
            Err(QrError::WrongCurrency {
                expected: Currency::KZT,
                found: Currency::KGS
            })
        );
        for minor in [0, -1, i64::MIN] {
            assert_eq!(
                kg_payment_payload(&kg, &kg_code(), Money::new(minor, Currency::KGS)),
                Err(QrError::NonPositiveAmount { minor })
            );
            assert_eq!(
                emvco_payment_payload(&kz, &kz_code(), Money::new(minor, Currency::KZT)),
                Err(QrError::NonPositiveAmount { minor })
            );
        }
        assert_eq!(
            kg_payment_payload(&kg, &kz_code(), som),
            Err(QrError::WrongJurisdiction {
                expected: Jurisdiction::Kg,
                found: Jurisdiction::Kz
            })
        );
        assert_eq!(
            emvco_payment_payload(&kz, &kg_code(), tenge),
            Err(QrError::WrongJurisdiction {
                expected: Jurisdiction::Kz,
                found: Jurisdiction::Kg
            })
        );
        // Amounts above 13 characters.
        assert_eq!(
            kg_payment_payload(
                &kg,
                &kg_code(),
                Money::new(10_000_000_000_000, Currency::KGS)
            ),
            Err(QrError::FieldTooLong {
                field: "54".into(),
                len: 14,
                max: 13
            })
        );
        assert_eq!(
            emvco_payment_payload(
                &kz,
                &kz_code(),
                Money::new(1_000_000_000_000, Currency::KZT)
            ),
            // 10000000000.00
            Err(QrError::FieldTooLong {
                field: "54".into(),
                len: 14,
                max: 13
            })
        );
        // The EMVCo form needs a city and keeps EMVCo's name and city limits.
        let no_city = MerchantAccount::new("kz.example.qr", "KOZOMOL").expect("merchant");
        assert_eq!(
            emvco_payment_payload(&no_city, &kz_code(), tenge),
            Err(QrError::MissingCity)
        );
        let long_name = MerchantAccount::new("kz.example.qr", &"N".repeat(26))
            .and_then(|m| m.with_city("Almaty"))
            .expect("merchant");
        assert_eq!(
            emvco_payment_payload(&long_name, &kz_code(), tenge),
            Err(QrError::FieldTooLong {
                field: "59".into(),
                len: 26,
                max: 25
            })
        );
        let long_city = MerchantAccount::new("kz.example.qr", "KOZOMOL")
            .and_then(|m| m.with_city(&"C".repeat(16)))
            .expect("merchant");
        assert_eq!(
            emvco_payment_payload(&long_city, &kz_code(), tenge),
            Err(QrError::FieldTooLong {
                field: "60".into(),
                len: 16,
                max: 15
            })
        );
    }

    #[test]
    fn merchant_fields_are_checked() {
        let long = "x".repeat(100);
        assert_eq!(
            MerchantAccount::new(&long, "KOZOMOL"),
            Err(QrError::FieldTooLong {
                field: "merchant guid".into(),
                len: 100,
                max: 99
            })
        );
        assert_eq!(
            MerchantAccount::new("qr.bank.kg", &long),
            Err(QrError::FieldTooLong {
                field: "merchant name".into(),
                len: 100,
                max: 99
            })
        );
        assert_eq!(
            MerchantAccount::new("", "KOZOMOL"),
            Err(QrError::EmptyField {
                field: "merchant guid".into()
            })
        );
        assert_eq!(
            MerchantAccount::new("qr.bank.kg", "KOZ\nOMOL"),
            Err(QrError::ControlCharacter {
                field: "merchant name".into()
            })
        );
        let m = MerchantAccount::new("qr.bank.kg", "KOZOMOL").expect("merchant");
        assert_eq!(
            m.clone().with_sub_field(0, "x"),
            Err(QrError::InvalidSubTag(0))
        );
        assert_eq!(
            m.clone().with_sub_field(100, "x"),
            Err(QrError::InvalidSubTag(100))
        );
        assert_eq!(
            m.clone()
                .with_sub_field(10, "a")
                .and_then(|m| m.with_sub_field(10, "b")),
            Err(QrError::DuplicateSubField(10))
        );
        assert_eq!(
            m.clone().with_sub_field(10, &long),
            Err(QrError::FieldTooLong {
                field: "merchant sub-field 10".into(),
                len: 100,
                max: 99
            })
        );
        // Each value fits, the template does not: 0010qr.bank.kg (14) + 1082 and 82
        // nines (86) = 100 characters.
        let wide = m
            .clone()
            .with_sub_field(10, &"9".repeat(82))
            .expect("sub-field fits");
        assert_eq!(
            kg_payment_payload(&wide, &kg_code(), Money::major(1, Currency::KGS)),
            Err(QrError::FieldTooLong {
                field: "32".into(),
                len: 100,
                max: 99
            })
        );
        // Sub-fields come out in tag order whatever order they were added in.
        let ordered = m
            .with_sub_field(10, "acc")
            .and_then(|m| m.with_sub_field(1, "svc"))
            .expect("merchant");
        let tags: Vec<u8> = ordered.sub_fields().map(|(t, _)| t).collect();
        assert_eq!(tags, [1, 10]);
        let payload = kg_payment_payload(&ordered, &kg_code(), Money::major(1, Currency::KGS))
            .expect("builds");
        assert!(
            payload.contains("32280010qr.bank.kg0103svc1003acc"),
            "{payload}"
        );
    }
}
