use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An expiry time, written exactly as TUF requires (`YYYY-MM-DDTHH:MM:SSZ`). Any other form is
/// refused on input, so what we re-serialise is what was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expires(pub DateTime<Utc>);

const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

impl Expires {
    pub fn parse(s: &str) -> Option<Expires> {
        let naive = NaiveDateTime::parse_from_str(s, FORMAT).ok()?;
        let t = naive.and_utc();
        // chrono accepts some non-canonical spellings (e.g. no zero padding); refuse them.
        (t.format(FORMAT).to_string() == s).then_some(Expires(t))
    }

    /// `now + duration`, truncated to whole seconds.
    pub fn after(now: DateTime<Utc>, duration: chrono::Duration) -> Expires {
        let t = now + duration;
        Expires(DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t))
    }
}

impl std::fmt::Display for Expires {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format(FORMAT))
    }
}

impl Serialize for Expires {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Expires::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expires {s:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_spellings() {
        let e = Expires::parse("2030-01-02T03:04:05Z").expect("valid");
        assert_eq!(e.to_string(), "2030-01-02T03:04:05Z");
        assert!(Expires::parse("2030-01-02T03:04:05+00:00").is_none());
        assert!(Expires::parse("2030-01-02T03:04:05.5Z").is_none());
        assert!(Expires::parse("2030-1-02T03:04:05Z").is_none());
    }
}
