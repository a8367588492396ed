//! QR codes drawn as vector rectangles: sharp at any print size, a few hundred bytes
//! of PDF, no image to encode. One code pays (the national payment payload), the other
//! verifies the document (its URL).

use std::collections::BTreeMap;
use std::fmt::Write;

use fast_qr::{QRBuilder, ECL};
use printpdf::{DictItem, ExternalStream, ExternalXObject};

use super::pdf::deflate_fast;
use super::ResolutionError;

/// Modules of light margin around the symbol that scanners need.
pub const QUIET_ZONE: usize = 4;

/// A QR symbol as rows of dark (true) and light modules, without the quiet zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Encodes `data` with error-correction level M (15 %: survives a crease or a
    /// stamp on the printed page).
    pub fn encode(data: &str, what: &'static str) -> Result<Self, ResolutionError> {
        // fast_qr picks the mask by the standard's penalty rules as qrcode did, in a
        // fraction of the time (the two codes were a third of a resolution's rendering).
        let code = QRBuilder::new(data.as_bytes())
            .ecl(ECL::M)
            .build()
            .map_err(|source| ResolutionError::Qr {
                what,
                reason: source.to_string(),
            })?;
        let width = code.size;
        let dark = code.data[..width * width]
            .iter()
            .map(|module| module.value())
            .collect();
        Ok(QrMatrix { width, dark })
    }

    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// The symbol with its quiet zone as a form XObject, one unit a module: runs of dark
    /// modules in a row are filled rectangles at whole-number coordinates, written
    /// straight into a deflated stream. Drawn as page operations, the runs of the two
    /// codes were a fifth of a resolution's rendering, most of it formatting their
    /// coordinates; scaled by the page's `cm` they stay vectors, sharp at any size.
    pub fn form_xobject(&self) -> ExternalXObject {
        let modules = self.modules();
        let mut content = String::with_capacity(16 * self.width * self.width / 4);
        content.push_str("0 g\n");
        for (row, start, run) in self.dark_runs() {
            // Row 0 is the top of the symbol; PDF's y grows upwards.
            let y = modules - QUIET_ZONE - row - 1;
            let _ = writeln!(content, "{} {y} {run} 1 re", QUIET_ZONE + start);
        }
        content.push_str("f\n");
        let name = |s: &str| DictItem::Name(s.as_bytes().to_vec());
        let side = DictItem::Int(i64::try_from(modules).unwrap_or(i64::MAX));
        let dict = BTreeMap::from([
            ("Type".to_owned(), name("XObject")),
            ("Subtype".to_owned(), name("Form")),
            (
                "BBox".to_owned(),
                DictItem::Array(vec![DictItem::Int(0), DictItem::Int(0), side.clone(), side]),
            ),
            ("Filter".to_owned(), name("FlateDecode")),
        ]);
        ExternalXObject {
            stream: ExternalStream {
                dict,
                content: deflate_fast(content.as_bytes()),
                compress: false,
            },
            width: None,
            height: None,
            dpi: None,
        }
    }

    /// The symbol with its quiet zone as an SVG picture, one unit a module, each row's
    /// runs of dark modules one path segment: for web pages, sharp at any zoom.
    pub fn svg(&self) -> String {
        let modules = self.modules();
        let mut path = String::with_capacity(8 * self.width * self.width / 4);
        for (row, start, run) in self.dark_runs() {
            let _ = write!(
                path,
                "M{} {}h{run}v1h-{run}z",
                QUIET_ZONE + start,
                QUIET_ZONE + row
            );
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {modules} {modules}\" \
             shape-rendering=\"crispEdges\"><rect width=\"{modules}\" height=\"{modules}\" \
             fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
        )
    }

    /// Each row's runs of dark modules, as (row, first column, length), top to bottom.
    fn dark_runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.width).flat_map(move |row| {
            let mut col = 0;
            std::iter::from_fn(move || {
                while col < self.width && !self.is_dark(col, row) {
                    col += 1;
                }
                if col == self.width {
                    return None;
                }
                let start = col;
                while col < self.width && self.is_dark(col, row) {
                    col += 1;
                }
                Some((row, start, col - start))
            })
        })
    }

    /// Modules across the symbol with its quiet zone on both sides.
    pub fn modules(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_finder_patterns() {
        let qr = QrMatrix::encode("https://kozomol.example/v/KG-BSK-2026-0000123", "url")
            .expect("short text fits");
        assert!(qr.width >= 21);
        // The three finder patterns have dark corners.
        let w = qr.width;
        for (x, y) in [(0, 0), (w - 1, 0), (0, w - 1)] {
            assert!(qr.is_dark(x, y), "finder corner {x},{y}");
        }
        assert!(!qr.is_dark(w, 0), "outside is light");
    }

    #[test]
    fn svg_paints_the_dark_modules() {
        let qr = QrMatrix::encode("00020101021232", "payment").expect("fits");
        let svg = qr.svg();
        let n = qr.modules();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains(&format!("viewBox=\"0 0 {n} {n}\"")));
        let path = svg
            .split("d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a path");
        let mut painted = vec![false; n * n];
        for segment in path.split('M').filter(|s| !s.is_empty()) {
            let (xy, rest) = segment.split_once('h').expect("h");
            let (x, y) = xy.split_once(' ').expect("x y");
            let (x, y): (usize, usize) = (x.parse().expect("x"), y.parse().expect("y"));
            let run: usize = rest.split_once('v').expect("v").0.parse().expect("run");
            for dx in 0..run {
                painted[y * n + x + dx] = true;
            }
        }
        for y in 0..n {
            for x in 0..n {
                let dark = x >= QUIET_ZONE
                    && y >= QUIET_ZONE
                    && qr.is_dark(x - QUIET_ZONE, y - QUIET_ZONE);
                assert_eq!(painted[y * n + x], dark, "module {x},{y}");
            }
        }
    }

    /// The modules the form XObject fills, read back from its inflated content stream.
    fn painted(qr: &QrMatrix) -> Vec<bool> {
        use std::io::Read;
        let form = qr.form_xobject();
        assert_eq!(
            form.stream.dict.get("Subtype"),
            Some(&DictItem::Name(b"Form".to_vec()))
        );
        let mut content = String::new();
        flate2::read::ZlibDecoder::new(form.stream.content.as_slice())
            .read_to_string(&mut content)
            .expect("the stream inflates");
        let n = qr.modules();
        let mut painted = vec![false; n * n];
        let mut lines = content.lines();
        assert_eq!(lines.next(), Some("0 g"));
        assert_eq!(lines.next_back(), Some("f"));
        for line in lines {
            let v: Vec<usize> = line
                .strip_suffix(" 1 re")
                .expect("a one-module-high rectangle")
                .split(' ')
                .map(|n| n.parse().expect("whole numbers"))
                .collect();
            let (x, y, w) = (v[0], v[1], v[2]);
            for col in x..x + w {
                // Back from PDF's upward y to rows counted from the top.
                painted[(n - 1 - y) * n + col] = true;
            }
        }
        painted
    }

    #[test]
    fn the_form_fills_exactly_the_dark_modules() {
        let qr =
            QrMatrix::encode("00020101021232590013kg.elqr.kgs0107BSK", "payload").expect("fits");
        let n = qr.modules();
        let painted = painted(&qr);
        for row in 0..n {
            for col in 0..n {
                let dark = match (col.checked_sub(QUIET_ZONE), row.checked_sub(QUIET_ZONE)) {
                    (Some(x), Some(y)) => qr.is_dark(x, y),
                    _ => false,
                };
                assert_eq!(painted[row * n + col], dark, "module {col},{row}");
            }
        }
    }

    /// The symbol as a phone's camera would see it: 4 pixels a module, quiet zone round.
    fn decode(qr: &QrMatrix) -> String {
        const PX: usize = 4;
        let side = (qr.width + 2 * QUIET_ZONE) * PX;
        let module = |p: usize| (p / PX).checked_sub(QUIET_ZONE);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            match (module(x), module(y)) {
                (Some(mx), Some(my)) if qr.is_dark(mx, my) => 0,
                _ => 255,
            }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one symbol");
        grids[0].decode().expect("the symbol decodes").1
    }

    #[test]
    fn symbols_read_back_as_their_data() {
        for data in [
            "https://kozomol.example/v/KG-BSK-2026-0000123",
            "00020101021232590013kg.elqr.kgs0107BSKGUVD1018110226260000123456",
            &"Постановление № KG-BSK-2026-0000123 ".repeat(6),
        ] {
            let qr = QrMatrix::encode(data, "payload").expect("fits");
            assert_eq!(decode(&qr), data);
        }
    }

    #[test]
    fn too_long_is_an_error() {
        let long = "9".repeat(8000);
        assert!(matches!(
            QrMatrix::encode(&long, "payment payload"),
            Err(ResolutionError::Qr { .. })
        ));
    }
}
