//! What an owner lookup found: the owner of record (a person or a company), or why
//! no one can be fined yet.

use serde::{Deserialize, Serialize};

/// The outcome of asking the vehicle registry who owns a plate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerOutcome {
    Found,
    /// The registry knows no vehicle with this plate.
    NoData,
    /// The registry names more than one owner; an officer decides.
    SeveralOwners,
    /// Not a domestic plate: the registry is not asked.
    ForeignPlate,
    /// The bus or the registry failed after retries.
    BusError,
}

impl OwnerOutcome {
    pub const ALL: [OwnerOutcome; 5] = [
        OwnerOutcome::Found,
        OwnerOutcome::NoData,
        OwnerOutcome::SeveralOwners,
        OwnerOutcome::ForeignPlate,
        OwnerOutcome::BusError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OwnerOutcome::Found => "found",
            OwnerOutcome::NoData => "no_data",
            OwnerOutcome::SeveralOwners => "several_owners",
            OwnerOutcome::ForeignPlate => "foreign_plate",
            OwnerOutcome::BusError => "bus_error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        OwnerOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Person,
    Company,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Person => "person",
            OwnerKind::Company => "company",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [OwnerKind::Person, OwnerKind::Company]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The owner a resolution is addressed to. Repeat offences count per `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerOfRecord {
    pub kind: OwnerKind,
    /// The person's PIN or the company's INN.
    pub id: String,
    pub name: String,
    pub address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in OwnerOutcome::ALL {
            assert_eq!(OwnerOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(OwnerKind::parse("company"), Some(OwnerKind::Company));
        assert_eq!(OwnerOutcome::parse("maybe"), None);
    }
}
