//! QR codes drawn as vector rectangles: sharp at any print size, a few hundred bytes
//! of PDF, no image to encode. One code pays (the national payment payload), the other
//! verifies the document (its URL).

use printpdf::{Op, PaintMode, Pt, Rect, WindingOrder};
use qrcode::{Color, EcLevel, QrCode};

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
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
            .map_err(|source| ResolutionError::Qr { what, source })?;
        let width = code.width();
        let dark = code
            .into_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
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

    #[test]
    fn too_long_is_an_error() {
        let long = "9".repeat(8000);
        assert!(matches!(
            QrMatrix::encode(&long, "payment payload"),
            Err(ResolutionError::Qr { .. })
        ));
    }
}
