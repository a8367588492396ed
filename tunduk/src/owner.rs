//! What the vehicle registry says about a plate, read leniently: a missing or malformed
//! optional field is left out, never fatal (real replies carry dates `0001-01-01`,
//! empty strings, numbers with spaces, house numbers that overflow `xsd:byte`); only a
//! reply that does not say who the owner is fails.
//!
//! `transportCurrentInfoResponse` (vehicles-service.wsdl) carries one `response` with
//! `status` (200 found, 203 not found), `address`, one `person` and one `car`. It has
//! no field for a company: a company owner is recognised by `ownerType` 2 or 4 or an
//! `organName` (fields of the sibling `transportCurrentArestInfo`, read when present),
//! or else by a 14-digit PIN starting with `0`, the form of a Kyrgyz organisation's
//! INN (a person's PIN starts with 1 or 2). Several `person` elements, or several
//! `response` elements, are read as several owners.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use roxmltree::Node;
use serde::{Deserialize, Serialize};

use crate::plate::plate_key;
use crate::xml::{self, VEHICLES_NS};
use crate::TundukError;

/// The answer to "who owns this plate".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "data", rename_all = "snake_case")]
pub enum OwnerLookup {
    /// Exactly one owner.
    Found(Box<OwnerRecord>),
    /// The registry names more than one owner; a person must choose.
    SeveralOwners(Vec<OwnerRecord>),
    /// The registry does not know the plate (status 203).
    NoData,
    /// Not a Kyrgyz plate: the registry was not asked.
    ForeignPlate,
}

/// The registry's answer with the X-Road message id of the exchange that brought it
/// (none where the registry was not asked: a foreign plate). A cached answer keeps
/// the id of the exchange it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerAnswer {
    pub lookup: OwnerLookup,
    pub exchange_id: Option<String>,
}

/// An owner and the vehicle as registered to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub owner: Owner,
    pub vehicle: Vehicle,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    Person(Person),
    Company(Company),
}

impl Owner {
    /// The name to print: "Surname Name Patronymic", or the company's name.
    pub fn display_name(&self) -> Option<String> {
        match self {
            Owner::Person(p) => join(&[&p.surname, &p.name, &p.patronymic]),
            Owner::Company(c) => c.name.clone(),
        }
    }

    pub fn address(&self) -> Option<&Address> {
        match self {
            Owner::Person(p) => p.address.as_ref(),
            Owner::Company(c) => c.address.as_ref(),
        }
    }

    /// PIN or INN, else the upper-case name: what tells two owners apart.
    fn identity(&self) -> String {
        match self {
            Owner::Person(Person { pin: Some(pin), .. })
            | Owner::Company(Company { inn: Some(pin), .. }) => pin.clone(),
            other => other.display_name().unwrap_or_default().to_uppercase(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Personal identification number (ПИН), 14 digits for Kyrgyz citizens.
    pub pin: Option<String>,
    pub surname: Option<String>,
    pub name: Option<String>,
    pub patronymic: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub passport: Option<IdentityDocument>,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDocument {
    pub number: String,
    pub issued_on: Option<NaiveDate>,
    pub issued_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// Taxpayer number (ИНН/TIN), 14 digits.
    pub inn: Option<String>,
    pub name: Option<String>,
    pub address: Option<Address>,
}

/// The registry's address parts, as text (house and flat numbers included: `12/1`
/// and `5А` are real).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// `obl`: region (область).
    pub region: Option<String>,
    /// `raion`: district.
    pub district: Option<String>,
    /// `aymak`: rural municipality.
    pub aymak: Option<String>,
    pub village: Option<String>,
    pub street: Option<String>,
    pub house: Option<String>,
    pub building: Option<String>,
    pub flat: Option<String>,
    /// `fullAddress` as the registry writes it.
    pub full: Option<String>,
}

impl Address {
    /// `fullAddress`, or the parts joined with ", ".
    pub fn one_line(&self) -> Option<String> {
        if self.full.is_some() {
            return self.full.clone();
        }
        let parts: Vec<&str> = [
            &self.region,
            &self.district,
            &self.aymak,
            &self.village,
            &self.street,
            &self.house,
            &self.building,
            &self.flat,
        ]
        .iter()
        .filter_map(|p| p.as_deref())
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    fn is_empty(&self) -> bool {
        *self == Address::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    /// `govPlate` as registered.
    pub plate: Option<String>,
    /// `brand`.
    pub make: Option<String>,
    pub model: Option<String>,
    /// `color`.
    pub colour: Option<String>,
    pub year: Option<u16>,
    /// `vin` when the reply has it, else a 17-character VIN found in `bodyNo` or
    /// `chassisNo` (where the registry keeps it for most cars).
    pub vin: Option<String>,
    pub body_no: Option<String>,
    pub chassis_no: Option<String>,
    pub engine_no: Option<String>,
    /// Registration certificate (техпаспорт): `techSeria` and `techNumber`.
    pub registration_certificate: Option<String>,
    /// Vehicle passport (ПТС): `ptsNumber`.
    pub vehicle_passport: Option<String>,
    /// `carTypeName`.
    pub vehicle_type: Option<String>,
}

/// One `response` element's fields by local name, before interpretation; nil and
/// missing fields are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawResponse {
    pub status: Option<String>,
    /// The plate the reply says it answers (`request/govPlate`, the request echoed).
    pub echoed_plate: Option<String>,
    pub address: Option<Fields>,
    pub persons: Vec<Fields>,
    pub car: Option<Fields>,
}

pub(crate) type Fields = BTreeMap<String, String>;

/// Reads `transportCurrentInfoResponse` (or any reply of the same shape). Elements
/// are taken in the service's namespace, or in none (some providers drop it).
pub(crate) fn raw_from_xml(payload: Node<'_, '_>) -> Vec<RawResponse> {
    let ours = |n: &Node<'_, '_>, local: &str| {
        n.is_element()
            && n.tag_name().name() == local
            && matches!(n.tag_name().namespace(), None | Some(VEHICLES_NS))
    };
    let fields = |node: Node<'_, '_>| -> Fields {
        node.children()
            .filter(|n| n.is_element() && !xml::is_nil(*n))
            .filter(|n| matches!(n.tag_name().namespace(), None | Some(VEHICLES_NS)))
            .map(|n| (n.tag_name().name().to_owned(), xml::text(n)))
            .collect()
    };
    let echoed_plate = payload
        .children()
        .find(|n| ours(n, "request"))
        .and_then(|request| fields(request).remove("govPlate"));
    payload
        .children()
        .filter(|n| ours(n, "response"))
        .map(|response| {
            let first = |local: &str| response.children().find(|n| ours(n, local));
            RawResponse {
                status: first("status").map(xml::text),
                echoed_plate: echoed_plate.clone(),
                address: first("address").filter(|n| !xml::is_nil(*n)).map(fields),
                persons: response
                    .children()
                    .filter(|n| ours(n, "person") && !xml::is_nil(*n))
                    .map(fields)
                    .collect(),
                car: first("car").filter(|n| !xml::is_nil(*n)).map(fields),
            }
        })
        .collect()
}

/// Reads the REST reply, shaped like the SOAP one in JSON:
/// `{"request": {...}, "response": {"status", "address", "person", "car"}}`, where
/// `response` and `person` may also be arrays.
pub(crate) fn raw_from_json(value: &serde_json::Value) -> Vec<RawResponse> {
    use serde_json::Value;
    fn fields(value: &Value) -> Option<Fields> {
        let object = value.as_object()?;
        Some(
            object
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
                .collect(),
        )
    }
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    fn many(value: Option<&Value>) -> Vec<&Value> {
        match value {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![other],
        }
    }
    let echoed_plate = value
        .get("request")
        .and_then(|request| request.get("govPlate"))
        .and_then(scalar);
    many(value.get("response"))
        .into_iter()
        .map(|response| RawResponse {
            status: response.get("status").and_then(scalar),
            echoed_plate: echoed_plate.clone(),
            address: response.get("address").and_then(fields),
            persons: many(response.get("person"))
                .into_iter()
                .filter_map(fields)
                .collect(),
            car: response.get("car").and_then(fields),
        })
        .collect()
}

/// Decides what the replies say about `requested_plate`.
pub(crate) fn interpret(
    requested_plate: &str,
    responses: Vec<RawResponse>,
) -> Result<OwnerLookup, TundukError> {
    if responses.is_empty() {
        return Err(TundukError::NoUsableData(
            "the reply has no `response` element".to_owned(),
        ));
    }
    let mut not_found = false;
    let mut records: Vec<OwnerRecord> = Vec::new();
    for response in responses {
        match response.status.as_deref().and_then(number) {
            Some(203) => {
                not_found = true;
                continue;
            }
            Some(200) => {}
            Some(other) => return Err(TundukError::RegistryStatus(other)),
            // The schema requires it: a reply without one says neither found nor not.
            None => {
                return Err(TundukError::MalformedReply(format!(
                    "a `response` has no numeric `status` ({:?})",
                    response.status
                )))
            }
        }
        let address = response
            .address
            .as_ref()
            .map(read_address)
            .filter(|a| !a.is_empty());
        let vehicle = response.car.as_ref().map(read_vehicle).unwrap_or_default();
        // The owner of another vehicle must never be fined: the reply must name the
        // plate it answers (its car's, or the request it echoes), and that plate only.
        let named: Vec<String> = vehicle
            .plate
            .iter()
            .chain(clean(response.echoed_plate.as_ref()).iter())
            .cloned()
            .collect();
        if named.is_empty() {
            return Err(TundukError::NoUsableData(
                "the reply names no plate, so it cannot be told to answer the one asked about"
                    .to_owned(),
            ));
        }
        if let Some(plate) = named
            .iter()
            .find(|plate| plate_key(plate) != plate_key(requested_plate))
        {
            return Err(TundukError::NoUsableData(format!(
                "the reply is for plate `{plate}`, not `{requested_plate}`"
            )));
        }
        for person in &response.persons {
            if let Some(owner) = read_owner(person, address.clone()) {
                if !records
                    .iter()
                    .any(|r| r.owner.identity() == owner.identity())
                {
                    records.push(OwnerRecord {
                        owner,
                        vehicle: vehicle.clone(),
                    });
                }
            }
        }
    }
    match records.len() {
        0 if not_found => Ok(OwnerLookup::NoData),
        0 => Err(TundukError::NoUsableData(
            "the reply names no owner: no PIN, INN or name".to_owned(),
        )),
        1 => Ok(OwnerLookup::Found(Box::new(records.remove(0)))),
        _ => Ok(OwnerLookup::SeveralOwners(records)),
    }
}

fn read_owner(fields: &Fields, address: Option<Address>) -> Option<Owner> {
    let get = |name: &str| clean(fields.get(name));
    let pin = get("pin")
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|p| !p.chars().all(|c| c == '0'));
    let organ_name = get("organName");
    let company = match get("ownerType").as_deref().and_then(number) {
        Some(2) | Some(4) => true,
        Some(1) | Some(3) => false,
        _ => {
            organ_name.is_some()
                || pin.as_deref().is_some_and(|p| {
                    p.len() == 14 && p.starts_with('0') && p.chars().all(|c| c.is_ascii_digit())
                })
        }
    };
    if company {
        let name =
            organ_name.or_else(|| join(&[&get("surname"), &get("name"), &get("patronymic")]));
        if pin.is_none() && name.is_none() {
            return None;
        }
        return Some(Owner::Company(Company {
            inn: pin,
            name,
            address,
        }));
    }
    let person = Person {
        pin,
        surname: get("surname"),
        name: get("name"),
        patronymic: get("patronymic"),
        birth_date: get("birthdate").as_deref().and_then(date),
        passport: get("passportNo").map(|number| IdentityDocument {
            number,
            issued_on: get("passportDate").as_deref().and_then(date),
            issued_by: get("passportOrgan"),
        }),
        address,
    };
    let named = person.surname.is_some() && person.name.is_some();
    (person.pin.is_some() || named).then_some(Owner::Person(person))
}

fn read_address(fields: &Fields) -> Address {
    let get = |name: &str| clean(fields.get(name));
    Address {
        region: get("obl"),
        district: get("raion"),
        aymak: get("aymak"),
        village: get("village"),
        street: get("street"),
        house: get("house"),
        building: get("building"),
        flat: get("flat"),
        full: get("fullAddress"),
    }
}

fn read_vehicle(fields: &Fields) -> Vehicle {
    let get = |name: &str| clean(fields.get(name));
    let vin = get("vin")
        .or_else(|| get("bodyNo").filter(|v| looks_like_vin(v)))
        .or_else(|| get("chassisNo").filter(|v| looks_like_vin(v)));
    let registration_certificate = match (get("techSeria"), get("techNumber")) {
        (Some(series), Some(number)) => Some(format!("{series} {number}")),
        (None, Some(number)) => Some(number),
        _ => None,
    };
    Vehicle {
        plate: get("govPlate"),
        make: get("brand"),
        model: get("model"),
        colour: get("color"),
        year: get("year").as_deref().and_then(year),
        vin,
        body_no: get("bodyNo"),
        chassis_no: get("chassisNo"),
        engine_no: get("engineNo"),
        registration_certificate,
        vehicle_passport: get("ptsNumber"),
        vehicle_type: get("carTypeName"),
    }
}

/// Trimmed text; empty and placeholder values (`-`, `null`, `nil`, `none`, `n/a`) are
/// absent.
fn clean(value: Option<&String>) -> Option<String> {
    let value = value?.trim_matches(|c: char| c.is_whitespace());
    let placeholder = value.is_empty()
        || value == "-"
        || ["null", "nil", "none", "n/a"]
            .iter()
            .any(|p| value.eq_ignore_ascii_case(p));
    (!placeholder).then(|| value.to_owned())
}

/// An integer, spaces (also no-break and thin spaces) inside ignored.
fn number(value: &str) -> Option<i64> {
    let digits: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    digits.parse().ok()
}

/// A model year between 1900 and 2100.
fn year(value: &str) -> Option<u16> {
    number(value)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|y| (1900..=2100).contains(y))
}

/// `YYYY-MM-DD` (an `xsd:date`, with or without a zone or a time after it) or
/// `DD.MM.YYYY`; years before 1900 (`0001-01-01` is a common "no date") are absent.
fn date(value: &str) -> Option<NaiveDate> {
    let value = value.trim();
    let parsed = value
        .get(..10)
        .and_then(|head| {
            NaiveDate::parse_from_str(head, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(head, "%d.%m.%Y"))
                .ok()
        })
        .filter(|_| value.len() == 10 || !value[10..].starts_with(|c: char| c.is_ascii_digit()));
    parsed.filter(|d| d.year() >= 1900)
}

/// 17 letters and digits without I, O and Q.
fn looks_like_vin(value: &str) -> bool {
    value.len() == 17
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"IOQ".contains(c)))
}

fn join(parts: &[&Option<String>]) -> Option<String> {
    let present: Vec<&str> = parts.iter().filter_map(|p| p.as_deref()).collect();
    (!present.is_empty()).then(|| present.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn response(status: &str, persons: Vec<Fields>, car: Fields) -> RawResponse {
        RawResponse {
            status: Some(status.to_owned()),
            echoed_plate: None,
            address: Some(fields(&[
                ("fullAddress", "Бишкек, ул. Киевская 96"),
                ("house", "12/1"),
            ])),
            persons,
            car: Some(car),
        }
    }

    fn car() -> Fields {
        fields(&[
            ("govPlate", "01KG123ABC"),
            ("brand", "Toyota"),
            ("model", "Camry"),
            ("color", "белый"),
            ("year", "2 015"),
            ("bodyNo", "JTNBE46K173012345"),
            ("techSeria", "KG"),
            ("techNumber", "0123456"),
        ])
    }

    #[test]
    fn lenient_fields() {
        assert_eq!(date("0001-01-01"), None);
        assert_eq!(date(""), None);
        assert_eq!(date("1985-07-03"), NaiveDate::from_ymd_opt(1985, 7, 3));
        assert_eq!(
            date("1985-07-03+06:00"),
            NaiveDate::from_ymd_opt(1985, 7, 3)
        );
        assert_eq!(
            date("1985-07-03T00:00:00"),
            NaiveDate::from_ymd_opt(1985, 7, 3)
        );
        assert_eq!(date("03.07.1985"), NaiveDate::from_ymd_opt(1985, 7, 3));
        assert_eq!(date("1985-02-30"), None);
        assert_eq!(date("1985-07-031"), None);
        assert_eq!(year("2 015"), Some(2015));
        assert_eq!(year("2\u{a0}015"), Some(2015));
        assert_eq!(year("0"), None);
        assert_eq!(year("20155"), None);
        assert_eq!(year("abc"), None);
        assert_eq!(number(" 200 "), Some(200));
        assert_eq!(clean(Some(&" NULL ".to_owned())), None);
        assert_eq!(clean(Some(&" x ".to_owned())), Some("x".to_owned()));
        assert!(looks_like_vin("JTNBE46K173012345"));
        assert!(!looks_like_vin("JTNBE46K17301234O"));
        assert!(!looks_like_vin("123"));
    }

    #[test]
    fn person_found() {
        let person = fields(&[
            ("pin", "21234 567890123"),
            ("surname", "Асанов"),
            ("name", "Бакыт"),
            ("patronymic", ""),
            ("birthdate", "0001-01-01"),
            ("passportNo", "AN1234567"),
            ("passportDate", "garbage"),
        ]);
        let lookup =
            interpret("01 KG 123 ABC", vec![response("200", vec![person], car())]).expect("usable");
        let OwnerLookup::Found(record) = lookup else {
            panic!("expected one owner, got {lookup:?}");
        };
        let Owner::Person(p) = &record.owner else {
            panic!("expected a person");
        };
        assert_eq!(p.pin.as_deref(), Some("21234567890123"));
        assert_eq!(p.patronymic, None);
        assert_eq!(p.birth_date, None);
        let passport = p.passport.as_ref().expect("passport");
        assert_eq!(passport.issued_on, None);
        assert_eq!(record.owner.display_name().as_deref(), Some("Асанов Бакыт"));
        assert_eq!(
            record
                .owner
                .address()
                .and_then(Address::one_line)
                .as_deref(),
            Some("Бишкек, ул. Киевская 96")
        );
        let v = &record.vehicle;
        assert_eq!(v.year, Some(2015));
        assert_eq!(v.vin.as_deref(), Some("JTNBE46K173012345"));
        assert_eq!(v.registration_certificate.as_deref(), Some("KG 0123456"));
        assert_eq!(v.make.as_deref(), Some("Toyota"));
    }

    #[test]
    fn owners_and_outcomes() {
        let company_by_inn = fields(&[("pin", "01234567891011"), ("surname", "ОсОО Ромашка")]);
        let company_by_type = fields(&[
            ("pin", "21234567890123"),
            ("organName", "ОсОО Ромашка"),
            ("ownerType", "2"),
        ]);
        let person_by_type = fields(&[
            ("pin", "01234567891011"),
            ("surname", "Асанов"),
            ("name", "Бакыт"),
            ("ownerType", "1"),
        ]);
        let nameless = fields(&[("pin", ""), ("surname", "Асанов")]);
        let zero_pin = fields(&[("pin", "00000000000000"), ("surname", ""), ("name", "")]);
        let other = fields(&[("pin", "11234567890123"), ("surname", "Б"), ("name", "В")]);

        let company = |lookup: &OwnerLookup| match lookup {
            OwnerLookup::Found(r) => matches!(r.owner, Owner::Company(_)),
            _ => false,
        };
        let found = interpret(
            "01KG123ABC",
            vec![response("200", vec![company_by_inn], car())],
        )
        .expect("usable");
        assert!(company(&found), "{found:?}");
        let found = interpret(
            "01KG123ABC",
            vec![response("200", vec![company_by_type], car())],
        )
        .expect("usable");
        assert!(company(&found), "{found:?}");
        let found = interpret(
            "01KG123ABC",
            vec![response("200", vec![person_by_type.clone()], car())],
        )
        .expect("usable");
        assert!(!company(&found), "{found:?}");

        let several = interpret(
            "01KG123ABC",
            vec![response(
                "200",
                vec![person_by_type.clone(), other, person_by_type],
                car(),
            )],
        )
        .expect("usable");
        assert!(
            matches!(&several, OwnerLookup::SeveralOwners(r) if r.len() == 2),
            "{several:?}"
        );

        let cases = [
            (
                vec![response("203", vec![zero_pin.clone()], Fields::new())],
                Ok(OwnerLookup::NoData),
            ),
            (
                vec![response(" 203 ", vec![], Fields::new())],
                Ok(OwnerLookup::NoData),
            ),
            (
                vec![response("500", vec![zero_pin.clone()], car())],
                Err(TundukError::RegistryStatus(500)),
            ),
        ];
        for (responses, expected) in cases {
            assert_eq!(interpret("01KG123ABC", responses), expected);
        }
        for persons in [vec![nameless], vec![zero_pin], vec![]] {
            let result = interpret("01KG123ABC", vec![response("200", persons, car())]);
            assert!(
                matches!(result, Err(TundukError::NoUsableData(_))),
                "{result:?}"
            );
        }
        let wrong_plate = interpret(
            "02KG123ABC",
            vec![response(
                "200",
                vec![fields(&[("pin", "21234567890123")])],
                car(),
            )],
        );
        assert!(
            matches!(wrong_plate, Err(TundukError::NoUsableData(_))),
            "{wrong_plate:?}"
        );
        assert!(matches!(
            interpret("01KG123ABC", vec![]),
            Err(TundukError::NoUsableData(_))
        ));

        // The plate the reply answers: the car's, or the request it echoes; one of
        // them must be there, and every one named must be the plate asked about.
        let owner = || vec![fields(&[("pin", "21234567890123"), ("surname", "А")])];
        let echoed = |echo: Option<&str>, car: Fields| RawResponse {
            echoed_plate: echo.map(str::to_owned),
            ..response("200", owner(), car)
        };
        let no_car_plate = fields(&[("brand", "Toyota")]);
        for (raw, found) in [
            (echoed(Some("01 KG 123 ABC"), no_car_plate.clone()), true),
            (echoed(None, car()), true),
            (echoed(Some("01KG123ABC"), car()), true),
            (echoed(None, no_car_plate.clone()), false),
            (echoed(Some("null"), no_car_plate.clone()), false),
            (echoed(Some("02KG999XYZ"), car()), false),
        ] {
            let result = interpret("01KG123ABC", vec![raw.clone()]);
            match found {
                true => assert!(
                    matches!(result, Ok(OwnerLookup::Found(_))),
                    "{raw:?}: {result:?}"
                ),
                false => assert!(
                    matches!(result, Err(TundukError::NoUsableData(_))),
                    "{raw:?}: {result:?}"
                ),
            }
        }
        // A status the schema requires, as a number.
        for status in [None, Some("OK".to_owned()), Some(String::new())] {
            let raw = RawResponse {
                status,
                ..response("200", owner(), car())
            };
            assert!(
                matches!(
                    interpret("01KG123ABC", vec![raw.clone()]),
                    Err(TundukError::MalformedReply(_))
                ),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn reads_json_like_xml() {
        let value = serde_json::json!({
            "request": {"govPlate": "01KG123ABC"},
            "response": {
                "status": 200,
                "address": null,
                "person": [{"pin": "21234567890123", "surname": "A", "name": "B", "birthdate": null}],
                "car": {"govPlate": "01KG123ABC", "year": 2015, "brand": "Toyota"}
            }
        });
        let raw = raw_from_json(&value);
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].status.as_deref(), Some("200"));
        assert_eq!(raw[0].echoed_plate.as_deref(), Some("01KG123ABC"));
        assert_eq!(raw[0].address, None);
        assert_eq!(raw[0].persons.len(), 1);
        assert!(!raw[0].persons[0].contains_key("birthdate"));
        assert_eq!(
            raw[0]
                .car
                .as_ref()
                .and_then(|c| c.get("year"))
                .map(String::as_str),
            Some("2015")
        );
    }

    #[test]
    fn reads_xml_by_namespace() {
        let xml = format!(
            r#"<v:transportCurrentInfoResponse xmlns:v="{VEHICLES_NS}" xmlns:o="urn:other" xmlns:xsi="{}">
                <v:request><v:govPlate>01KG123ABC</v:govPlate></v:request>
                <v:response>
                  <v:status>200</v:status>
                  <v:address xsi:nil="true"/>
                  <v:person><v:pin>21234567890123</v:pin><o:surname>ignored</o:surname><v:name xsi:nil="true"/></v:person>
                  <o:person><v:pin>ignored</v:pin></o:person>
                  <v:car><v:brand>Toyota</v:brand></v:car>
                </v:response>
            </v:transportCurrentInfoResponse>"#,
            xml::XSI_NS
        );
        let doc = xml::parse(&xml).expect("well-formed");
        let raw = raw_from_xml(doc.root_element());
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].address, None);
        assert_eq!(raw[0].persons, vec![fields(&[("pin", "21234567890123")])]);
        assert_eq!(raw[0].car, Some(fields(&[("brand", "Toyota")])));
        assert_eq!(raw[0].echoed_plate.as_deref(), Some("01KG123ABC"));
    }
}
