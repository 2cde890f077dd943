//! The two commits of an OSTree static delta file (`ostree static-delta generate --inline
//! --filename`), read from its superblock so `ferry repo add-target --ostree-delta FILE` can
//! fill `custom.ostree` without being told. The superblock is a GVariant tuple
//! `(a{sv} t ay ay ...)`: metadata, a timestamp, the `from` checksum (empty for a delta from
//! nothing) and the `to` checksum, each 32 raw bytes. Its variable-size members end where the
//! framing offsets at the very end of the file say (little-endian, in reverse order, each as
//! wide as the file's size needs), so only the head and the last three offsets are read.

/// How far into the file the checksums may end: the metadata before them is a few entries.
pub const MAX_HEAD: u64 = 1 << 20;

/// The width of a framing offset in a GVariant container of `len` bytes.
pub fn offset_size(len: u64) -> usize {
    match len {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// From the file's length, its last `3 * offset_size(len)` bytes and its first bytes (at least
/// up to the end of the `to` checksum, at most [`MAX_HEAD`]): the `from` commit (None for a
/// delta from nothing) and the `to` commit, as lowercase hex; Err names what does not fit.
pub fn delta_commits(
    len: u64,
    tail: &[u8],
    head: &[u8],
) -> Result<(Option<String>, String), String> {
    let size = offset_size(len);
    if tail.len() != 3 * size || len < tail.len() as u64 {
        return Err(format!(
            "a file of {len} bytes has no room for its framing offsets"
        ));
    }
    let word = |i: usize| -> u64 {
        // The i-th offset from the end (1-based).
        let at = tail.len() - i * size;
        let mut bytes = [0u8; 8];
        bytes[..size].copy_from_slice(&tail[at..at + size]);
        u64::from_le_bytes(bytes)
    };
    let metadata_end = word(1);
    let from_start = metadata_end.div_ceil(8).saturating_mul(8).saturating_add(8);
    let (from_end, to_end) = (word(2), word(3));
    if !(from_start <= from_end && from_end <= to_end && to_end <= len) {
        return Err(format!(
            "framing offsets {metadata_end}, {from_end}, {to_end} out of order for {len} bytes"
        ));
    }
    if to_end > head.len() as u64 {
        return Err(format!(
            "the checksums end at byte {to_end}, past the {} bytes read",
            head.len()
        ));
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let from = &head[from_start as usize..from_end as usize];
    let to = &head[from_end as usize..to_end as usize];
    if to.len() != 32 || !(from.is_empty() || from.len() == 32) {
        return Err(format!(
            "checksums of {} and {} bytes; expected 32 (from may be empty)",
            from.len(),
            to.len()
        ));
    }
    Ok(((!from.is_empty()).then(|| hex(from)), hex(to)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A superblock laid out as ostree writes one: metadata, timestamp, from, to, then more
    /// members, and the framing offsets last.
    fn superblock(from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut b = vec![7u8; 13]; // a{sv} metadata
        let metadata_end = b.len();
        b.resize(16, 0); // align the timestamp
        b.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        b.extend_from_slice(from);
        let from_end = b.len();
        b.extend_from_slice(to);
        let to_end = b.len();
        b.extend_from_slice(&[9u8; 40]); // the commit and the parts
        for off in [to_end, from_end, metadata_end] {
            b.push(off as u8);
        }
        b
    }

    #[test]
    fn the_commits_come_from_the_framed_members() {
        let (from, to) = ([0xab; 32], [0x01; 32]);
        let b = superblock(&from, &to);
        let n = b.len() as u64;
        let got = delta_commits(n, &b[b.len() - 3..], &b).unwrap();
        assert_eq!(got, (Some("ab".repeat(32)), "01".repeat(32)));
        let b = superblock(&[], &to);
        let got = delta_commits(b.len() as u64, &b[b.len() - 3..], &b).unwrap();
        assert_eq!(got, (None, "01".repeat(32)));
    }

    #[test]
    fn what_does_not_fit_is_an_error_not_a_panic() {
        let b = superblock(&[1; 5], &[2; 32]);
        let e = delta_commits(b.len() as u64, &b[b.len() - 3..], &b).unwrap_err();
        assert!(e.contains("expected 32"), "{e}");
        assert!(delta_commits(2, &[0, 0, 0], &[]).is_err());
        let b = superblock(&[], &[2; 32]);
        assert!(delta_commits(b.len() as u64, &b[b.len() - 3..], &b[..20]).is_err());
        assert!(delta_commits(b.len() as u64, &[255, 255, 255], &b).is_err());
    }
}
