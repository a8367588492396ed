//! JPEG encoding, and a cheap way to make a frame's bytes unique.

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

use crate::SimError;

pub fn encode(img: &RgbImage, quality: u8) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::with_capacity(256 * 1024);
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| SimError::Encode(e.to_string()))?;
    Ok(out)
}

/// Re-encodes a JPEG scaled down to `width` pixels across (never up), keeping its
/// aspect ratio.
pub fn shrink(jpeg: &[u8], width: u32, quality: u8) -> Result<Vec<u8>, SimError> {
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .map_err(|_| SimError::NotJpeg)?
        .to_rgb8();
    if img.width() <= width {
        return encode(&img, quality);
    }
    let height = (u64::from(img.height()) * u64::from(width) / u64::from(img.width())).max(1);
    let height = u32::try_from(height).unwrap_or(u32::MAX);
    let small = image::imageops::resize(&img, width, height, image::imageops::FilterType::Triangle);
    encode(&small, quality)
}

/// The largest comment one COM segment holds (its length field counts itself).
const MAX_COMMENT: usize = u16::MAX as usize - 2;

/// Inserts a comment (COM) segment right after the start-of-image marker. The picture
/// is unchanged, its bytes and hash are not: pooled frames stay distinct evidence
/// (ingest stores frames by content hash) without being rendered again.
pub fn with_comment(jpeg: &[u8], comment: &str) -> Result<Vec<u8>, SimError> {
    let Some(rest) = jpeg.strip_prefix(&[0xFF, 0xD8]) else {
        return Err(SimError::NotJpeg);
    };
    let text = &comment.as_bytes()[..comment.len().min(MAX_COMMENT)];
    let segment_len = u16::try_from(text.len() + 2).expect("comment is capped to fit a segment");
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xFE]);
    out.extend_from_slice(&segment_len.to_be_bytes());
    out.extend_from_slice(text);
    out.extend_from_slice(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_keeps_the_picture() {
        let img = RgbImage::from_fn(64, 32, |x, y| image::Rgb([x as u8 * 4, y as u8 * 8, 128]));
        let jpeg = encode(&img, 90).expect("encode");
        let tagged = with_comment(&jpeg, "event 0193-abc").expect("comment");
        assert_ne!(tagged, jpeg);
        let a = image::load_from_memory(&jpeg).expect("decode").into_rgb8();
        let b = image::load_from_memory(&tagged)
            .expect("decode tagged")
            .into_rgb8();
        assert_eq!(a, b);
        assert!(matches!(
            with_comment(b"GIF89a", "x"),
            Err(SimError::NotJpeg)
        ));
    }
}
