//! Post: many resolutions' PDFs merged into one print batch, so the print room prints
//! one file and stuffs one envelope per letter. Each letter keeps its own pages, in
//! the order given; what a page inherits from its document's page tree (resources,
//! media box) is copied onto it, since the old trees are dropped. The merged file is
//! written with a content-derived `/ID`, so one batch always makes the same bytes.
//!
//! Merging is CPU work: call it from a blocking pool.

use std::collections::HashSet;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId};

use crate::resolution::pdf::write_with_content_id;

/// What a page takes from its ancestors when it does not say itself (ISO 32000-1
/// 7.7.3.4).
const INHERITED: [&[u8]; 4] = [b"Resources", b"MediaBox", b"CropBox", b"Rotate"];
/// Deeper page trees than this are malformed (or loops).
const MAX_TREE_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("a print batch needs at least one document")]
    Empty,
    #[error("no document of the batch reads: {}", .0.join("; "))]
    NoneReadable(Vec<String>),
    #[error("the merged batch does not write: {0}")]
    Write(String),
}

/// One merged batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedPdf {
    pub bytes: Vec<u8>,
    pub pages: u32,
    /// For each input document, in input order: the page it starts on (from 1), or why
    /// it does not read and was left out. One bad letter costs its own place in the
    /// batch, not the batch.
    pub letters: Vec<Result<u32, String>>,
}

/// One document's pages, re-parented, and the objects they need, numbered from where
/// the batch has got to.
struct TakenDocument {
    objects: Vec<(ObjectId, Object)>,
    pages: Vec<(ObjectId, Dictionary)>,
    next_id: u32,
}

/// Merges `documents` into one PDF, in order, leaving out those that do not read.
pub fn merge_pdfs(documents: &[&[u8]]) -> Result<MergedPdf, PrintError> {
    if documents.is_empty() {
        return Err(PrintError::Empty);
    }
    let mut merged = Document::with_version("1.7");
    // A classic table, as the resolutions have: print-room software reads it, and the
    // content-derived /ID is written into its trailer.
    merged.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let pages_id = merged.new_object_id();
    let mut next_id = pages_id.0 + 1;
    let mut kids: Vec<Object> = Vec::new();
    let mut letters = Vec::with_capacity(documents.len());
    for (index, bytes) in documents.iter().enumerate() {
        let first_page = u32::try_from(kids.len() + 1)
            .map_err(|_| PrintError::Write("too many pages".into()))?;
        let taken = match take_document(bytes, next_id, pages_id) {
            Ok(taken) => taken,
            Err(reason) => {
                letters.push(Err(format!(
                    "document {index} of the print batch does not read: {reason}"
                )));
                continue;
            }
        };
        next_id = taken.next_id;
        merged.objects.extend(taken.objects);
        for (id, page) in taken.pages {
            merged.objects.insert(id, Object::Dictionary(page));
            kids.push(Object::Reference(id));
        }
        letters.push(Ok(first_page));
    }
    if kids.is_empty() {
        return Err(PrintError::NoneReadable(
            letters.into_iter().filter_map(Result::err).collect(),
        ));
    }
    let count =
        i64::try_from(kids.len()).map_err(|_| PrintError::Write("too many pages".into()))?;
    let pages =
        u32::try_from(kids.len()).map_err(|_| PrintError::Write("too many pages".into()))?;
    merged.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
        }),
    );
    merged.max_id = next_id;
    let catalog_id = merged.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    merged.trailer.set("Root", catalog_id);
    merged.prune_objects();
    merged.renumber_objects();
    let bytes = write_with_content_id(merged).map_err(|e| PrintError::Write(e.to_string()))?;
    Ok(MergedPdf {
        bytes,
        pages,
        letters,
    })
}

/// Reads one document and takes its pages and objects for the batch, renumbered from
/// `next_id`; nothing is added to the batch unless all of it reads.
fn take_document(bytes: &[u8], next_id: u32, pages_id: ObjectId) -> Result<TakenDocument, String> {
    let mut doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
    if doc.is_encrypted() {
        return Err("it is encrypted".into());
    }
    doc.renumber_objects_with(next_id);
    let next_id = doc.max_id + 1;
    let page_ids: Vec<ObjectId> = doc.get_pages().into_values().collect();
    if page_ids.is_empty() {
        return Err("it has no pages".into());
    }
    let mut pages = Vec::with_capacity(page_ids.len());
    for id in &page_ids {
        let mut page = doc
            .get_dictionary(*id)
            .map_err(|e| format!("page {id:?}: {e}"))?
            .clone();
        inherit(&doc, &mut page)?;
        page.set("Parent", pages_id);
        pages.push((*id, page));
    }
    // The old catalog and page tree go; the pages are re-parented, and what only the
    // old catalog referred to (metadata, outlines) is pruned at the end.
    let mut dropped: HashSet<ObjectId> = page_ids.iter().copied().collect();
    if let Ok(root) = doc.trailer.get(b"Root").and_then(Object::as_reference) {
        dropped.insert(root);
    }
    let objects = doc
        .objects
        .into_iter()
        .filter(|(id, object)| {
            !dropped.contains(id) && !object.type_name().is_ok_and(|t| t == b"Pages")
        })
        .collect();
    Ok(TakenDocument {
        objects,
        pages,
        next_id,
    })
}

/// Copies onto `page` what it inherits from its ancestors in `doc`'s page tree.
fn inherit(doc: &Document, page: &mut Dictionary) -> Result<(), String> {
    let mut parent = page.get(b"Parent").and_then(Object::as_reference).ok();
    let mut depth = 0;
    while let Some(id) = parent {
        depth += 1;
        if depth > MAX_TREE_DEPTH {
            return Err("the page tree is deeper than it can be".into());
        }
        let node = doc
            .get_dictionary(id)
            .map_err(|e| format!("page tree node {id:?}: {e}"))?;
        for key in INHERITED {
            if !page.has(key) {
                if let Ok(value) = node.get(key) {
                    page.set(key.to_vec(), value.clone());
                }
            }
        }
        parent = node.get(b"Parent").and_then(Object::as_reference).ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::Stream;

    /// A small PDF of `pages` pages whose media box and resources sit on the page tree,
    /// as many writers do, so merging must carry them down.
    fn sample(pages: usize, label: &str) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let tree = doc.new_object_id();
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let mut kids = Vec::new();
        for i in 0..pages {
            let text = format!("BT /F1 24 Tf 72 720 Td ({label} {i}) Tj ET");
            let content = doc.add_object(Stream::new(dictionary! {}, text.into_bytes()));
            let page = doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => tree, "Contents" => content,
            });
            kids.push(Object::Reference(page));
        }
        doc.objects.insert(
            tree,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => pages as i64,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => tree });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("sample writes");
        out
    }

    #[test]
    fn pages_keep_their_order_and_what_they_inherit() {
        let a = sample(1, "A");
        let b = sample(2, "B");
        let c = sample(1, "C");
        let merged = merge_pdfs(&[&a, &b, &c]).expect("merges");
        assert_eq!(merged.pages, 4);
        assert_eq!(merged.letters, [Ok(1), Ok(2), Ok(4)]);
        let doc = Document::load_mem(&merged.bytes).expect("merged reads");
        let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
        assert_eq!(pages.len(), 4);
        for (id, want) in pages.iter().zip(["(A 0)", "(B 0)", "(B 1)", "(C 0)"]) {
            let page = doc.get_dictionary(*id).expect("page");
            assert!(page.has(b"MediaBox") && page.has(b"Resources"));
            let content = doc.get_page_content(*id);
            assert!(
                String::from_utf8_lossy(&content).contains(want),
                "{want} not on its page"
            );
        }
        // The same batch makes the same bytes.
        assert_eq!(
            merge_pdfs(&[&a, &b, &c]).expect("merges").bytes,
            merged.bytes
        );
    }

    #[test]
    fn a_letter_that_does_not_read_is_left_out_and_the_rest_are_merged() {
        let a = sample(1, "A");
        let c = sample(2, "C");
        let merged = merge_pdfs(&[&a, b"not a pdf", &c]).expect("merges the rest");
        assert_eq!(merged.pages, 3);
        assert_eq!(merged.letters[0], Ok(1));
        assert!(merged.letters[1]
            .as_ref()
            .is_err_and(|why| why.contains("document 1")));
        assert_eq!(merged.letters[2], Ok(2));
        let doc = Document::load_mem(&merged.bytes).expect("merged reads");
        assert_eq!(doc.get_pages().len(), 3);
        // The same as merging the good ones alone.
        assert_eq!(merge_pdfs(&[&a, &c]).expect("merges").bytes, merged.bytes);
    }

    #[test]
    fn garbage_and_empty_batches_are_refused() {
        assert!(matches!(merge_pdfs(&[]), Err(PrintError::Empty)));
        assert!(matches!(
            merge_pdfs(&[b"not a pdf", b"%PDF-1.7 nor this"]),
            Err(PrintError::NoneReadable(why)) if why.len() == 2
        ));
    }
}
