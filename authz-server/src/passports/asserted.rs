//! Visas an operator (`authz-server user visa add|list|remove`) or an admin
//! (`/admin/users/{handle}/visas`) asserts for a user: e.g. a
//! `ControlledAccessGrants` visa a data access committee decided, with its `value`, `source`,
//! `by`, `conditions`, when it was `asserted` and until when it holds. Kept as an assertion
//! ([`crate::store::asserted_visas`]) and signed by this server each time the user's Passport
//! is released ([`super`]). Each is checked by the rules of its type
//! ([`proto::visa::check_assertion`]); a `LinkedIdentities` visa is refused — this server makes
//! that one from the account's links. At most [`MAX_VISAS_PER_USER`] per user.

use proto::clock::UnixTime;
use proto::visa::{self, VisaObject};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::store::asserted_visas::{self, AssertedVisa};
use crate::store::{self, Store};
use crate::users::by_handle;

/// The most asserted visas one user holds.
pub const MAX_VISAS_PER_USER: usize = 64;

/// The longest `value` (bytes).
pub const MAX_VALUE_BYTES: usize = 1024;

/// The longest `conditions`, as JSON (bytes).
pub const MAX_CONDITIONS_BYTES: usize = 4096;

/// What is asserted: the admin endpoint's JSON body, the operator command's flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    /// `type`.
    #[serde(rename = "type")]
    pub visa_type: String,
    /// `value`.
    pub value: String,
    /// `source`.
    pub source: String,
    /// `by`.
    #[serde(default)]
    pub by: Option<String>,
    /// `conditions`.
    #[serde(default)]
    pub conditions: Option<Value>,
    /// `asserted` (default: now).
    #[serde(default)]
    pub asserted: Option<UnixTime>,
    /// Until when the visa holds (seconds since the epoch).
    pub expires_at: UnixTime,
}

impl AssertedVisa {
    /// The `ga4gh_visa_v1` object of the visa.
    pub fn visa_object(&self) -> VisaObject {
        VisaObject {
            visa_type: self.visa_type.clone(),
            asserted: self.asserted,
            value: self.value.clone(),
            source: self.source.clone(),
            by: self.by.clone(),
            conditions: self.conditions.clone(),
        }
    }

    /// The record as the admin surface shows it.
    pub fn to_json(&self) -> Value {
        let mut object = self.visa_object().to_json();
        if let Some(map) = object.as_object_mut() {
            map.insert("id".into(), self.id.clone().into());
            map.insert("expires_at".into(), self.expires_at.into());
            map.insert("added_at".into(), self.added_at.into());
            map.insert("added_by".into(), self.added_by.clone().into());
        }
        object
    }
}

/// Checks `assertion` at `now` (with `skew` for an `asserted` just ahead): the object of a
/// visa of its type, not a `LinkedIdentities` one, asserted in the past, expiring in the future.
fn checked(assertion: Assertion, now: UnixTime, skew: i64) -> Result<VisaObject> {
    let refuse = |why: &str| Error::invalid_request(format!("the visa: {why}"));
    if assertion.visa_type == visa::LINKED_IDENTITIES {
        return Err(refuse(
            "LinkedIdentities visas are made from the account's links, not asserted",
        ));
    }
    if assertion.value.is_empty()
        || assertion.value.len() > MAX_VALUE_BYTES
        || assertion.value.chars().any(char::is_control)
    {
        return Err(refuse(&format!(
            "`value` must be 1 to {MAX_VALUE_BYTES} bytes without control characters"
        )));
    }
    if assertion
        .conditions
        .as_ref()
        .is_some_and(|c| c.to_string().len() > MAX_CONDITIONS_BYTES)
    {
        return Err(refuse(&format!(
            "`conditions` are longer than {MAX_CONDITIONS_BYTES} bytes"
        )));
    }
    let asserted = assertion.asserted.unwrap_or(now);
    if asserted < 0 || asserted > now + skew {
        return Err(refuse("`asserted` must not be in the future"));
    }
    if assertion.expires_at <= now {
        return Err(refuse("`expires_at` must be in the future"));
    }
    let object = VisaObject {
        visa_type: assertion.visa_type,
        asserted,
        value: assertion.value,
        source: assertion.source,
        by: assertion.by,
        conditions: assertion.conditions,
    };
    // The object must read back as a visa's (the conditions' shape) and follow its type's rules.
    VisaObject::from_json(&object.to_json())
        .and_then(|o| visa::check_assertion(&o))
        .map_err(|e| refuse(&e.to_string()))?;
    Ok(object)
}

/// Records `assertion` for the user `handle` (by `added_by`: `operator` or an admin's id);
/// `None` if there is no such user. Durable on return.
pub fn add(
    store: &dyn Store,
    handle: &str,
    assertion: Assertion,
    added_by: &str,
    now: UnixTime,
    skew: i64,
) -> Result<Option<AssertedVisa>> {
    let expires_at = assertion.expires_at;
    let object = checked(assertion, now, skew)?;
    let Some(user) = by_handle(store, handle)? else {
        return Ok(None);
    };
    let too_many = || {
        Error::invalid_request(format!(
            "the user holds {MAX_VISAS_PER_USER} asserted visas already; remove one first"
        ))
    };
    if asserted_visas::of_user(store, &user.id)?.len() >= MAX_VISAS_PER_USER {
        return Err(too_many());
    }
    let record = AssertedVisa {
        id: proto::random::uuid_v4(),
        user_id: user.id.clone(),
        visa_type: object.visa_type,
        value: object.value,
        source: object.source,
        by: object.by,
        conditions: object.conditions,
        asserted: object.asserted,
        expires_at,
        added_at: now,
        added_by: added_by.to_owned(),
    };
    asserted_visas::insert(store, &record)?;
    // Checked again after the insert: of racing additions, those past the cap go back.
    if asserted_visas::of_user(store, &user.id)?.len() > MAX_VISAS_PER_USER {
        asserted_visas::remove(store, &user.id, &record.id)?;
        return Err(too_many());
    }
    store::flush(store)?;
    Ok(Some(record))
}

/// The visas asserted for the user `handle`; `None` if there is no such user.
pub fn list(store: &dyn Store, handle: &str) -> Result<Option<Vec<AssertedVisa>>> {
    let Some(user) = by_handle(store, handle)? else {
        return Ok(None);
    };
    Ok(Some(asserted_visas::of_user(store, &user.id)?))
}

/// Removes the visa `id` of the user `handle`: `None` if there is no such user, false if the
/// user has no such visa. Durable on return.
pub fn remove(store: &dyn Store, handle: &str, id: &str) -> Result<Option<bool>> {
    let Some(user) = by_handle(store, handle)? else {
        return Ok(None);
    };
    let removed = asserted_visas::remove(store, &user.id, id)?;
    store::flush(store)?;
    Ok(Some(removed))
}

/// The answer listing `visas`.
pub fn listing(visas: &[AssertedVisa]) -> Value {
    json!({ "visas": visas.iter().map(AssertedVisa::to_json).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    fn grant() -> Assertion {
        Assertion {
            visa_type: "ControlledAccessGrants".into(),
            value: "https://ega.example/datasets/EGAD1".into(),
            source: "https://ega.example/dacs/EGAC1".into(),
            by: Some("dac".into()),
            conditions: None,
            asserted: None,
            expires_at: NOW + 3600,
        }
    }

    #[test]
    fn assertions_are_checked_before_anything_is_stored() {
        let object = checked(grant(), NOW, 0).unwrap();
        assert_eq!(object.asserted, NOW);
        for (why, bad) in [
            (
                "by",
                Assertion {
                    by: None,
                    ..grant()
                },
            ),
            (
                "expired",
                Assertion {
                    expires_at: NOW,
                    ..grant()
                },
            ),
            (
                "future",
                Assertion {
                    asserted: Some(NOW + 60),
                    ..grant()
                },
            ),
            (
                "empty",
                Assertion {
                    value: String::new(),
                    ..grant()
                },
            ),
            (
                "control",
                Assertion {
                    value: "https://a.example/\n".into(),
                    ..grant()
                },
            ),
            (
                "linked",
                Assertion {
                    visa_type: "LinkedIdentities".into(),
                    ..grant()
                },
            ),
            (
                "conditions",
                Assertion {
                    conditions: Some(json!({"type": "x"})),
                    ..grant()
                },
            ),
            (
                "long conditions",
                Assertion {
                    conditions: Some(json!([[{"type": "a".repeat(MAX_CONDITIONS_BYTES)}]])),
                    ..grant()
                },
            ),
        ] {
            assert!(
                matches!(
                    checked(bad, NOW, 0),
                    Err(Error::OAuth {
                        code: "invalid_request",
                        ..
                    })
                ),
                "{why}"
            );
        }
        assert!(
            checked(
                Assertion {
                    asserted: Some(NOW + 60),
                    ..grant()
                },
                NOW,
                60
            )
            .is_ok()
        );
    }

    #[test]
    fn a_user_holds_a_bounded_number_and_removes_only_its_own() {
        let (_dir, store) = crate::store::temporary();
        let store: &dyn Store = &store;
        let password = proto::secret::SecretString::new("password-1");
        for handle in ["ann", "ben"] {
            crate::users::add(
                store,
                &crate::users::NewUser {
                    handle,
                    name: handle,
                    team: None,
                    domain: "wire.example",
                    password: &password,
                },
            )
            .unwrap();
        }
        assert!(
            add(store, "nobody", grant(), "operator", NOW, 0)
                .unwrap()
                .is_none()
        );
        let first = add(store, "ann", grant(), "operator", NOW, 0)
            .unwrap()
            .unwrap();
        for _ in 1..MAX_VISAS_PER_USER {
            add(store, "ann", grant(), "operator", NOW, 0)
                .unwrap()
                .unwrap();
        }
        assert!(add(store, "ann", grant(), "operator", NOW, 0).is_err());
        assert_eq!(
            list(store, "ann").unwrap().unwrap().len(),
            MAX_VISAS_PER_USER
        );
        assert_eq!(remove(store, "ben", &first.id).unwrap(), Some(false));
        assert_eq!(remove(store, "ann", &first.id).unwrap(), Some(true));
        assert_eq!(remove(store, "nobody", &first.id).unwrap(), None);
        let shown = listing(&list(store, "ann").unwrap().unwrap());
        assert_eq!(shown["visas"][0]["type"], "ControlledAccessGrants");
        assert_eq!(shown["visas"][0]["by"], "dac");
    }
}
