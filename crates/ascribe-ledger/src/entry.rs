//! Ledger entries and their canonical bytes.
//!
//! An entry is a JSON object with exactly five members, serialised with the JSON
//! Canonicalization Scheme (RFC 8785):
//!
//! ```text
//! {"actor":"admin","body":{...},"kind":"alias.rotated","seq":41,"time":"2026-12-03T16:31:37.123456Z"}
//! ```
//!
//! `seq` is the entry's index in the Merkle tree, starting at 0. `time` is UTC with exactly six
//! fractional digits, so that the text of a time is as canonical as the rest of the entry.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value};

/// The largest `seq` an entry may carry: JSON numbers are exact only up to 2^53.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// The longest `actor` accepted, in bytes.
pub const MAX_ACTOR_LEN: usize = 256;

/// One record of the ledger, as it is hashed and signed.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Index of the entry in the log and leaf index in the Merkle tree, from 0.
    pub seq: u64,
    /// When the entry was appended, assigned by the writer under the ledger's write lock.
    pub time: Timestamp,
    /// What happened, as a dotted lowercase name such as `alias.rotated`.
    pub kind: String,
    /// Who did it: a key name, `cli:<user>` or `gateway`; never a secret.
    pub actor: String,
    /// The kind-specific payload; always a JSON object.
    pub body: Value,
}

/// Why bytes or values do not form a valid entry.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum EntryError {
    /// The bytes are not JSON at all.
    #[error("entry is not valid JSON: {0}")]
    Json(String),
    /// The JSON parses but is not in RFC 8785 canonical form.
    #[error("entry is not in canonical JSON form (RFC 8785)")]
    NotCanonical,
    /// A member is missing, has the wrong type, or an unknown member is present.
    #[error("entry member `{member}`: {problem}")]
    Member {
        /// The member's name.
        member: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl Entry {
    /// Checks the members that the format constrains: `seq` range, `kind` syntax, `actor`
    /// length and characters, and that `body` is an object.
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.seq > MAX_SEQ {
            return Err(member_error(
                "seq",
                format!("{} is above 2^53 - 1", self.seq),
            ));
        }
        validate_kind(&self.kind)?;
        validate_actor(&self.actor)?;
        if !self.body.is_object() {
            return Err(member_error("body", "must be a JSON object".to_owned()));
        }
        Ok(())
    }

    /// Returns the canonical bytes of the entry: the exact input of its leaf hash.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, EntryError> {
        self.validate()?;
        let body = jcs(&self.body)?;
        self.enclose(&body)
    }

    /// An entry and its canonical bytes, from a body serialised beforehand: a writer holding
    /// the ledger's lock only adds the members it assigns. The same bytes as
    /// [`Entry::to_canonical_bytes`] gives for the entry.
    pub fn with_canonical_body(
        seq: u64,
        time: Timestamp,
        kind: &str,
        actor: &str,
        body: &CanonicalBody,
    ) -> Result<(Entry, Vec<u8>), EntryError> {
        let entry = Entry {
            seq,
            time,
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            body: body.value.clone(),
        };
        entry.validate()?;
        let bytes = entry.enclose(&body.bytes)?;
        Ok((entry, bytes))
    }

    /// The entry's members around its body's canonical bytes. RFC 8785 orders members by
    /// their names' UTF-16 code units, which for these five ASCII names is `actor`, `body`,
    /// `kind`, `seq`, `time`; each member's value is serialised by RFC 8785 rules.
    fn enclose(&self, body: &[u8]) -> Result<Vec<u8>, EntryError> {
        let time = self.time.to_string();
        let mut bytes = Vec::with_capacity(body.len() + self.actor.len() + self.kind.len() + 80);
        bytes.extend_from_slice(b"{\"actor\":");
        bytes.extend_from_slice(&jcs(&self.actor)?);
        bytes.extend_from_slice(b",\"body\":");
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(b",\"kind\":");
        bytes.extend_from_slice(&jcs(&self.kind)?);
        bytes.extend_from_slice(b",\"seq\":");
        bytes.extend_from_slice(&jcs(&self.seq)?);
        bytes.extend_from_slice(b",\"time\":");
        bytes.extend_from_slice(&jcs(&time)?);
        bytes.push(b'}');
        Ok(bytes)
    }

    /// Parses stored bytes, refusing anything that is not exactly the canonical form of a
    /// valid entry (so two different byte strings can never claim to be the same entry).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Entry, EntryError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|error| EntryError::Json(error.to_string()))?;
        let entry = Entry::from_value(value)?;
        if entry.to_canonical_bytes()? != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }

    fn from_value(value: Value) -> Result<Entry, EntryError> {
        let Value::Object(mut members) = value else {
            return Err(member_error("(entry)", "must be a JSON object".to_owned()));
        };
        let seq = take(&mut members, "seq")?
            .as_u64()
            .ok_or_else(|| member_error("seq", "must be a non-negative integer".to_owned()))?;
        let time = take_string(&mut members, "time")?;
        let time = Timestamp::parse(&time).map_err(|problem| member_error("time", problem))?;
        let kind = take_string(&mut members, "kind")?;
        let actor = take_string(&mut members, "actor")?;
        let body = take(&mut members, "body")?;
        if let Some(unknown) = members.keys().next() {
            return Err(member_error(
                "(entry)",
                format!("unknown member `{unknown}`"),
            ));
        }
        let entry = Entry {
            seq,
            time,
            kind,
            actor,
            body,
        };
        entry.validate()?;
        Ok(entry)
    }
}

/// An entry body and its canonical bytes (RFC 8785), serialised once, before the entry is
/// handed to the ledger's writer: see [`Entry::with_canonical_body`].
#[derive(Clone, Debug, PartialEq)]
pub struct CanonicalBody {
    value: Value,
    bytes: Vec<u8>,
}

impl CanonicalBody {
    /// Serialises `value`, which must be a JSON object, as every entry body is.
    pub fn new(value: Value) -> Result<CanonicalBody, EntryError> {
        if !value.is_object() {
            return Err(member_error("body", "must be a JSON object".to_owned()));
        }
        let bytes = jcs(&value)?;
        Ok(CanonicalBody { value, bytes })
    }

    /// The body as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The body's canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The RFC 8785 serialisation of one value.
fn jcs<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EntryError> {
    serde_jcs::to_vec(value).map_err(|error| EntryError::Json(error.to_string()))
}

fn take(members: &mut Map<String, Value>, name: &'static str) -> Result<Value, EntryError> {
    members
        .remove(name)
        .ok_or_else(|| member_error(name, "is missing".to_owned()))
}

fn take_string(members: &mut Map<String, Value>, name: &'static str) -> Result<String, EntryError> {
    match take(members, name)? {
        Value::String(text) => Ok(text),
        _ => Err(member_error(name, "must be a string".to_owned())),
    }
}

fn member_error(member: &'static str, problem: String) -> EntryError {
    EntryError::Member { member, problem }
}

/// Checks that `kind` is dotted lowercase words, such as `inference.recorded`.
pub fn validate_kind(kind: &str) -> Result<(), EntryError> {
    let words: Vec<&str> = kind.split('.').collect();
    let word_ok = |word: &&str| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if words.len() < 2 || !words.iter().all(word_ok) || kind.len() > 64 {
        return Err(member_error(
            "kind",
            format!("`{kind}` is not dotted lowercase words such as `alias.rotated`"),
        ));
    }
    Ok(())
}

/// Checks that `actor` is a short printable name.
pub fn validate_actor(actor: &str) -> Result<(), EntryError> {
    if actor.is_empty() || actor.len() > MAX_ACTOR_LEN || actor.chars().any(char::is_control) {
        return Err(member_error(
            "actor",
            format!("must be 1 to {MAX_ACTOR_LEN} bytes of printable text"),
        ));
    }
    Ok(())
}

/// A UTC instant at microsecond precision, written `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Wraps an instant, dropping anything finer than a microsecond.
    pub fn from_datetime(instant: DateTime<Utc>) -> Timestamp {
        Timestamp::from_unix_micros(instant.timestamp_micros())
    }

    /// Builds a timestamp from microseconds since the Unix epoch.
    pub fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(
            Utc.timestamp_micros(micros)
                .single()
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The instant as a `chrono` value.
    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }

    /// Parses the canonical form only: `Z` suffix, six fractional digits.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let parsed = DateTime::parse_from_rfc3339(text)
            .map_err(|error| format!("`{text}` is not an RFC 3339 time: {error}"))?;
        let timestamp = Timestamp::from_datetime(parsed.with_timezone(&Utc));
        if timestamp.to_string() != text {
            return Err(format!(
                "`{text}` is not in the form YYYY-MM-DDTHH:MM:SS.ffffffZ"
            ));
        }
        Ok(timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Entry {
        Entry {
            seq: 41,
            time: Timestamp::parse("2026-12-03T16:31:37.123456Z").expect("valid time"),
            kind: "alias.rotated".to_owned(),
            actor: "admin".to_owned(),
            body: json!({"to": "v2", "from": "v1", "reason": "refresh ü", "n": 1.0}),
        }
    }

    #[test]
    fn canonical_bytes_sort_members_and_normalise_numbers() {
        let bytes = sample().to_canonical_bytes().expect("encodes");
        let expected = r#"{"actor":"admin","body":{"from":"v1","n":1,"reason":"refresh ü","to":"v2"},"kind":"alias.rotated","seq":41,"time":"2026-12-03T16:31:37.123456Z"}"#;
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), expected);
    }

    /// The members enclosed around the body by hand must be exactly what RFC 8785 makes of
    /// the whole entry as one object.
    #[test]
    fn enclosed_bytes_equal_the_whole_entry_serialised_as_one_object() {
        let bodies = [
            json!({}),
            json!({"text": "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f}"}),
            json!({"é": "ü", "z": [1e21, 1.5e-7, -0.0, 9007199254740991u64], "a": {"b": null}}),
            json!({"emoji": "\u{1f600}", "\u{10000}": 1, "\u{ffff}": 2, "deep": [[[{}]]]}),
        ];
        for (index, body) in bodies.into_iter().enumerate() {
            let entry = Entry {
                seq: [0, 41, MAX_SEQ, 1 << 40][index],
                body,
                ..sample()
            };
            let whole = serde_jcs::to_vec(&json!({
                "seq": entry.seq,
                "time": entry.time.to_string(),
                "kind": entry.kind,
                "actor": entry.actor,
                "body": entry.body,
            }))
            .expect("serialises");
            assert_eq!(entry.to_canonical_bytes().expect("encodes"), whole);

            let body = CanonicalBody::new(entry.body.clone()).expect("an object");
            let (built, bytes) =
                Entry::with_canonical_body(entry.seq, entry.time, &entry.kind, &entry.actor, &body)
                    .expect("encodes");
            assert_eq!(built, entry);
            assert_eq!(bytes, whole);
        }
    }

    #[test]
    fn a_canonical_body_is_an_object_and_its_entry_is_validated() {
        assert!(CanonicalBody::new(json!([1, 2])).is_err());
        let body = CanonicalBody::new(json!({"a": 1})).expect("an object");
        assert_eq!(body.bytes(), br#"{"a":1}"#);
        let time = sample().time;
        let refused = Entry::with_canonical_body(MAX_SEQ + 1, time, "a.b", "admin", &body);
        assert!(matches!(
            refused,
            Err(EntryError::Member { member: "seq", .. })
        ));
        let refused = Entry::with_canonical_body(1, time, "Not A Kind", "admin", &body);
        assert!(matches!(
            refused,
            Err(EntryError::Member { member: "kind", .. })
        ));
    }

    #[test]
    fn canonical_bytes_round_trip() {
        let bytes = sample().to_canonical_bytes().expect("encodes");
        let decoded = Entry::from_canonical_bytes(&bytes).expect("decodes");
        assert_eq!(decoded.to_canonical_bytes().expect("encodes"), bytes);
        assert_eq!(decoded.seq, 41);
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let spaced = br#"{"actor": "admin","body":{},"kind":"a.b","seq":1,"time":"2026-12-03T16:31:37.123456Z"}"#;
        assert_eq!(
            Entry::from_canonical_bytes(spaced),
            Err(EntryError::NotCanonical)
        );
    }

    #[test]
    fn unknown_and_missing_members_are_named() {
        let extra = br#"{"actor":"a","body":{},"extra":1,"kind":"a.b","seq":1,"time":"2026-12-03T16:31:37.123456Z"}"#;
        let error = Entry::from_canonical_bytes(extra).expect_err("extra member");
        assert!(
            error.to_string().contains("unknown member `extra`"),
            "{error}"
        );
        let missing =
            br#"{"actor":"a","body":{},"kind":"a.b","time":"2026-12-03T16:31:37.123456Z"}"#;
        let error = Entry::from_canonical_bytes(missing).expect_err("missing seq");
        assert_eq!(error.to_string(), "entry member `seq`: is missing");
    }

    #[test]
    fn time_must_be_canonical() {
        assert!(Timestamp::parse("2026-12-03T16:31:37Z").is_err());
        assert!(Timestamp::parse("2026-12-03T17:31:37.123456+01:00").is_err());
        let time = Timestamp::parse("2026-12-03T16:31:37.000001Z").expect("canonical");
        assert_eq!(time.unix_micros() % 1_000_000, 1);
    }

    #[test]
    fn kinds_and_actors_are_checked() {
        assert!(validate_kind("inference.recorded").is_ok());
        assert!(validate_kind("key.created").is_ok());
        assert!(validate_kind("Alias.Rotated").is_err());
        assert!(validate_kind("alias").is_err());
        assert!(validate_kind("alias..rotated").is_err());
        assert!(validate_actor("").is_err());
        assert!(validate_actor("admin\nforged").is_err());
        let mut entry = sample();
        entry.body = json!([1, 2]);
        assert!(entry.to_canonical_bytes().is_err());
    }
}
