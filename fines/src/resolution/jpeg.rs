//! Camera photos embedded as they are: the JPEG bytes become a `DCTDecode` image
//! stream, never decoded nor re-encoded. The evidence in the PDF is then the camera's
//! own file (same bytes, same hash), and a PDF costs milliseconds instead of the
//! ≈ 150 ms a decode + re-encode of a 1080p frame takes.
//!
//! printpdf 0.12 only embeds images it has decoded (`RawImage`), so the stream is built
//! as an `ExternalXObject` (a raw image XObject dictionary + the JPEG bytes, not
//! compressed further); only the frame header is read, for the size and colour space.

use std::collections::BTreeMap;

use printpdf::{DictItem, ExternalStream, ExternalXObject, Px};

/// What the PDF image dictionary needs from a JPEG's frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u16,
    pub height: u16,
    /// 1 (greyscale) or 3 (colour).
    pub components: u8,
}

/// Reads the frame header (SOF) of a JPEG that PDF readers can show with `DCTDecode`:
/// 8-bit baseline, extended or progressive, greyscale or colour.
pub fn read_info(bytes: &[u8]) -> Result<JpegInfo, &'static str> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err("it does not start with a jpeg start-of-image marker");
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if at >= bytes.len() || bytes[at] != 0xFF {
            return Err("a marker is missing where one should start");
        }
        while at < bytes.len() && bytes[at] == 0xFF {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return Err("it ends inside a marker");
        };
        at += 1;
        // Standalone markers carry no length.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            return Err("no frame header before the image data");
        }
        let Some(len) = read_u16(bytes, at) else {
            return Err("it ends inside a segment header");
        };
        let len = usize::from(len);
        if len < 2 || at + len > bytes.len() {
            return Err("a segment length runs past the end");
        }
        match marker {
            0xC0..=0xC2 => return frame_header(&bytes[at + 2..at + len]),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Err(
                "lossless, hierarchical or arithmetic-coded jpeg cannot be shown by pdf readers",
            ),
            _ => at += len,
        }
    }
}

fn frame_header(segment: &[u8]) -> Result<JpegInfo, &'static str> {
    let [precision, h1, h0, w1, w0, components, ..] = *segment else {
        return Err("the frame header is truncated");
    };
    if precision != 8 {
        return Err("only 8-bit samples are supported");
    }
    let height = u16::from_be_bytes([h1, h0]);
    let width = u16::from_be_bytes([w1, w0]);
    if width == 0 || height == 0 {
        return Err("the frame header gives no size");
    }
    if components != 1 && components != 3 {
        return Err("only greyscale and colour (ycbcr) jpegs are supported");
    }
    Ok(JpegInfo {
        width,
        height,
        components,
    })
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The image XObject carrying `bytes` unchanged as a `DCTDecode` stream.
pub fn image_xobject(bytes: &[u8], info: JpegInfo) -> ExternalXObject {
    let name = |s: &str| DictItem::Name(s.as_bytes().to_vec());
    let colour_space = if info.components == 1 {
        "DeviceGray"
    } else {
        "DeviceRGB"
    };
    let dict = BTreeMap::from([
        ("Type".to_owned(), name("XObject")),
        ("Subtype".to_owned(), name("Image")),
        ("Width".to_owned(), DictItem::Int(i64::from(info.width))),
        ("Height".to_owned(), DictItem::Int(i64::from(info.height))),
        ("ColorSpace".to_owned(), name(colour_space)),
        ("BitsPerComponent".to_owned(), DictItem::Int(8)),
        ("Filter".to_owned(), name("DCTDecode")),
    ]);
    ExternalXObject {
        stream: ExternalStream {
            dict,
            content: bytes.to_vec(),
            // Already compressed; deflating JPEG data again only costs time.
            compress: false,
        },
        width: Some(Px(usize::from(info.width))),
        height: Some(Px(usize::from(info.height))),
        dpi: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal header: SOI, an APP0 segment, SOF0 (8-bit, 48×32, 3 components).
    fn header(sof: u8, precision: u8, components: u8) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        b.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB]);
        b.extend_from_slice(&[0xFF, 0xFF, sof, 0x00, 0x08, precision, 0x00, 32, 0x00, 48]);
        b.push(components);
        b
    }

    #[test]
    fn reads_frame_headers() {
        let table: [(Vec<u8>, Result<JpegInfo, ()>); 8] = [
            (
                header(0xC0, 8, 3),
                Ok(JpegInfo {
                    width: 48,
                    height: 32,
                    components: 3,
                }),
            ),
            (
                header(0xC2, 8, 1),
                Ok(JpegInfo {
                    width: 48,
                    height: 32,
                    components: 1,
                }),
            ),
            (header(0xC0, 12, 3), Err(())),
            (header(0xC0, 8, 4), Err(())),
            (header(0xC3, 8, 3), Err(())),
            (header(0xC9, 8, 3), Err(())),
            (b"\x89PNG\r\n\x1a\n".to_vec(), Err(())),
            (vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02], Err(())),
        ];
        for (i, (bytes, want)) in table.into_iter().enumerate() {
            assert_eq!(read_info(&bytes).map_err(|_| ()), want, "case {i}");
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let full = header(0xC0, 8, 3);
        for cut in 0..full.len() {
            let _ = read_info(&full[..cut]);
        }
        assert!(read_info(&full[..full.len() - 1]).is_err());
    }
}
