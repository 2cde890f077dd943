//! Request headers that choose the representation: `Accept-Encoding` and the conditionals
//! (`If-None-Match`, `If-Modified-Since`, `If-Range`), after RFC 9110 §12.5.3 and §13.

use axum::http::header::{ACCEPT_ENCODING, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE};
use axum::http::HeaderMap;
use std::time::SystemTime;

/// Whether the client takes gzip: `gzip` (or `x-gzip`) listed with a non-zero weight, or not
/// listed and `*` has a non-zero weight.
pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in list_items(headers, ACCEPT_ENCODING) {
        let mut params = item.split(';');
        let coding = params.next().unwrap_or_default().trim();
        let weight = params
            .find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim().eq_ignore_ascii_case("q").then(|| value.trim())
            })
            .map_or(Some(1.0), |q| q.parse::<f32>().ok());
        let Some(weight) = weight else { continue };
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(weight);
        } else if coding == "*" {
            any = Some(weight);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// Whether the client already holds the representation tagged `etag` (a quoted strong tag):
/// `If-None-Match` by weak comparison, else `If-Modified-Since` against `modified`.
pub(super) fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    if headers.contains_key(IF_NONE_MATCH) {
        return list_items(headers, IF_NONE_MATCH)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    }
    let since = headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified.map(whole_seconds)) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Whether a `Range` may be honoured: no `If-Range`, or one naming the current representation
/// (strong comparison for a tag, exact `Last-Modified` for a date). A stale resume gets the
/// whole new file instead of bytes spliced from two versions.
pub(super) fn range_allowed(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    let Some(value) = headers.get(IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return value == etag;
    }
    if value.starts_with("W/") {
        return false;
    }
    match (httpdate::parse_http_date(value), modified) {
        (Ok(date), Some(modified)) => whole_seconds(modified) == date,
        _ => false,
    }
}

/// `Last-Modified` has one-second resolution; comparisons must drop the rest.
fn whole_seconds(t: SystemTime) -> SystemTime {
    httpdate::HttpDate::from(t).into()
}

fn list_items(
    headers: &HeaderMap,
    name: axum::http::HeaderName,
) -> impl Iterator<Item = &str> + '_ {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::time::Duration;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_str(value).expect("test header"),
            );
        }
        map
    }

    #[test]
    fn gzip_acceptance_follows_weights() {
        assert!(accepts_gzip(&headers(&[(ACCEPT_ENCODING, "gzip")])));
        assert!(accepts_gzip(&headers(&[(
            ACCEPT_ENCODING,
            "br, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[(ACCEPT_ENCODING, "*")])));
        assert!(!accepts_gzip(&headers(&[(ACCEPT_ENCODING, "gzip;q=0, *")])));
        assert!(!accepts_gzip(&headers(&[(ACCEPT_ENCODING, "identity")])));
        assert!(!accepts_gzip(&headers(&[(ACCEPT_ENCODING, "gzip;q=x")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn conditionals() {
        let tag = "\"abc\"";
        assert!(not_modified(
            &headers(&[(IF_NONE_MATCH, "\"x\", W/\"abc\"")]),
            tag,
            None
        ));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "*")]), tag, None));
        assert!(!not_modified(
            &headers(&[(IF_NONE_MATCH, "\"abcd\"")]),
            tag,
            None
        ));
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let date = httpdate::fmt_http_date(t);
        assert!(not_modified(
            &headers(&[(IF_MODIFIED_SINCE, &date)]),
            tag,
            Some(t)
        ));
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_001);
        assert!(!not_modified(
            &headers(&[(IF_MODIFIED_SINCE, &date)]),
            tag,
            Some(later)
        ));
        assert!(range_allowed(&HeaderMap::new(), tag, None));
        assert!(range_allowed(&headers(&[(IF_RANGE, tag)]), tag, None));
        assert!(!range_allowed(
            &headers(&[(IF_RANGE, "W/\"abc\"")]),
            tag,
            None
        ));
        assert!(range_allowed(&headers(&[(IF_RANGE, &date)]), tag, Some(t)));
        assert!(!range_allowed(
            &headers(&[(IF_RANGE, &date)]),
            tag,
            Some(later)
        ));
    }
}
