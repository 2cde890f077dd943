//! The `Range` request header (RFC 9110 §14), for one byte range.
//!
//! Hand-written rather than `http-range-header` (tower-http's parser) because that crate
//! answers a suffix longer than the file, a reversed range and leading zeros with an error,
//! where RFC 9110 asks for the whole file, ignoring the header, and acceptance respectively.
//!
//! A request for several ranges is answered with the whole file (200): RFC 9110 lets a server
//! ignore `Range`, and no Ferry client asks for more than one range (resumes use `bytes=N-`),
//! so `multipart/byteranges` would be code without a user.

/// What to send for a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// 200 with everything: no usable `Range` header.
    Full,
    /// 206 with bytes `first..=last`.
    Partial { first: u64, last: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Evaluates a `Range` header value. Invalid syntax and other units are ignored (RFC 9110
/// §14.2: a server MAY ignore the header), which gives the whole file.
pub(super) fn evaluate(value: &str, len: u64) -> Outcome {
    let Some((unit, set)) = value.split_once('=') else {
        return Outcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Outcome::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Outcome::Full;
    };
    match (digits(first), digits(last)) {
        (Some(Some(first)), Some(last)) => {
            if last.is_some_and(|last| last < first) {
                return Outcome::Full;
            }
            if first >= len {
                return Outcome::Unsatisfiable;
            }
            Outcome::Partial {
                first,
                last: last.unwrap_or(u64::MAX).min(len - 1),
            }
        }
        (Some(None), Some(Some(suffix))) => {
            if suffix == 0 || len == 0 {
                return Outcome::Unsatisfiable;
            }
            Outcome::Partial {
                first: len.saturating_sub(suffix),
                last: len - 1,
            }
        }
        _ => Outcome::Full,
    }
}

/// `Some(None)` for an empty string, `Some(Some(n))` for 1*DIGIT (saturating: a position past
/// u64 is past any file), `None` for anything else.
fn digits(s: &str) -> Option<Option<u64>> {
    if s.is_empty() {
        return Some(None);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Some(Some(n))
}

#[cfg(test)]
mod tests {
    use super::{evaluate, Outcome};

    fn partial(first: u64, last: u64) -> Outcome {
        Outcome::Partial { first, last }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(evaluate("bytes=0-9", 100), partial(0, 9));
        assert_eq!(evaluate("bytes=10-", 100), partial(10, 99));
        assert_eq!(evaluate("bytes=-5", 100), partial(95, 99));
        assert_eq!(evaluate("bytes=90-200", 100), partial(90, 99));
        assert_eq!(evaluate("bytes=-500", 100), partial(0, 99));
        assert_eq!(evaluate("Bytes = 007-8", 100), partial(7, 8));
        assert_eq!(evaluate("bytes=99-99", 100), partial(99, 99));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(evaluate("bytes=100-", 100), Outcome::Unsatisfiable);
        assert_eq!(evaluate("bytes=999999-", 10), Outcome::Unsatisfiable);
        assert_eq!(
            evaluate("bytes=99999999999999999999999-", 10),
            Outcome::Unsatisfiable
        );
        assert_eq!(evaluate("bytes=-0", 10), Outcome::Unsatisfiable);
        assert_eq!(evaluate("bytes=0-", 0), Outcome::Unsatisfiable);
        assert_eq!(evaluate("bytes=-5", 0), Outcome::Unsatisfiable);
    }

    #[test]
    fn ignored() {
        for value in [
            "bytes=5-3",
            "bytes=0-1,5-6",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=-1-2",
            "items=0-1",
            "bytes 0-1",
            "",
        ] {
            assert_eq!(evaluate(value, 100), Outcome::Full, "{value:?}");
        }
    }
}
