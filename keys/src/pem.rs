//! Locating a PEM block inside a larger text.
//!
//! The RFC 7468 decoder in `der` refuses anything around the block, but real files carry
//! extras: `openssl x509 -text` puts a dump before the certificate, `openssl genpkey -text`
//! one after the key, and chains hold several blocks. We cut out the first block and hand
//! exactly that to the strict decoder.

/// The first PEM block in `text`, as `(label, block)`; `block` runs from `-----BEGIN` to
/// the end of its `-----END label-----` line. A description of what is missing on failure.
pub(crate) fn first_block(text: &str) -> Result<(&str, &str), String> {
    const BEGIN: &str = "-----BEGIN ";
    let start = text
        .find(BEGIN)
        .ok_or_else(|| "no PEM block found (expected a '-----BEGIN ...-----' line)".to_owned())?;
    let after_begin = &text[start + BEGIN.len()..];
    let label_len = after_begin
        .find("-----")
        .ok_or_else(|| "PEM BEGIN line is not terminated by '-----'".to_owned())?;
    let label = &after_begin[..label_len];
    if label.contains(['\n', '\r']) {
        return Err("PEM BEGIN line is not terminated by '-----'".to_owned());
    }
    let end_marker = format!("-----END {label}-----");
    let end_rel = text[start..]
        .find(&end_marker)
        .ok_or_else(|| format!("PEM block '{label}' has no '{end_marker}' line"))?;
    let end = start + end_rel + end_marker.len();
    Ok((label, &text[start..end]))
}

#[cfg(test)]
mod tests {
    use super::first_block;

    #[test]
    fn finds_block_between_other_text() {
        let text = "Certificate:\n  junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\ntrailer\n";
        let (label, block) = first_block(text).expect("block");
        assert_eq!(label, "CERTIFICATE");
        assert_eq!(
            block,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        );
    }

    #[test]
    fn reports_missing_parts() {
        assert!(first_block("nothing here").is_err());
        assert!(first_block("-----BEGIN X\nfoo").is_err());
        let err = first_block("-----BEGIN X-----\nAAAA\n-----END Y-----\n").expect_err("no end");
        assert!(err.contains("-----END X-----"), "{err}");
    }
}
