//! A bounded first reading of Automerge bytes received from elsewhere (a push on the
//! server, a pull or a peer on a tablet), before Automerge itself loads them.
//!
//! Automerge's storage is small on the wire and large in memory: columns may be deflated,
//! changes may come as deflated chunks, and run-length encoded columns say "this value
//! a billion times" in a few bytes. Loading such bytes builds the whole thing in memory
//! (a 1 KB push once took a server to 1.7 GB). This reader walks the chunk containers and
//! every column as the binary format defines them, inflates what is deflated under a cap,
//! and counts each column's items without building anything, so the caller can refuse
//! bytes whose inflated size or operation count is out of proportion with a record.
//!
//! Format: "Automerge binary format", chunks and columns (the chunk container, document and
//! change chunks; column specifications `id << 4 | deflate << 3 | type`).

use std::io::Read;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const DEFLATE_BIT: u64 = 0b1000;

/// What received bytes may cost once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes of all chunks and columns once inflated.
    pub max_inflated_bytes: usize,
    /// Items in any one column (operations, changes, values).
    pub max_column_items: u64,
}

impl Bounds {
    /// Generous for one record (a visit with long notes edited many times is a few
    /// thousand operations and tens of kilobytes), tiny for a machine.
    pub const RECORD: Bounds = Bounds {
        max_inflated_bytes: 4 * 1024 * 1024,
        max_column_items: 200_000,
    };
}

/// What the bytes hold, as far as the bounded reading went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measure {
    pub chunks: usize,
    /// Bytes once every deflated part is inflated.
    pub inflated_bytes: usize,
    /// The largest item count of any column: an upper bound of operations per chunk.
    pub max_items: u64,
    /// Changes held: one per change chunk, plus those a document chunk lists.
    pub changes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unbounded {
    #[error("not Automerge bytes, or damaged ones")]
    Malformed,
    #[error("the bytes inflate past {0} bytes")]
    TooLarge(usize),
    #[error("a column holds more than {0} items")]
    TooManyItems(u64),
    #[error("chunk type {0} is not accepted")]
    ChunkType(u8),
}

/// Reads `bytes` (one or more chunks) within `bounds`.
pub fn measure(bytes: &[u8], bounds: Bounds) -> Result<Measure, Unbounded> {
    let mut m = Measure::default();
    let mut rest = bytes;
    if rest.is_empty() {
        return Err(Unbounded::Malformed);
    }
    while !rest.is_empty() {
        let mut r = Reader(rest);
        if r.take(4)? != MAGIC {
            return Err(Unbounded::Malformed);
        }
        r.take(4)?; // checksum: Automerge verifies it
        let kind = r.byte()?;
        let len = r.len()?;
        let data = r.take(len)?;
        rest = r.0;
        m.chunks += 1;
        m.inflated_bytes = add(m.inflated_bytes, data.len(), bounds)?;
        match kind {
            DOCUMENT => document(data, bounds, &mut m)?,
            CHANGE => change(data, bounds, &mut m)?,
            COMPRESSED_CHANGE => {
                let inflated = inflate(data, bounds, m.inflated_bytes)?;
                m.inflated_bytes = add(m.inflated_bytes, inflated.len(), bounds)?;
                change(&inflated, bounds, &mut m)?;
            }
            other => return Err(Unbounded::ChunkType(other)),
        }
    }
    Ok(m)
}

/// The heads written in the header of `bytes` when they are exactly one document chunk
/// (what `save` writes), read without loading the document; `None` for anything else
/// (changes, several chunks, damaged bytes). Automerge checks these heads against the
/// changes whenever it loads a document, so for bytes that were loaded once (every stored
/// and every validated document) they are the document's heads: comparing them tells
/// whether two copies are in step without parsing either.
pub fn document_heads(bytes: &[u8]) -> Option<Vec<[u8; 32]>> {
    let mut r = Reader(bytes);
    if r.take(4).ok()? != MAGIC {
        return None;
    }
    r.take(4).ok()?;
    if r.byte().ok()? != DOCUMENT {
        return None;
    }
    let len = r.len().ok()?;
    if len != r.0.len() {
        return None;
    }
    let actors = r.count(1).ok()?;
    for _ in 0..actors {
        let len = r.len().ok()?;
        r.take(len).ok()?;
    }
    let heads = r.count(32).ok()?;
    let mut out: Vec<[u8; 32]> = (0..heads)
        .map(|_| r.take(32).ok().and_then(|h| h.try_into().ok()))
        .collect::<Option<_>>()?;
    out.sort_unstable();
    Some(out)
}

fn add(total: usize, more: usize, bounds: Bounds) -> Result<usize, Unbounded> {
    let sum = total.saturating_add(more);
    if sum > bounds.max_inflated_bytes {
        Err(Unbounded::TooLarge(bounds.max_inflated_bytes))
    } else {
        Ok(sum)
    }
}

fn document(data: &[u8], bounds: Bounds, m: &mut Measure) -> Result<(), Unbounded> {
    let mut r = Reader(data);
    let actors = r.count(1)?;
    for _ in 0..actors {
        let len = r.len()?;
        r.take(len)?;
    }
    let heads = r.count(32)?;
    r.take(heads.checked_mul(32).ok_or(Unbounded::Malformed)?)?;
    let change_meta = r.columns()?;
    let ops_meta = r.columns()?;
    let change_items = columns(&mut r, &change_meta, bounds, m)?;
    columns(&mut r, &ops_meta, bounds, m)?;
    // Every change-metadata column has one item per change (the actor column at least).
    m.changes = m.changes.saturating_add(change_items);
    Ok(())
}

fn change(data: &[u8], bounds: Bounds, m: &mut Measure) -> Result<(), Unbounded> {
    let mut r = Reader(data);
    let deps = r.count(32)?;
    r.take(deps.checked_mul(32).ok_or(Unbounded::Malformed)?)?;
    let actor = r.len()?;
    r.take(actor)?;
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    let message = r.len()?;
    r.take(message)?;
    let others = r.count(1)?;
    for _ in 0..others {
        let len = r.len()?;
        r.take(len)?;
    }
    let ops_meta = r.columns()?;
    columns(&mut r, &ops_meta, bounds, m)?;
    m.changes = m.changes.saturating_add(1);
    Ok(())
}

/// Reads the data of `specs`' columns in order; returns the largest item count.
fn columns(
    r: &mut Reader<'_>,
    specs: &[(u64, usize)],
    bounds: Bounds,
    m: &mut Measure,
) -> Result<u64, Unbounded> {
    let mut largest = 0;
    for &(spec, len) in specs {
        let raw = r.take(len)?;
        let inflated;
        let data = if spec & DEFLATE_BIT != 0 {
            inflated = inflate(raw, bounds, m.inflated_bytes)?;
            m.inflated_bytes = add(m.inflated_bytes, inflated.len(), bounds)?;
            &inflated[..]
        } else {
            raw
        };
        let items = items(spec & 0b111, data, bounds.max_column_items)?;
        largest = largest.max(items);
    }
    m.max_items = m.max_items.max(largest);
    Ok(largest)
}

/// How many items a column of `col_type` holds, without materialising them.
fn items(col_type: u64, data: &[u8], max: u64) -> Result<u64, Unbounded> {
    let mut r = Reader(data);
    let mut total: u64 = 0;
    let mut bump = |n: u64| {
        total = total.saturating_add(n);
        if total > max {
            Err(Unbounded::TooManyItems(max))
        } else {
            Ok(())
        }
    };
    match col_type {
        // Raw values: their count is the value-metadata column's.
        7 => return Ok(0),
        // Booleans: alternating run lengths.
        4 => {
            while !r.0.is_empty() {
                bump(r.uleb()?)?;
            }
        }
        // Run-length encoded: group, actor, integer, delta, string, value metadata.
        _ => {
            while !r.0.is_empty() {
                let count = r.sleb()?;
                if count > 0 {
                    bump(count.unsigned_abs())?;
                    value(&mut r, col_type)?;
                } else if count == 0 {
                    bump(r.uleb()?)?;
                } else {
                    let n = count.unsigned_abs();
                    bump(n)?;
                    for _ in 0..n {
                        value(&mut r, col_type)?;
                    }
                }
            }
        }
    }
    Ok(total)
}

fn value(r: &mut Reader<'_>, col_type: u64) -> Result<(), Unbounded> {
    match col_type {
        3 => r.sleb().map(drop),
        5 => {
            let len = r.len()?;
            r.take(len).map(drop)
        }
        _ => r.uleb().map(drop),
    }
}

/// Inflates raw deflate data, refusing to go past what is left of the bounds.
fn inflate(data: &[u8], bounds: Bounds, used: usize) -> Result<Vec<u8>, Unbounded> {
    let cap = bounds.max_inflated_bytes.saturating_sub(used);
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| Unbounded::Malformed)?;
    if out.len() > cap {
        return Err(Unbounded::TooLarge(bounds.max_inflated_bytes));
    }
    Ok(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unbounded> {
        if n > self.0.len() {
            return Err(Unbounded::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Unbounded> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Result<u64, Unbounded> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f)
                .checked_shl(7 * i)
                .ok_or(Unbounded::Malformed)?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Unbounded::Malformed)
    }

    fn sleb(&mut self) -> Result<i64, Unbounded> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            if shift >= 64 {
                return Err(Unbounded::Malformed);
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// A length that must fit in what is left.
    fn len(&mut self) -> Result<usize, Unbounded> {
        let n = usize::try_from(self.uleb()?).map_err(|_| Unbounded::Malformed)?;
        if n > self.0.len() {
            return Err(Unbounded::Malformed);
        }
        Ok(n)
    }

    /// A count of items of at least `min_size` bytes each, which must fit in what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, Unbounded> {
        let n = usize::try_from(self.uleb()?).map_err(|_| Unbounded::Malformed)?;
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(Unbounded::Malformed);
        }
        Ok(n)
    }

    /// Column specifications and data lengths; their data must fit in what is left.
    fn columns(&mut self) -> Result<Vec<(u64, usize)>, Unbounded> {
        let n = self.count(2)?;
        let mut out = Vec::with_capacity(n);
        let mut total: usize = 0;
        for _ in 0..n {
            let spec = self.uleb()?;
            let len = usize::try_from(self.uleb()?).map_err(|_| Unbounded::Malformed)?;
            total = total.checked_add(len).ok_or(Unbounded::Malformed)?;
            out.push((spec, len));
        }
        if total > self.0.len() {
            return Err(Unbounded::Malformed);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ReadDoc};

    use super::*;

    fn small_doc() -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "a", "bonjour").expect("put");
        let text = doc
            .put_object(automerge::ROOT, "h", ObjType::Text)
            .expect("text");
        doc.splice_text(&text, 0, 0, &"Rencontré à la mairie. ".repeat(40))
            .expect("splice");
        doc.commit();
        doc
    }

    #[test]
    fn ordinary_documents_and_changes_read_within_bounds() {
        let mut doc = small_doc();
        for bytes in [doc.save(), doc.save_nocompress(), doc.save_after(&[])] {
            let m = measure(&bytes, Bounds::RECORD).expect("within bounds");
            assert!(m.changes >= 1, "{m:?}");
            assert!(m.max_items >= 900, "the text is ~920 ops: {m:?}");
        }
        let heads = doc.get_heads();
        doc.put(automerge::ROOT, "b", 2).expect("put");
        doc.commit();
        let m = measure(&doc.save_after(&heads), Bounds::RECORD).expect("one change");
        assert_eq!(m.changes, 1);
        assert_eq!(doc.length(automerge::ROOT), 3);
    }

    #[test]
    fn document_heads_are_read_from_the_header_of_one_document_chunk() {
        let mut doc = small_doc();
        let other = doc.fork().with_actor(automerge::ActorId::random());
        let mut other = other;
        other.put(automerge::ROOT, "b", 1).expect("put");
        other.commit();
        doc.put(automerge::ROOT, "c", 2).expect("put");
        doc.commit();
        doc.merge(&mut other).expect("merge");
        let mut expected: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
        expected.sort_unstable();
        assert_eq!(expected.len(), 2, "two concurrent heads");
        for bytes in [doc.save(), doc.save_nocompress()] {
            assert_eq!(document_heads(&bytes), Some(expected.clone()));
        }
        // Changes, a document followed by more chunks, and damaged bytes tell nothing.
        assert_eq!(document_heads(&doc.save_after(&[])), None);
        let mut more = doc.save();
        more.extend(other.save_after(&[]));
        assert_eq!(document_heads(&more), None);
        let bytes = doc.save();
        for cut in [0, 3, 9, 12, bytes.len() - 1] {
            assert_eq!(document_heads(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(document_heads(b"pas un document"), None);
    }

    #[test]
    fn a_huge_deflated_string_is_refused_without_inflating_it_whole() {
        let mut doc = AutoCommit::new();
        // 8 MB of one letter: deflated by Automerge's column compression to a few KB.
        doc.put(automerge::ROOT, "a", "x".repeat(8 * 1024 * 1024))
            .expect("put");
        let bytes = doc.save();
        assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
        assert_eq!(
            measure(&bytes, Bounds::RECORD),
            Err(Unbounded::TooLarge(Bounds::RECORD.max_inflated_bytes))
        );
    }

    #[test]
    fn too_many_operations_are_refused() {
        let mut doc = AutoCommit::new();
        let list = doc
            .put_object(automerge::ROOT, "c", ObjType::List)
            .expect("list");
        for i in 0..2_000 {
            doc.insert(&list, i, 1).expect("insert");
        }
        let bytes = doc.save();
        let tight = Bounds {
            max_column_items: 1_000,
            ..Bounds::RECORD
        };
        assert_eq!(measure(&bytes, tight), Err(Unbounded::TooManyItems(1_000)));
        assert!(measure(&bytes, Bounds::RECORD).is_ok());
    }

    #[test]
    fn garbage_truncation_and_other_chunks_are_malformed() {
        let bytes = small_doc().save();
        assert_eq!(measure(b"", Bounds::RECORD), Err(Unbounded::Malformed));
        assert_eq!(
            measure(b"pas un document", Bounds::RECORD),
            Err(Unbounded::Malformed)
        );
        for cut in [3, 9, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                measure(&bytes[..cut], Bounds::RECORD).is_err(),
                "cut at {cut}"
            );
        }
        let mut bundle = bytes.clone();
        bundle[8] = 3;
        assert_eq!(
            measure(&bundle, Bounds::RECORD),
            Err(Unbounded::ChunkType(3))
        );
        // A run length of 2^62 in a few bytes.
        assert_eq!(
            items(
                2,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x01],
                10
            ),
            Err(Unbounded::TooManyItems(10))
        );
    }
}
