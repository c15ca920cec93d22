//! Reads a tablet store's pages in clear, for byte searches (erasure and rectification
//! leave no byte behind, decision 14). The store is SQLCipher 4 with a raw 256-bit key:
//! every page of the database and of its WAL is AES-256-CBC encrypted with that key, its IV
//! stored after the data, then the HMAC; page 1 starts with the 16-byte salt in clear.
//! Pages are decrypted one by one, free and overwritten ones included, which is what a
//! search for leftover bytes needs (an SQL dump would only show live rows).

use std::path::Path;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};

type Decryptor = cbc::Decryptor<aes::Aes256>;

/// SQLCipher 4 defaults, which the store keeps.
const PAGE_SIZE: usize = 4096;
const IV_LEN: usize = 16;
/// IV (16) and HMAC-SHA512 (64) at the end of every page.
const RESERVE: usize = 80;
const SALT_LEN: usize = 16;
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// The decrypted pages of the store at `db` and of its WAL, concatenated.
pub fn plaintext(db: &Path, key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(bytes) = std::fs::read(db) {
        for (i, page) in bytes.chunks_exact(PAGE_SIZE).enumerate() {
            out.extend(decrypt_page(page, i == 0, key));
        }
    }
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(bytes) = std::fs::read(&wal)
        && bytes.len() > WAL_HEADER
    {
        for frame in bytes[WAL_HEADER..].chunks_exact(FRAME_HEADER + PAGE_SIZE) {
            let page_no = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            out.extend(decrypt_page(&frame[FRAME_HEADER..], page_no == 1, key));
        }
    }
    out
}

fn decrypt_page(page: &[u8], first: bool, key: &[u8; 32]) -> Vec<u8> {
    let start = if first { SALT_LEN } else { 0 };
    let end = PAGE_SIZE - RESERVE;
    let iv = &page[end..end + IV_LEN];
    let mut data = page[start..end].to_vec();
    match Decryptor::new(key.into(), iv.into()).decrypt_padded_mut::<NoPadding>(&mut data) {
        Ok(plain) => plain.to_vec(),
        Err(_) => Vec::new(),
    }
}

/// Whether `needle` is anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
