//! A first look at pushed Automerge bytes, before they touch a stored document.
//!
//! `load_incremental` quietly keeps whatever chunks it could parse and drops the rest, so
//! damaged bytes applied to a stored document would look like "no change". The hub
//! therefore classifies the bytes first: a whole document, well-formed changes (which
//! build on history the bytes do not carry), or neither.

use std::collections::BTreeSet;

use automerge::{AutoCommit, AutomergeError, Change};
use repere_core::document::on_received;

/// Automerge's chunk magic bytes (binary format specification, "chunk container").
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Magic, checksum, chunk type.
const HEADER_FIXED: usize = 4 + 4 + 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Loads on its own: a whole document (`save()`), or changes that start from nothing.
    Document { heads: Vec<[u8; 32]> },
    /// Well-formed changes that depend on history not in the bytes (`save_after()`).
    /// `heads` are the pushed changes nothing else in the bytes depends on, when every
    /// chunk is a plain change.
    Changes { heads: Option<Vec<[u8; 32]>> },
    /// Not Automerge bytes, or damaged ones.
    Malformed,
}

/// The shape of pushed bytes, and the document they load as when they load on their own
/// (a new record's whole document: the hub uses it instead of loading the bytes again).
pub fn inspect(bytes: &[u8]) -> (Shape, Option<AutoCommit>) {
    on_received(|| Ok(classify(bytes))).unwrap_or((Shape::Malformed, None))
}

fn classify(bytes: &[u8]) -> (Shape, Option<AutoCommit>) {
    match AutoCommit::load(bytes) {
        Ok(mut doc) => (
            Shape::Document {
                heads: sorted(doc.get_heads().iter().map(|h| h.0)),
            },
            Some(doc),
        ),
        Err(AutomergeError::MissingDeps) => (
            Shape::Changes {
                heads: change_heads(bytes),
            },
            None,
        ),
        Err(_) => (Shape::Malformed, None),
    }
}

/// Sorted, without duplicates: the form heads are compared and stored in.
pub fn sorted(heads: impl IntoIterator<Item = [u8; 32]>) -> Vec<[u8; 32]> {
    heads
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn change_heads(mut bytes: &[u8]) -> Option<Vec<[u8; 32]>> {
    let mut hashes = BTreeSet::new();
    let mut deps = BTreeSet::new();
    while !bytes.is_empty() {
        let len = chunk_len(bytes)?;
        let change = Change::try_from(&bytes[..len]).ok()?;
        hashes.insert(change.hash().0);
        deps.extend(change.deps().iter().map(|d| d.0));
        bytes = &bytes[len..];
    }
    Some(hashes.difference(&deps).copied().collect())
}

/// The length of the chunk at the start of `bytes`, header included.
fn chunk_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < HEADER_FIXED || bytes[..4] != MAGIC {
        return None;
    }
    let (data_len, leb_len) = uleb128(&bytes[HEADER_FIXED..])?;
    let total = HEADER_FIXED
        .checked_add(leb_len)?
        .checked_add(usize::try_from(data_len).ok()?)?;
    (total <= bytes.len()).then_some(total)
}

fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        let part = u64::from(byte & 0x7f);
        value |= part.checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;

    use super::*;

    #[test]
    fn tells_documents_changes_and_garbage_apart() {
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "a", 1).expect("put");
        let whole = doc.save();
        let base = doc.get_heads();
        doc.put(automerge::ROOT, "b", 2).expect("put");
        doc.commit();
        doc.put(automerge::ROOT, "c", 3).expect("put");
        let after = doc.save_after(&base);
        let heads = sorted(doc.get_heads().iter().map(|h| h.0));

        let (shape, loaded) = inspect(&whole);
        assert!(matches!(shape, Shape::Document { .. }));
        assert!(loaded.is_some_and(|mut d| d.get_heads() == base));
        assert_eq!(inspect(&after).0, Shape::Changes { heads: Some(heads) });
        assert_eq!(inspect(b"not automerge at all").0, Shape::Malformed);
        assert_eq!(inspect(&after[..after.len() - 3]).0, Shape::Malformed);
        assert_eq!(inspect(&whole[..whole.len() / 2]).0, Shape::Malformed);
        assert_eq!(uleb128(&[0xff; 12]), None);
    }
}
