//! Kyrgyz registration plates of the 2016 standard: region code, three digits,
//! three Latin letters (`01 KG 123 ABC`).

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use crate::SimError;

/// The letters the simulator puts on plates: the twelve Latin letters that have a
/// Cyrillic twin of the same shape (А В С Е Н К М О Р Т Х У). A plate written with
/// them reads the same in Latin and Cyrillic documents, which is why plate series in
/// the region favour them, and an OCR confusion between scripts cannot change a fine.
pub const PLATE_LETTERS: &[u8; 12] = b"ABCEHKMOPTXY";

/// The region codes of the 2016 standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    Bishkek,
    OshCity,
    Batken,
    JalalAbad,
    Naryn,
    OshRegion,
    Talas,
    Chuy,
    IssykKul,
}

impl Region {
    pub const ALL: [Region; 9] = [
        Region::Bishkek,
        Region::OshCity,
        Region::Batken,
        Region::JalalAbad,
        Region::Naryn,
        Region::OshRegion,
        Region::Talas,
        Region::Chuy,
        Region::IssykKul,
    ];

    /// The two-digit code printed on the plate.
    pub fn code(self) -> &'static str {
        match self {
            Region::Bishkek => "01",
            Region::OshCity => "02",
            Region::Batken => "03",
            Region::JalalAbad => "04",
            Region::Naryn => "05",
            Region::OshRegion => "06",
            Region::Talas => "07",
            Region::Chuy => "08",
            Region::IssykKul => "09",
        }
    }

    pub fn from_code(code: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// A plate number: region, three digits (000 is not issued) and three letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KgPlate {
    region: Region,
    number: u16,
    letters: [u8; 3],
}

impl KgPlate {
    pub fn new(region: Region, number: u16, letters: [u8; 3]) -> Result<Self, SimError> {
        let raw = || {
            format!(
                "{} {number:03} {}",
                region.code(),
                String::from_utf8_lossy(&letters)
            )
        };
        if !(1..=999).contains(&number) {
            return Err(SimError::InvalidPlate {
                raw: raw(),
                why: "the number is 001 to 999",
            });
        }
        if !letters.iter().all(|l| PLATE_LETTERS.contains(l)) {
            return Err(SimError::InvalidPlate {
                raw: raw(),
                why: "letters are from A B C E H K M O P T X Y",
            });
        }
        Ok(KgPlate {
            region,
            number,
            letters,
        })
    }

    pub fn region(&self) -> Region {
        self.region
    }

    /// The three digits, zero-padded (`"007"`).
    pub fn digits(&self) -> String {
        format!("{:03}", self.number)
    }

    /// The three letters.
    pub fn letters(&self) -> &str {
        std::str::from_utf8(&self.letters).expect("plate letters are ASCII by construction")
    }

    /// What a camera reports and the store keeps: `01123ABC`.
    pub fn canonical(&self) -> String {
        format!("{}{}{}", self.region.code(), self.digits(), self.letters())
    }
}

/// As printed: `01 KG 123 ABC`.
impl fmt::Display for KgPlate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} KG {} {}",
            self.region.code(),
            self.digits(),
            self.letters()
        )
    }
}

/// Parses the canonical form (`01123ABC`) or the printed one (`01 KG 123 ABC`).
impl FromStr for KgPlate {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| SimError::InvalidPlate {
            raw: s.chars().take(32).collect(),
            why,
        };
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let compact = match compact.get(2..4) {
            Some("KG") => format!("{}{}", &compact[..2], &compact[4..]),
            _ => compact,
        };
        if compact.len() != 8 || !compact.is_ascii() {
            return Err(bad("a plate is 2 region digits, 3 digits and 3 letters"));
        }
        let region = Region::from_code(&compact[..2]).ok_or_else(|| bad("unknown region code"))?;
        let number = compact[2..5]
            .parse::<u16>()
            .map_err(|_| bad("the number is 3 digits"))?;
        let letters: [u8; 3] = compact.as_bytes()[5..8]
            .try_into()
            .map_err(|_| bad("3 letters"))?;
        KgPlate::new(region, number, letters)
    }
}

/// A random plate; Bishkek (01) and Chüy (08) are weighted up, as in the capital's traffic.
pub fn random_plate<R: Rng + ?Sized>(rng: &mut R) -> KgPlate {
    let region = match rng.gen_range(0..100) {
        0..=54 => Region::Bishkek,
        55..=74 => Region::Chuy,
        _ => Region::ALL[rng.gen_range(0..Region::ALL.len())],
    };
    let number = rng.gen_range(1..=999);
    let mut letters = [0u8; 3];
    for letter in &mut letters {
        *letter = PLATE_LETTERS[rng.gen_range(0..PLATE_LETTERS.len())];
    }
    KgPlate::new(region, number, letters).expect("random plate is drawn from valid parts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn canonical_and_printed_forms() {
        let plate: KgPlate = "01123ABC".parse().expect("canonical parses");
        assert_eq!(plate.canonical(), "01123ABC");
        assert_eq!(plate.to_string(), "01 KG 123 ABC");
        assert_eq!("01 KG 123 ABC".parse::<KgPlate>().expect("printed"), plate);
        assert_eq!(
            "08 kg 007 xyt"
                .parse::<KgPlate>()
                .expect("lower")
                .canonical(),
            "08007XYT"
        );
    }

    #[test]
    fn invalid_plates_are_refused() {
        for raw in [
            "10123ABC",
            "01000ABC",
            "01123ABD",
            "0112ABC",
            "01123ABCE",
            "01 KG 12 ABC",
            "011Я3ABC",
        ] {
            assert!(raw.parse::<KgPlate>().is_err(), "{raw}");
        }
    }

    #[test]
    fn random_plates_are_valid_and_varied() {
        let mut rng = StdRng::seed_from_u64(7);
        let plates: Vec<KgPlate> = (0..500).map(|_| random_plate(&mut rng)).collect();
        for plate in &plates {
            let text = plate.canonical();
            assert_eq!(text.len(), 8);
            assert!(text[..5].bytes().all(|b| b.is_ascii_digit()), "{text}");
            assert!(
                text[5..].bytes().all(|b| PLATE_LETTERS.contains(&b)),
                "{text}"
            );
            assert_eq!(text.parse::<KgPlate>().expect("round trip"), *plate);
        }
        let distinct: std::collections::HashSet<_> = plates.iter().collect();
        assert!(
            distinct.len() > 490,
            "only {} distinct plates",
            distinct.len()
        );
        let regions: std::collections::HashSet<_> = plates.iter().map(|p| p.region()).collect();
        assert_eq!(regions.len(), 9);
    }
}
