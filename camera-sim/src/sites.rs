//! Camera sites at real Bishkek intersections (coordinates approximate, WGS 84).

use kozomol_core::Site;

/// A box around Bishkek: (south-west, north-east) corners as (lat_e6, lon_e6).
pub const BISHKEK_BOUNDS: ((i32, i32), (i32, i32)) =
    ((42_790_000, 74_470_000), (42_930_000, 74_720_000));

/// (id, lat_e6, lon_e6, address, direction of travel)
const SITES: [(&str, i32, i32, &str, &str); 9] = [
    (
        "bsk-chuy-abdrakhmanov",
        42_876_300,
        74_612_100,
        "проспект Чуй / улица Абдрахманова, Бишкек",
        "westbound",
    ),
    (
        "bsk-chuy-manas",
        42_875_700,
        74_586_900,
        "проспект Чуй / проспект Манаса, Бишкек",
        "eastbound",
    ),
    (
        "bsk-zhibek-zholu-isanova",
        42_887_900,
        74_599_300,
        "проспект Жибек Жолу / улица Исанова, Бишкек",
        "eastbound",
    ),
    (
        "bsk-aitmatov-akhunbaev",
        42_843_900,
        74_586_200,
        "проспект Чынгыза Айтматова / улица Ахунбаева, Бишкек",
        "northbound",
    ),
    (
        "bsk-akhunbaev-baitik",
        42_844_600,
        74_612_800,
        "улица Ахунбаева / улица Байтик Баатыра, Бишкек",
        "westbound",
    ),
    (
        "bsk-manas-moskovskaya",
        42_870_400,
        74_587_300,
        "проспект Манаса / улица Московская, Бишкек",
        "southbound",
    ),
    (
        "bsk-erkindik-kievskaya",
        42_874_600,
        74_604_200,
        "бульвар Эркиндик / улица Киевская, Бишкек",
        "northbound",
    ),
    (
        "bsk-tolstoy-manas",
        42_863_500,
        74_586_800,
        "улица Льва Толстого / проспект Манаса, Бишкек",
        "eastbound",
    ),
    (
        "bsk-aitmatov-south-magistral",
        42_819_000,
        74_585_500,
        "проспект Чынгыза Айтматова / Южная магистраль, Бишкек",
        "southbound",
    ),
];

/// The sites, lane 1 each; callers vary the lane per camera.
pub fn bishkek_sites() -> Vec<Site> {
    SITES
        .iter()
        .map(|&(id, lat_e6, lon_e6, address, direction)| Site {
            id: id.to_owned(),
            lat_e6,
            lon_e6,
            address: address.to_owned(),
            direction: direction.to_owned(),
            lane: 1,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_in_bishkek_and_distinct() {
        let ((south, west), (north, east)) = BISHKEK_BOUNDS;
        let sites = bishkek_sites();
        for site in &sites {
            assert!((south..=north).contains(&site.lat_e6), "{}", site.id);
            assert!((west..=east).contains(&site.lon_e6), "{}", site.id);
            assert!(site.address.ends_with("Бишкек"));
        }
        let ids: std::collections::HashSet<_> = sites.iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), sites.len());
    }
}
