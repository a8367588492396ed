//! Assembling and writing the PDF with printpdf 0.12, deterministically: the same
//! resolution gives the same bytes (fixed resource names, dates from the issue time,
//! a trailer `/ID` derived from the content), so the archived hash can be re-derived.

use lopdf::{Object, StringFormat};
use printpdf::{
    ImageOptimizationOptions, Mm, OffsetDateTime, PdfDocument, PdfFont, PdfPage, PdfSaveOptions,
    XObject, XObjectId,
};
use sha2::{Digest, Sha256};

use super::fonts::{self, Weight};
use super::layout::{self, Inputs};
use super::qr::QrMatrix;
use super::{jpeg, Resolution, ResolutionError};

/// Renders the resolution as a one-page A4 PDF.
pub fn render(resolution: &Resolution) -> Result<Vec<u8>, ResolutionError> {
    resolution.check()?;
    let overview = jpeg::read_info(&resolution.photos.overview).map_err(|reason| {
        ResolutionError::NotJpeg {
            photo: "overview",
            reason,
        }
    })?;
    let plate =
        jpeg::read_info(&resolution.photos.plate).map_err(|reason| ResolutionError::NotJpeg {
            photo: "plate",
            reason,
        })?;
    let pay_qr = QrMatrix::encode(&resolution.payment_qr, "payment payload")?;
    let verify_qr = QrMatrix::encode(&resolution.verification_url, "verification url")?;
    let ops = layout::page_ops(&Inputs {
        resolution,
        overview,
        plate,
        pay_qr: &pay_qr,
        verify_qr: &verify_qr,
    })?;

    let title = format!("Постановление № {}", resolution.number);
    let mut doc = PdfDocument::new(&title);
    let issued = OffsetDateTime::from_unix_timestamp(resolution.issued_at.timestamp()).map_err(
        |reason| ResolutionError::PdfWrite {
            reason: format!("issue time out of range: {reason}"),
        },
    )?;
    let info = &mut doc.metadata.info;
    info.creation_date = issued;
    info.modification_date = issued;
    info.metadata_date = issued;
    info.author = resolution.authority.clone();
    info.subject = format!("{} {}", resolution.plate, resolution.article.number);
    info.creator = "kozomol".to_owned();
    info.producer = "kozomol-fines (printpdf 0.12)".to_owned();
    info.identifier = resolution.number.to_string();

    // Resources under fixed names (printpdf's `add_*` would draw random ones).
    let f = fonts::fonts();
    for weight in [Weight::Regular, Weight::Bold] {
        doc.resources
            .fonts
            .map
            .insert(fonts::font_id(weight), PdfFont::new(f.face(weight).clone()));
    }
    for (id, bytes, info) in [
        (layout::OVERVIEW_ID, &resolution.photos.overview, overview),
        (layout::PLATE_ID, &resolution.photos.plate, plate),
    ] {
        doc.resources.xobjects.map.insert(
            XObjectId(id.to_owned()),
            XObject::External(jpeg::image_xobject(bytes, info)),
        );
    }
    doc.pages = vec![PdfPage::new(
        Mm::from(printpdf::Pt(layout::PAGE_WIDTH)),
        Mm::from(printpdf::Pt(layout::PAGE_HEIGHT)),
        ops,
    )];
    save(&doc)
}

fn save_options() -> PdfSaveOptions {
    PdfSaveOptions {
        optimize: true,
        subset_fonts: true,
        secure: true,
        // The photos are raw DCT streams printpdf does not touch; should a decoded
        // image ever be added, it must not be downscaled nor re-encoded either.
        image_optimization: Some(ImageOptimizationOptions {
            quality: None,
            max_image_size: None,
            dither_greyscale: None,
            convert_to_greyscale: None,
            auto_optimize: Some(false),
            format: None,
        }),
    }
}

fn save(doc: &PdfDocument) -> Result<Vec<u8>, ResolutionError> {
    let mut warnings = Vec::new();
    let lo = doc.to_lopdf_document(&save_options(), &mut warnings);
    write_with_content_id(lo)
}

/// Compresses and writes `lo` with a trailer `/ID` derived from its content, so the
/// same document always makes the same bytes (print batches use it too).
pub(crate) fn write_with_content_id(mut lo: lopdf::Document) -> Result<Vec<u8>, ResolutionError> {
    // printpdf draws the trailer /ID at random. Write a zero placeholder, then put the
    // first 16 bytes of the file's SHA-256 in its place (same length, so the offsets
    // in the cross-reference table stay right). ISO 32000-1 14.4 asks for the same
    // value in both slots of a document that was never modified.
    let placeholder = vec![0u8; ID_LEN];
    lo.trailer.set(
        "ID",
        Object::Array(vec![
            Object::String(placeholder.clone(), StringFormat::Hexadecimal),
            Object::String(placeholder, StringFormat::Hexadecimal),
        ]),
    );
    lo.compress();
    let mut out = Vec::new();
    lo.save_to(&mut out)
        .map_err(|e| ResolutionError::PdfWrite {
            reason: e.to_string(),
        })?;
    let id = hex::encode_upper(&Sha256::digest(&out)[..ID_LEN]);
    let zeros = format!("<{}>", "0".repeat(2 * ID_LEN));
    let trailer = find_last(&out, b"trailer").ok_or_else(|| ResolutionError::PdfWrite {
        reason: "no trailer written".to_owned(),
    })?;
    let mut replaced = 0;
    let mut at = trailer;
    while let Some(pos) = find_from(&out, zeros.as_bytes(), at) {
        out[pos + 1..pos + 1 + 2 * ID_LEN].copy_from_slice(id.as_bytes());
        at = pos + zeros.len();
        replaced += 1;
    }
    if replaced != 2 {
        return Err(ResolutionError::PdfWrite {
            reason: format!("expected the two /ID placeholders, found {replaced}"),
        });
    }
    Ok(out)
}

const ID_LEN: usize = 16;

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn find_from(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}
