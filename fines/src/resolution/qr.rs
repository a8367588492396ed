//! QR codes drawn as vector rectangles: sharp at any print size, a few hundred bytes
//! of PDF, no image to encode. One code pays (the national payment payload), the other
//! verifies the document (its URL).

use fast_qr::{QRBuilder, ECL};
use printpdf::{Op, PaintMode, Pt, Rect, WindingOrder};

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

    /// Filled rectangles drawing the symbol with its quiet zone in a `side`-point square
    /// whose lower-left corner is (`x`, `y`) in PDF coordinates. Runs of dark modules in
    /// a row become one rectangle. The caller sets the fill colour.
    pub fn draw(&self, x: f32, y: f32, side: f32) -> Vec<Op> {
        let modules = (self.width + 2 * QUIET_ZONE) as f32;
        let m = side / modules;
        let mut ops = Vec::new();
        for row in 0..self.width {
            let mut col = 0;
            while col < self.width {
                if !self.is_dark(col, row) {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < self.width && self.is_dark(col, row) {
                    col += 1;
                }
                // Row 0 is the top of the symbol; PDF's y grows upwards.
                let top = y + side - (QUIET_ZONE + row) as f32 * m;
                ops.push(Op::DrawRectangle {
                    rectangle: Rect {
                        x: Pt(x + (QUIET_ZONE + start) as f32 * m),
                        y: Pt(top - m),
                        width: Pt((col - start) as f32 * m),
                        height: Pt(m),
                        mode: Some(PaintMode::Fill),
                        winding_order: Some(WindingOrder::NonZero),
                    },
                });
            }
        }
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_draws_finder_patterns() {
        let qr = QrMatrix::encode("https://kozomol.example/v/KG-BSK-2026-0000123", "url")
            .expect("short text fits");
        assert!(qr.width >= 21);
        // The three finder patterns have dark corners.
        let w = qr.width;
        for (x, y) in [(0, 0), (w - 1, 0), (0, w - 1)] {
            assert!(qr.is_dark(x, y), "finder corner {x},{y}");
        }
        assert!(!qr.is_dark(w, 0), "outside is light");
        let ops = qr.draw(0.0, 0.0, 100.0);
        assert!(!ops.is_empty());
        assert!(ops.iter().all(|op| matches!(
            op,
            Op::DrawRectangle { rectangle } if rectangle.mode == Some(PaintMode::Fill)
        )));
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
