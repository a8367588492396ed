//! Assembling and writing the PDF with printpdf 0.12, deterministically: the same
//! resolution gives the same bytes (fixed resource names, dates from the issue time,
//! a trailer `/ID` derived from the resolution's number, issue time and payment code),
//! so the archived hash can be re-derived.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use lopdf::{Object, ObjectId, StringFormat};
use printpdf::{
    ImageOptimizationOptions, Mm, OffsetDateTime, Op, PdfDocument, PdfFont, PdfPage,
    PdfSaveOptions, TextItem, XObject, XObjectId,
};
use sha2::{Digest, Sha256};

use super::fonts::{self, Fonts, Program, Weight};
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
    let inputs = Inputs {
        resolution,
        overview,
        plate,
        pay_qr: &pay_qr,
        verify_qr: &verify_qr,
    };
    let laid = layout::page_ops(&inputs, fonts::prepared())?;
    let (set, ops) = if laid.covered {
        (fonts::prepared(), laid.ops)
    } else {
        (fonts::full(), layout::page_ops(&inputs, fonts::full())?.ops)
    };

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

    // Resources under fixed names (printpdf's `add_*` would draw random ones). The
    // prepared faces' font objects are attached after printpdf is done.
    if set.programs.is_none() {
        for weight in Weight::BOTH {
            doc.resources.fonts.map.insert(
                fonts::font_id(weight),
                PdfFont::new(set.face(weight).clone()),
            );
        }
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
    for (id, qr) in [
        (layout::PAY_QR_ID, &pay_qr),
        (layout::VERIFY_QR_ID, &verify_qr),
    ] {
        doc.resources.xobjects.map.insert(
            XObjectId(id.to_owned()),
            XObject::External(qr.form_xobject()),
        );
    }
    doc.pages = vec![PdfPage::new(
        Mm::from(printpdf::Pt(layout::PAGE_WIDTH)),
        Mm::from(printpdf::Pt(layout::PAGE_HEIGHT)),
        ops,
    )];
    save(&doc, set, &resolution_id(resolution))
}

fn save_options(set: &Fonts) -> PdfSaveOptions {
    PdfSaveOptions {
        optimize: true,
        // The prepared faces are subsets already and go in whole.
        subset_fonts: set.programs.is_none(),
        // `secure` drops the operators printpdf does not model; with the prepared faces
        // the layout writes its text operators itself (`layout::Page::text`). Every
        // operation on the page is kozomol's own, never taken from outside.
        secure: set.programs.is_none(),
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

fn save(doc: &PdfDocument, set: &Fonts, id: &[u8; ID_LEN]) -> Result<Vec<u8>, ResolutionError> {
    let mut warnings = Vec::new();
    let mut lo = doc.to_lopdf_document(&save_options(set), &mut warnings);
    if set.programs.is_some() {
        attach_prepared_fonts(&mut lo)?;
    }
    write_with_id(lo, id)
}

/// The prepared faces' font objects as printpdf writes them for a page that shows every
/// glyph of the repertoire (so their widths and ToUnicode maps cover any text the faces
/// can show), with the programs put in by [`embed_prepared`]; made once per process.
struct PreparedFontObjects {
    objects: BTreeMap<ObjectId, Object>,
    /// Resource name and font dictionary of each face.
    fonts: Vec<(Vec<u8>, ObjectId)>,
    max_id: u32,
}

fn prepared_font_objects() -> &'static PreparedFontObjects {
    static OBJECTS: OnceLock<PreparedFontObjects> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        let set = fonts::prepared();
        let mut doc = PdfDocument::new("fonts");
        let mut ops = Vec::new();
        for weight in Weight::BOTH {
            doc.resources.fonts.map.insert(
                fonts::font_id(weight),
                PdfFont::new(set.face(weight).clone()),
            );
            ops.extend([
                Op::StartTextSection,
                Op::SetFont {
                    font: fonts::handle(weight),
                    size: printpdf::Pt(10.0),
                },
                Op::ShowText {
                    items: vec![TextItem::Text(fonts::repertoire_text(weight))],
                },
                Op::EndTextSection,
            ]);
        }
        doc.pages = vec![PdfPage::new(Mm(210.0), Mm(297.0), ops)];
        let mut warnings = Vec::new();
        let mut lo = doc.to_lopdf_document(&save_options(set), &mut warnings);
        let programs = set
            .programs
            .as_ref()
            .expect("the prepared set has its programs");
        embed_prepared(&mut lo, programs);
        // Deflated once here, not in every document (the ToUnicode maps).
        deflate_streams(&mut lo);
        let fonts: Vec<(Vec<u8>, ObjectId)> = page_resources(&lo)
            .and_then(|resources| resources.get(b"Font").ok())
            .and_then(|fonts| resolve(&lo, fonts).as_dict().ok())
            .map(|fonts| {
                fonts
                    .iter()
                    .filter_map(|(name, font)| Some((name.clone(), font.as_reference().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(fonts.len(), 2, "printpdf should write both prepared faces");
        // Everything the two font dictionaries reach.
        let mut objects = BTreeMap::new();
        let mut pending: Vec<ObjectId> = fonts.iter().map(|(_, id)| *id).collect();
        while let Some(id) = pending.pop() {
            if objects.contains_key(&id) {
                continue;
            }
            let object = lo
                .objects
                .get(&id)
                .expect("a font object printpdf refers to exists")
                .clone();
            references(&object, &mut pending);
            objects.insert(id, object);
        }
        let max_id = objects.keys().map(|id| id.0).max().unwrap_or(0);
        PreparedFontObjects {
            objects,
            fonts,
            max_id,
        }
    })
}

/// Adds the prepared faces' font objects to `lo` under fresh object numbers and names
/// them in its page's resources, as the text operators the layout wrote expect.
fn attach_prepared_fonts(lo: &mut lopdf::Document) -> Result<(), ResolutionError> {
    let prepared = prepared_font_objects();
    let base = lo.max_id;
    debug_assert!(lo.objects.keys().all(|id| id.0 <= base));
    for (id, object) in &prepared.objects {
        let mut object = object.clone();
        renumber(&mut object, base);
        lo.objects.insert((id.0 + base, id.1), object);
    }
    lo.max_id = base + prepared.max_id;
    let fonts: lopdf::Dictionary = prepared
        .fonts
        .iter()
        .map(|(name, id)| (name.clone(), Object::Reference((id.0 + base, id.1))))
        .collect();
    let missing = || ResolutionError::PdfWrite {
        reason: "the page has no resources to name its fonts in".to_owned(),
    };
    let page = *lo.get_pages().values().next().ok_or_else(missing)?;
    let resources = match lo
        .get_dictionary(page)
        .map_err(|_| missing())?
        .get(b"Resources")
    {
        Ok(Object::Reference(id)) => Some(*id),
        Ok(Object::Dictionary(_)) => None,
        _ => return Err(missing()),
    };
    let dict = match resources {
        Some(id) => lo.get_dictionary_mut(id),
        None => lo
            .get_dictionary_mut(page)
            .and_then(|page| page.get_mut(b"Resources"))
            .and_then(Object::as_dict_mut),
    }
    .map_err(|_| missing())?;
    let replaced = dict.remove(b"Font");
    dict.set("Font", Object::Dictionary(fonts));
    // printpdf's own (empty) font dictionary would stay behind unreferenced.
    if let Some(Object::Reference(id)) = replaced {
        lo.objects.remove(&id);
    }
    Ok(())
}

/// The first page's resource dictionary.
fn page_resources(lo: &lopdf::Document) -> Option<&lopdf::Dictionary> {
    let page = *lo.get_pages().values().next()?;
    let resources = lo.get_dictionary(page).ok()?.get(b"Resources").ok()?;
    resolve(lo, resources).as_dict().ok()
}

fn resolve<'a>(lo: &'a lopdf::Document, object: &'a Object) -> &'a Object {
    match object {
        Object::Reference(id) => lo.objects.get(id).unwrap_or(object),
        _ => object,
    }
}

/// Every object `object` refers to, added to `into`.
fn references(object: &Object, into: &mut Vec<ObjectId>) {
    match object {
        Object::Reference(id) => into.push(*id),
        Object::Array(items) => items.iter().for_each(|item| references(item, into)),
        Object::Dictionary(dict) => dict.iter().for_each(|(_, v)| references(v, into)),
        Object::Stream(stream) => stream.dict.iter().for_each(|(_, v)| references(v, into)),
        _ => {}
    }
}

/// Moves every reference in `object` up by `base` object numbers.
fn renumber(object: &mut Object, base: u32) {
    match object {
        Object::Reference(id) => id.0 += base,
        Object::Array(items) => items.iter_mut().for_each(|item| renumber(item, base)),
        Object::Dictionary(dict) => dict.iter_mut().for_each(|(_, v)| renumber(v, base)),
        Object::Stream(stream) => stream.dict.iter_mut().for_each(|(_, v)| renumber(v, base)),
        _ => {}
    }
}

/// Puts the prepared programs in, deflated once per process, in the font objects every
/// document shares (printpdf hands over the raw bytes), and names each face as the
/// subset it is: the six-letter tag before its name on `/FontName` and both
/// `/BaseFont`s (ISO 32000-1, 9.6.4).
fn embed_prepared(lo: &mut lopdf::Document, programs: &[Program; 2]) {
    let tags = Weight::BOTH.map(|weight| fonts::font_id(weight).0);
    let descriptors: Vec<(ObjectId, ObjectId, Vec<u8>)> = lo
        .objects
        .iter()
        .filter_map(|(id, object)| {
            let dict = object.as_dict().ok()?;
            if dict.get(b"Type").and_then(Object::as_name).ok()? != b"FontDescriptor" {
                return None;
            }
            let program = dict.get(b"FontFile2").and_then(Object::as_reference).ok()?;
            let name = dict.get(b"FontName").and_then(Object::as_name).ok()?;
            Some((*id, program, name.to_vec()))
        })
        .collect();
    let mut renamed = BTreeMap::new();
    for (descriptor, program_id, name) in descriptors {
        let Some(Object::Stream(stream)) = lo.objects.get_mut(&program_id) else {
            continue;
        };
        let Some(which) = programs.iter().position(|p| p.raw == stream.content) else {
            continue;
        };
        stream.set_content(programs[which].deflated.clone());
        stream.dict.set("Filter", "FlateDecode");
        let mut tagged = format!("{}+", tags[which]).into_bytes();
        tagged.extend_from_slice(&name);
        if let Some(Object::Dictionary(dict)) = lo.objects.get_mut(&descriptor) {
            dict.set("FontName", Object::Name(tagged.clone()));
        }
        renamed.insert(name, tagged);
    }
    for object in lo.objects.values_mut() {
        let Object::Dictionary(dict) = object else {
            continue;
        };
        let tagged = match dict.get(b"BaseFont").and_then(Object::as_name) {
            Ok(name) => renamed.get(name).cloned(),
            Err(_) => None,
        };
        if let Some(tagged) = tagged {
            dict.set("BaseFont", Object::Name(tagged));
        }
    }
}

/// zlib-deflates `bytes` (the `/FlateDecode` filter's format).
pub(crate) fn deflate(bytes: &[u8], level: Compression) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 2), level);
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// [`deflate`] at the fastest level, with this thread's compressor reset between uses:
/// a new one allocates and zeroes its window and hash tables (≈ 300 KB), which for the
/// few small streams of a page cost more than compressing them. The output is the same.
pub(crate) fn deflate_fast(bytes: &[u8]) -> Vec<u8> {
    thread_local! {
        static FAST: RefCell<ZlibEncoder<Vec<u8>>> =
            RefCell::new(ZlibEncoder::new(Vec::new(), Compression::fast()));
    }
    FAST.with(|encoder| {
        let mut encoder = encoder.borrow_mut();
        // Nothing of this stream is written yet, so its output may be swapped in.
        *encoder.get_mut() = Vec::with_capacity(bytes.len() / 2);
        // Writing into a Vec cannot fail; `reset` finishes the stream and hands its
        // output back, leaving the compressor fresh for the next one.
        let _ = encoder.write_all(bytes);
        encoder.reset(Vec::new()).unwrap_or_default()
    })
}

/// Deflates every stream not yet filtered, as lopdf's `compress` does but at the
/// fastest level: `best` took longer than the rest of the rendering together, for
/// ≈ 4 KB less per resolution (the page stream; the photos and fonts come compressed).
fn deflate_streams(lo: &mut lopdf::Document) {
    for object in lo.objects.values_mut() {
        let Object::Stream(stream) = object else {
            continue;
        };
        if !stream.allows_compression || stream.dict.get(b"Filter").is_ok() {
            continue;
        }
        let deflated = deflate_fast(&stream.content);
        if deflated.len() < stream.content.len() {
            stream.dict.set("Filter", "FlateDecode");
            stream.set_content(deflated);
        }
    }
}

/// The resolution's trailer `/ID`: the first 16 bytes of the SHA-256 of what makes it
/// unique (its number, issue instant and payment code). Hashing the whole file, as
/// print batches do, would cost a pass over its ≈ 200 KB for every document.
fn resolution_id(resolution: &Resolution) -> [u8; ID_LEN] {
    let mut hasher = Sha256::new();
    for part in [
        "kozomol resolution".as_bytes(),
        resolution.number.to_string().as_bytes(),
        resolution
            .issued_at
            .timestamp_millis()
            .to_string()
            .as_bytes(),
        resolution.payment_code.as_bytes(),
    ] {
        hasher.update(part);
        // A separator no part contains, so that no two lists of parts hash alike.
        hasher.update([0]);
    }
    let mut id = [0; ID_LEN];
    id.copy_from_slice(&hasher.finalize()[..ID_LEN]);
    id
}

/// Compresses and writes `lo` with `id` in both slots of the trailer's `/ID` (ISO
/// 32000-1 14.4 asks for the same value twice in a document never modified).
fn write_with_id(mut lo: lopdf::Document, id: &[u8; ID_LEN]) -> Result<Vec<u8>, ResolutionError> {
    lo.trailer.set(
        "ID",
        Object::Array(vec![
            Object::String(id.to_vec(), StringFormat::Hexadecimal),
            Object::String(id.to_vec(), StringFormat::Hexadecimal),
        ]),
    );
    deflate_streams(&mut lo);
    let mut out = Vec::new();
    lo.save_to(&mut out)
        .map_err(|e| ResolutionError::PdfWrite {
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// Compresses and writes `lo` with a trailer `/ID` derived from its content, so the
/// same document always makes the same bytes (print batches, whose pages have no one
/// number, use it).
pub(crate) fn write_with_content_id(lo: lopdf::Document) -> Result<Vec<u8>, ResolutionError> {
    // printpdf and lopdf draw the trailer /ID at random. Write a zero placeholder, then
    // put the first 16 bytes of the file's SHA-256 in its place (same length, so the
    // offsets in the cross-reference table stay right).
    let mut out = write_with_id(lo, &[0; ID_LEN])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_compressor_writes_what_a_new_one_does() {
        let inputs: [&[u8]; 4] = [
            b"0 g\n1 0 0 1 0 0 cm\n",
            &[0; 10_000],
            b"",
            b"BT /DJVREG 9 Tf 56.7 800 Td <002A0033> Tj ET\n",
        ];
        // Twice over, so every input also follows another on the same thread.
        for bytes in inputs.iter().chain(inputs.iter()) {
            assert_eq!(deflate_fast(bytes), deflate(bytes, Compression::fast()));
        }
    }
}
