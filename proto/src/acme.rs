//! ACME (RFC 8555) wire types shared by the server and the device client: the resources of
//! §7.1, the request payloads of §7.3–§7.5, problem documents (§6.7), plus the Wire profile's
//! additions (`target` on challenges, the `wireapp-*` identifier types).
//!
//! Field names are the RFC's (camelCase on the wire); optional members are omitted when absent.

use serde::{Deserialize, Serialize};

/// The directory object (§7.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `newNonce` URL.
    pub new_nonce: String,
    /// `newAccount` URL.
    pub new_account: String,
    /// `newOrder` URL.
    pub new_order: String,
    /// `revokeCert` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_cert: Option<String>,
    /// `keyChange` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_change: Option<String>,
    /// `renewalInfo` URL (RFC 9773 §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    /// `meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<DirectoryMeta>,
}

/// The directory's `meta` object (§7.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// Terms of service URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// Website of the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// CAA identities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Whether newAccount requires external account binding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external_account_required: bool,
    /// Certificate profiles by name, with descriptions.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub profiles: std::collections::BTreeMap<String, String>,
}

/// Account status (§7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Usable.
    Valid,
    /// Deactivated by its holder.
    Deactivated,
    /// Revoked by the server.
    Revoked,
}

/// The account object (§7.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Status.
    pub status: AccountStatus,
    /// Contact URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Whether the holder agreed to the terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// The account's orders list URL.
    pub orders: String,
}

/// The newAccount payload (§7.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    /// Contact URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// Agreement to the terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// Only look the account up (§7.3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_return_existing: Option<bool>,
    /// External account binding (§7.3.4), a JWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<serde_json::Value>,
}

/// An account update payload (§7.3.2, §7.3.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    /// New contact URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// `deactivated` to deactivate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AccountStatus>,
    /// Agreement to the terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
}

/// Identifier type of a Wire device (value: the JSON of [`crate::wire_id::DeviceIdentifier`]).
pub const WIREAPP_DEVICE: &str = "wireapp-device";
/// Identifier type of a Wire user (value: the JSON of [`crate::wire_id::UserIdentifier`]).
pub const WIREAPP_USER: &str = "wireapp-user";

/// An identifier (§7.1.3, §9.7.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns`, `ip`, `wireapp-device`, `wireapp-user`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value; for the Wire types a JSON object serialized as a string.
    pub value: String,
}

/// Order status (§7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Authorizations outstanding.
    Pending,
    /// All authorizations valid, waiting for finalize.
    Ready,
    /// Issuing.
    Processing,
    /// Certificate issued.
    Valid,
    /// Failed or expired.
    Invalid,
}

/// The order object (§7.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Status.
    pub status: OrderStatus,
    /// When it expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Requested notAfter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// Authorization URLs.
    pub authorizations: Vec<String>,
    /// Finalize URL.
    pub finalize: String,
    /// Certificate URL once valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The certificate this order replaces (RFC 9773 §5), as its ARI certID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The certificate profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The newOrder payload (§7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    /// The identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The certificate this order replaces (RFC 9773 §5), as its ARI certID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The certificate profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// Renewal information (RFC 9773 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    /// When to renew.
    pub suggested_window: SuggestedWindow,
    /// Why, when the window is unusual.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "explanationURL"
    )]
    pub explanation_url: Option<String>,
}

/// A renewal window (RFC 3339 times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
}

/// The finalize payload (§7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalize {
    /// The CSR, DER in base64url.
    pub csr: String,
}

/// Authorization status (§7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationStatus {
    /// A challenge is outstanding.
    Pending,
    /// A challenge succeeded.
    Valid,
    /// A challenge failed.
    Invalid,
    /// Deactivated by the client.
    Deactivated,
    /// Expired.
    Expired,
    /// Revoked by the server.
    Revoked,
}

/// The authorization object (§7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// The identifier.
    pub identifier: Identifier,
    /// Status.
    pub status: AuthorizationStatus,
    /// When it expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Its challenges.
    pub challenges: Vec<Challenge>,
    /// Wildcard flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

/// Challenge status (§7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Not answered yet.
    Pending,
    /// Being validated.
    Processing,
    /// Validated.
    Valid,
    /// Failed.
    Invalid,
}

/// Challenge type: a file served over HTTP (RFC 8555 §8.3).
pub const HTTP_01: &str = "http-01";
/// Challenge type: a TXT record (RFC 8555 §8.4).
pub const DNS_01: &str = "dns-01";
/// Challenge type: a TLS certificate served with ALPN `acme-tls/1` (RFC 8737).
pub const TLS_ALPN_01: &str = "tls-alpn-01";

/// Challenge type: proof of a backend DPoP access token (Wire).
pub const WIRE_DPOP_01: &str = "wire-dpop-01";
/// Challenge type: proof of an OpenID ID token (Wire).
pub const WIRE_OIDC_01: &str = "wire-oidc-01";

/// The challenge object (§7.1.5, §8) with Wire's `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Challenge type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its URL.
    pub url: String,
    /// Status.
    pub status: ChallengeStatus,
    /// Token (base64url, ≥128 bits).
    pub token: String,
    /// When it was validated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// Wire: where the proof is obtained (access-token URL or OIDC issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The `wire-dpop-01` answer payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpopAnswer {
    /// The backend's DPoP access token.
    pub access_token: String,
}

/// The `wire-oidc-01` answer payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcAnswer {
    /// The identity provider's ID token.
    pub id_token: String,
}

/// A problem document (RFC 7807 as profiled by RFC 8555 §6.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:ietf:params:acme:error:*`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub detail: String,
    /// HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Per-identifier problems (§6.7.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
}

/// A subproblem naming the identifier at fault (§6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    /// Error type URN.
    #[serde(rename = "type")]
    pub kind: String,
    /// Explanation.
    #[serde(default)]
    pub detail: String,
    /// The identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

/// The URN namespace of ACME error types (§6.7).
pub const ERROR_NS: &str = "urn:ietf:params:acme:error:";

/// The detail Wire clients and RFC 8555 tooling expect with `badNonce`.
pub const BAD_NONCE_DETAIL: &str = "JWS has an invalid anti-replay nonce";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8555_examples_parse() {
        // RFC 8555 §7.1.1 directory example.
        let dir: Directory = serde_json::from_str(
            r#"{
             "newNonce": "https://example.com/acme/new-nonce",
             "newAccount": "https://example.com/acme/new-account",
             "newOrder": "https://example.com/acme/new-order",
             "newAuthz": "https://example.com/acme/new-authz",
             "revokeCert": "https://example.com/acme/revoke-cert",
             "keyChange": "https://example.com/acme/key-change",
             "meta": {
               "termsOfService": "https://example.com/acme/terms/2017-5-30",
               "website": "https://www.example.com/",
               "caaIdentities": ["example.com"],
               "externalAccountRequired": false
             }
           }"#,
        )
        .unwrap();
        assert_eq!(dir.new_order, "https://example.com/acme/new-order");
        assert_eq!(dir.meta.unwrap().caa_identities, vec!["example.com"]);

        // RFC 8555 §7.1.3 order example.
        let order: Order = serde_json::from_str(
            r#"{
             "status": "valid",
             "expires": "2016-01-20T14:09:07.99Z",
             "identifiers": [
               { "type": "dns", "value": "www.example.org" },
               { "type": "dns", "value": "example.org" }
             ],
             "notBefore": "2016-01-01T00:00:00Z",
             "notAfter": "2016-01-08T00:00:00Z",
             "authorizations": [
               "https://example.com/acme/authz/PAniVnsZcis",
               "https://example.com/acme/authz/r4HqLzrSrpI"
             ],
             "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
             "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
           }"#,
        )
        .unwrap();
        assert_eq!(order.status, OrderStatus::Valid);
        assert_eq!(order.identifiers.len(), 2);

        // RFC 8555 §6.7.1 problem with subproblems.
        let problem: Problem = serde_json::from_str(
            r#"{
               "type": "urn:ietf:params:acme:error:malformed",
               "detail": "Some of the identifiers requested were rejected",
               "subproblems": [
                   {
                       "type": "urn:ietf:params:acme:error:malformed",
                       "detail": "Invalid underscore in DNS name \"_example.org\"",
                       "identifier": { "type": "dns", "value": "_example.org" }
                   }
               ]
           }"#,
        )
        .unwrap();
        assert_eq!(
            problem.subproblems[0].identifier.as_ref().unwrap().value,
            "_example.org"
        );
    }

    #[test]
    fn transcript_challenge_shape_round_trips() {
        let json = r#"{"type":"wire-dpop-01","url":"https://stepca:32791/acme/wire/challenge/x/y","status":"pending","token":"OysCZNnV2iJTYfjmTUJZ6vavXXkzPFLf","target":"http://wire.com:46335/clients/9ff0457928ebe5f4/access-token"}"#;
        let challenge: Challenge = serde_json::from_str(json).unwrap();
        assert_eq!(challenge.kind, WIRE_DPOP_01);
        assert_eq!(serde_json::to_string(&challenge).unwrap(), json);
    }
}
