//! A visa's `conditions` (GA4GH Passport v1.2 §"conditions",
//! <https://ga4gh.github.io/data-security/ga4gh-passport#conditions>): an array (OR) of arrays
//! (AND) of condition clauses, each naming a visa `type` and at least one more string claim of a
//! visa object (`value`, `source`, `by`) as `<match-type>:<match-value>`, with `const` (exact),
//! `pattern` (`?` one character, `*` any run, §"Pattern Matching") and `split_pattern` (the
//! pattern against each `;`-separated part). Every clause of one AND list must match a visa of
//! the Passport — all of a clause's claims the same visa — and the visas it is matched against
//! are those without conditions of their own (no nesting). A clause that is malformed (no
//! `type`, no other claim, a claim that is no string claim of a visa object such as `asserted`
//! or `conditions`) or has an unknown match type matches nothing.
//!
//! Which visas a clause may match is the caller's: pass only visas that verified
//! ([`super::verify_visa`]) and that its policy accepts (their issuers, and identities linked by a
//! trusted `LinkedIdentities` visa when they differ).

use serde_json::{Map, Value};

use super::VisaObject;

/// Whether `object`'s conditions hold against the visas of `passport` (an object without
/// conditions holds).
pub fn conditions_met(object: &VisaObject, passport: &[&VisaObject]) -> bool {
    let Some(conditions) = &object.conditions else {
        return true;
    };
    let Some(any_of) = conditions.as_array() else {
        return false;
    };
    if any_of.is_empty() {
        return true;
    }
    let candidates: Vec<&VisaObject> = passport
        .iter()
        .copied()
        .filter(|v| v.conditions.is_none())
        .collect();
    any_of.iter().any(|all_of| {
        all_of.as_array().is_some_and(|clauses| {
            clauses.iter().all(|clause| {
                clause
                    .as_object()
                    .is_some_and(|c| candidates.iter().any(|v| clause_matches(c, v)))
            })
        })
    })
}

/// Whether the clause is well formed and every claim it names matches `visa`.
fn clause_matches(clause: &Map<String, Value>, visa: &VisaObject) -> bool {
    let Some(Value::String(visa_type)) = clause.get("type") else {
        return false;
    };
    if clause.len() < 2 || *visa_type != visa.visa_type {
        return false;
    }
    clause
        .iter()
        .filter(|(name, _)| *name != "type")
        .all(|(name, wanted)| {
            let have = match name.as_str() {
                "value" => Some(visa.value.as_str()),
                "source" => Some(visa.source.as_str()),
                "by" => visa.by.as_deref(),
                _ => return false,
            };
            match (wanted.as_str(), have) {
                (Some(wanted), Some(have)) => claim_matches(wanted, have),
                _ => false,
            }
        })
}

/// `<match-type>:<match-value>` against a claim's value.
fn claim_matches(wanted: &str, have: &str) -> bool {
    match wanted.split_once(':') {
        Some(("const", exact)) => exact == have,
        Some(("pattern", pattern)) => pattern_matches(pattern, have),
        Some(("split_pattern", pattern)) => have.split(';').any(|p| pattern_matches(pattern, p)),
        _ => false,
    }
}

/// Full-string, case-sensitive pattern matching: `?` matches one character, `*` any run of
/// characters (none included); no escape (Passport §"Pattern Matching").
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it was last tried to end at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(visa_type: &str, value: &str, source: &str, by: Option<&str>) -> VisaObject {
        VisaObject {
            visa_type: visa_type.into(),
            asserted: 1,
            value: value.into(),
            source: source.into(),
            by: by.map(str::to_owned),
            conditions: None,
        }
    }

    fn with_conditions(conditions: Value) -> VisaObject {
        VisaObject {
            conditions: Some(conditions),
            ..object(
                "ControlledAccessGrants",
                "https://ega.example/d/1",
                "https://ega.example/dac/1",
                Some("dac"),
            )
        }
    }

    #[test]
    fn patterns_match_whole_strings_with_question_marks_and_stars() {
        for (pattern, text) in [
            ("faculty@*", "faculty@uni.example"),
            ("*", ""),
            ("a?c", "abc"),
            ("*@uni.*", "staff@uni.example"),
            ("a*b*c", "aXbYbZc"),
            (
                "123,https:%2F%2Fexample?.org",
                "123,https:%2F%2Fexample2.org",
            ),
        ] {
            assert!(pattern_matches(pattern, text), "{pattern} {text}");
        }
        for (pattern, text) in [
            ("faculty@*", "Faculty@uni.example"),
            ("a?c", "ac"),
            ("abc", "abcd"),
            ("a*b", "aXbY"),
        ] {
            assert!(!pattern_matches(pattern, text), "{pattern} {text}");
        }
    }

    #[test]
    fn the_specifications_example_holds_for_either_alternative() {
        let grant = with_conditions(json!([
            [
                {"type": "AffiliationAndRole", "value": "const:faculty@uni-heidelberg.de",
                 "by": "const:so"},
                {"type": "ResearcherStatus",
                 "value": "const:https://doi.org/10.1038/s41431-018-0219-y"}
            ],
            [
                {"type": "AffiliationAndRole", "value": "pattern:faculty@*",
                 "source": "const:https://visas.elixir.org", "by": "const:system"}
            ]
        ]));
        let heidelberg = object(
            "AffiliationAndRole",
            "faculty@uni-heidelberg.de",
            "https://uni-heidelberg.de",
            Some("so"),
        );
        let bona_fide = object(
            "ResearcherStatus",
            "https://doi.org/10.1038/s41431-018-0219-y",
            "https://uni-heidelberg.de",
            Some("so"),
        );
        let elixir = object(
            "AffiliationAndRole",
            "faculty@anywhere.example",
            "https://visas.elixir.org",
            Some("system"),
        );
        assert!(conditions_met(&grant, &[&heidelberg, &bona_fide]));
        assert!(conditions_met(&grant, &[&elixir]));
        assert!(!conditions_met(&grant, &[&heidelberg]), "AND: both clauses");
        let unknown_by = VisaObject {
            by: None,
            ..elixir.clone()
        };
        assert!(!conditions_met(&grant, &[&unknown_by]), "no by is no match");
        // A visa with conditions of its own is never matched against.
        let nested = VisaObject {
            conditions: Some(json!([])),
            ..elixir.clone()
        };
        assert!(!conditions_met(&grant, &[&nested]));
        assert!(conditions_met(&elixir, &[]), "no conditions hold");
    }

    #[test]
    fn malformed_clauses_and_unknown_match_types_match_nothing() {
        let affiliation = object(
            "AffiliationAndRole",
            "faculty@uni.example",
            "https://uni.example",
            Some("system"),
        );
        for clause in [
            json!({"value": "const:faculty@uni.example"}),
            json!({"type": "AffiliationAndRole"}),
            json!({"type": "AffiliationAndRole", "asserted": "const:1"}),
            json!({"type": "AffiliationAndRole", "value": "regex:.*"}),
            json!({"type": "AffiliationAndRole", "value": "faculty@uni.example"}),
        ] {
            let grant = with_conditions(json!([[clause.clone()]]));
            assert!(!conditions_met(&grant, &[&affiliation]), "{clause}");
        }
        let split = with_conditions(json!([[
            {"type": "LinkedIdentities", "value": "split_pattern:123,https%3A%2F%2Fexample?.org"}
        ]]));
        let linked = object(
            "LinkedIdentities",
            "001,https%3A%2F%2Fexample1.org;123,https%3A%2F%2Fexample2.org",
            "https://broker.example",
            None,
        );
        assert!(conditions_met(&split, &[&linked]));
    }
}
