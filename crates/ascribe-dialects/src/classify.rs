//! Comparing a served identity with what the deployment expects.
//!
//! [`classify`] applies these rules in order:
//!
//! 1. No served model came back: [`IdentityMatch::Undisclosed`].
//! 2. The served model matches the expected pattern (`*` matches any run of characters,
//!    everything else is compared exactly): [`IdentityMatch::Match`].
//! 3. The served model only echoes a moving name that was asked for: it equals the upstream
//!    model the gateway requested, and that name has no snapshot suffix (see 4), like
//!    `mistral-large-latest`, `gpt-4o` or a TGI or llama.cpp label. The echo says nothing
//!    about which snapshot ran: [`IdentityMatch::Undisclosed`]. An echo of a pinned name
//!    (`mistral-large-2411`) is taken at its word and goes on to rule 4.
//! 4. The served model and the expected pattern are the same family once a trailing
//!    snapshot suffix is removed from both: `-YYYY-MM-DD` (`-2024-08-06`), or `-` or `@`
//!    followed by 3, 4, 6 or 8 digits (`-002`, `-0613`, `-2411`, `-20240229`):
//!    [`MismatchKind::NewerSnapshot`].
//! 5. Anything else: [`MismatchKind::DifferentModel`].

use crate::ServedIdentity;

/// How a served identity compares with the deployment's expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityMatch {
    /// The expected model was served.
    Match,
    /// Something else was served; recorded as an observation, and policy flags or rejects.
    Mismatch(MismatchKind),
    /// The response does not say what was served.
    Undisclosed,
}

/// What kind of mismatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MismatchKind {
    /// Another snapshot of the expected model: same family, other date or version suffix.
    /// Providers move aliases forward, hence SPEC's name; the suffix is not compared, so an
    /// older snapshot lands here too.
    NewerSnapshot,
    /// A model of another family.
    DifferentModel,
}

/// Compares `served` with the `expected` pattern of the deployment that asked upstream for
/// `requested_upstream_model`. The rules are in the module documentation.
pub fn classify(
    expected: &str,
    requested_upstream_model: &str,
    served: &ServedIdentity,
) -> IdentityMatch {
    let Some(model) = served.model.as_deref() else {
        return IdentityMatch::Undisclosed;
    };
    if pattern_matches(expected, model) {
        return IdentityMatch::Match;
    }
    if model == requested_upstream_model && is_moving_name(requested_upstream_model) {
        return IdentityMatch::Undisclosed;
    }
    if pattern_matches(
        strip_snapshot_suffix(expected),
        strip_snapshot_suffix(model),
    ) {
        IdentityMatch::Mismatch(MismatchKind::NewerSnapshot)
    } else {
        IdentityMatch::Mismatch(MismatchKind::DifferentModel)
    }
}

/// `name` without a trailing snapshot suffix, see rule 4 of [`classify`].
pub fn strip_snapshot_suffix(name: &str) -> &str {
    if let Some(family) = strip_dashed_date(name) {
        return family;
    }
    let Some(separator) = name.rfind(['-', '@']) else {
        return name;
    };
    let suffix = &name[separator + 1..];
    let is_version =
        matches!(suffix.len(), 3 | 4 | 6 | 8) && suffix.bytes().all(|byte| byte.is_ascii_digit());
    if is_version && separator > 0 {
        &name[..separator]
    } else {
        name
    }
}

/// Whether `name` may move to another snapshot over time: it has no snapshot suffix.
pub fn is_moving_name(name: &str) -> bool {
    strip_snapshot_suffix(name) == name
}

/// `name` without a trailing `-YYYY-MM-DD`.
fn strip_dashed_date(name: &str) -> Option<&str> {
    let split = name.len().checked_sub(11)?;
    let (family, date) = (name.get(..split)?, name.get(split..)?.as_bytes());
    let shape_ok = date.iter().enumerate().all(|(idx, &byte)| match idx {
        0 | 5 | 8 => byte == b'-',
        _ => byte.is_ascii_digit(),
    });
    (shape_ok && !family.is_empty()).then_some(family)
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and where in `text` its current match ends.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            star = Some((star_p, star_t + 1));
            p = star_p + 1;
            t = star_t + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_suffixes() {
        let cases = [
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("claude-3-opus-20240229", "claude-3-opus"),
            ("gpt-4-0613", "gpt-4"),
            ("gemini-1.5-flash-002", "gemini-1.5-flash"),
            ("mistral-large-2411", "mistral-large"),
            ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2"),
            ("claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("mistral-large-latest", "mistral-large-latest"),
            ("llama-3.3-70b", "llama-3.3-70b"),
            ("qwen3:0.6b", "qwen3:0.6b"),
            ("-2024-08-06", "-2024-08-06"),
            ("-0613", "-0613"),
        ];
        for (name, family) in cases {
            assert_eq!(strip_snapshot_suffix(name), family, "{name}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(pattern_matches("gpt-4o-*", "gpt-4o-2024-08-06"));
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("a*b*c", "axxbyyc"));
        assert!(pattern_matches("a*c", "abcbc"));
        assert!(!pattern_matches("a*c", "abcb"));
        assert!(!pattern_matches("gpt-4o", "gpt-4o-mini"));
        assert!(pattern_matches("", ""));
    }
}
