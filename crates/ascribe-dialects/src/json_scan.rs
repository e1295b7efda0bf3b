//! A byte-level view of JSON objects: where each member's key and value sit, so a body can be
//! edited in place and every byte not edited stays as the sender wrote it.
//!
//! The scanner trusts its input: callers run it only on bytes `serde_json` already accepted.
//! On anything else it returns `None` rather than a wrong span, and never panics.

use std::ops::Range;

/// One member of an object, as byte positions in the scanned text.
#[derive(Debug)]
pub(crate) struct Member {
    /// The key, with escapes decoded.
    pub(crate) key: String,
    /// Where the key's opening quote is: the member starts here.
    pub(crate) start: usize,
    /// The value's bytes, from its first to its last character.
    pub(crate) value: Range<usize>,
}

/// One replacement of a byte range by new bytes.
pub(crate) type Edit = (Range<usize>, Vec<u8>);

/// The deepest nesting of arrays and objects in `bytes`, counting brackets outside strings.
pub(crate) fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'"' => {
                idx = scan_string(bytes, idx).unwrap_or(bytes.len());
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        idx += 1;
    }
    deepest
}

/// The members of the top-level object of `bytes`, which may be surrounded by whitespace.
pub(crate) fn top_level_members(bytes: &[u8]) -> Option<Vec<Member>> {
    object_members(bytes, skip_whitespace(bytes, 0))
}

/// The members of the object whose `{` is at `open`.
pub(crate) fn object_members(bytes: &[u8], open: usize) -> Option<Vec<Member>> {
    if bytes.get(open) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::new();
    let mut idx = skip_whitespace(bytes, open + 1);
    if bytes.get(idx) == Some(&b'}') {
        return Some(members);
    }
    loop {
        let member = scan_member(bytes, idx)?;
        idx = skip_whitespace(bytes, member.value.end);
        members.push(member);
        match bytes.get(idx)? {
            b',' => idx = skip_whitespace(bytes, idx + 1),
            b'}' => return Some(members),
            _ => return None,
        }
    }
}

/// The byte ranges to cut so that the members `remove` picks disappear with their commas,
/// leaving valid JSON. Each run of adjacent removed members becomes one range.
pub(crate) fn removal_ranges(
    members: &[Member],
    remove: impl Fn(&Member) -> bool,
) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut idx = 0;
    while idx < members.len() {
        if !remove(&members[idx]) {
            idx += 1;
            continue;
        }
        let first = idx;
        while idx < members.len() && remove(&members[idx]) {
            idx += 1;
        }
        ranges.push(run_range(members, first, idx - 1));
    }
    ranges
}

/// Applies non-overlapping edits to `bytes`.
pub(crate) fn apply_edits(bytes: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = Vec::with_capacity(bytes.len());
    let mut copied_to = 0;
    for (range, replacement) in edits {
        out.extend_from_slice(&bytes[copied_to..range.start]);
        out.extend_from_slice(&replacement);
        copied_to = range.end;
    }
    out.extend_from_slice(&bytes[copied_to..]);
    out
}

/// The text of a JSON string value, if the value at `range` is a string.
pub(crate) fn string_value(bytes: &[u8], range: &Range<usize>) -> Option<String> {
    serde_json::from_slice(&bytes[range.clone()]).ok()
}

/// The range covering members `first..=last` and the comma that joins them to the rest.
fn run_range(members: &[Member], first: usize, last: usize) -> Range<usize> {
    if let Some(next) = members.get(last + 1) {
        members[first].start..next.start
    } else if first > 0 {
        members[first - 1].value.end..members[last].value.end
    } else {
        members[first].start..members[last].value.end
    }
}

fn scan_member(bytes: &[u8], start: usize) -> Option<Member> {
    let key_end = scan_string(bytes, start)?;
    let key: String = serde_json::from_slice(&bytes[start..key_end]).ok()?;
    let colon = skip_whitespace(bytes, key_end);
    if bytes.get(colon) != Some(&b':') {
        return None;
    }
    let value_start = skip_whitespace(bytes, colon + 1);
    let value_end = scan_value(bytes, value_start)?;
    Some(Member {
        key,
        start,
        value: value_start..value_end,
    })
}

/// Where the value starting at `start` ends (exclusive).
fn scan_value(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => scan_string(bytes, start),
        b'{' | b'[' => scan_container(bytes, start),
        _ => {
            let len = bytes[start..]
                .iter()
                .position(|&byte| matches!(byte, b',' | b'}' | b']') || is_whitespace(byte))
                .unwrap_or(bytes.len() - start);
            (len > 0).then_some(start + len)
        }
    }
}

fn scan_container(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut idx = start;
    while idx < bytes.len() {
        match bytes[idx] {
            b'"' => {
                idx = scan_string(bytes, idx)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(idx + 1);
                }
            }
            _ => {}
        }
        idx += 1;
    }
    None
}

/// Where the string whose opening quote is at `start` ends (after its closing quote).
fn scan_string(bytes: &[u8], start: usize) -> Option<usize> {
    let mut idx = start + 1;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\\' => idx += 2,
            b'"' => return Some(idx + 1),
            _ => idx += 1,
        }
    }
    None
}

fn skip_whitespace(bytes: &[u8], mut idx: usize) -> usize {
    while idx < bytes.len() && is_whitespace(bytes[idx]) {
        idx += 1;
    }
    idx
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, String)> {
        let bytes = text.as_bytes();
        let members = top_level_members(bytes).unwrap_or_default();
        let value = |m: &Member| String::from_utf8_lossy(&bytes[m.value.clone()]).into_owned();
        members.iter().map(|m| (m.key.clone(), value(m))).collect()
    }

    fn remove(text: &str, key: &str) -> String {
        let bytes = text.as_bytes();
        let members = top_level_members(bytes).unwrap_or_default();
        let ranges = removal_ranges(&members, |m| m.key == key);
        let edits = ranges
            .into_iter()
            .map(|range| (range, Vec::new()))
            .collect();
        String::from_utf8_lossy(&apply_edits(bytes, edits)).into_owned()
    }

    #[test]
    fn members_keep_their_raw_values() {
        let text = r#" { "a" : 1 , "b\u0022" : {"x":[1,"]}"]}, "c":"q\"}" ,"d":null} "#;
        let found = keys(text);
        let expected = [
            ("a", "1"),
            ("b\"", r#"{"x":[1,"]}"]}"#),
            ("c", r#""q\"}""#),
            ("d", "null"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn empty_object_has_no_members() {
        assert!(keys("{ }").is_empty());
        assert!(top_level_members(b"[1]").is_none());
        assert!(top_level_members(b"{\"a\":").is_none());
    }

    #[test]
    fn removal_leaves_valid_json() {
        assert_eq!(remove(r#"{"a":1,"m":2,"b":3}"#, "m"), r#"{"a":1,"b":3}"#);
        assert_eq!(remove(r#"{"a":1, "m":2}"#, "m"), r#"{"a":1}"#);
        assert_eq!(remove(r#"{ "m":2 }"#, "m"), r#"{  }"#);
        assert_eq!(remove(r#"{"m":1,"m":2,"a":3,"m":4}"#, "m"), r#"{"a":3}"#);
        assert_eq!(
            remove("{\n  \"a\": 1,\n  \"m\": 2\n}", "m"),
            "{\n  \"a\": 1\n}"
        );
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(br#"{"a":"[[[[","b":[[1]]}"#), 3);
        assert_eq!(nesting_depth(b"]]]"), 0);
    }
}
