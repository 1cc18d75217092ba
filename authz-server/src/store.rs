//! The authorization server's collections in the shared key-value store
//! ([`server_kit::store`]): the only place that names them.

pub use server_kit::store::{SledStore, Store, Tree, encode};

/// The collections the server keeps.
pub mod trees {
    use super::Tree;

    /// User id → user record.
    pub const USERS: Tree = Tree::new("users");
    /// Handle → user id (uniqueness index).
    pub const HANDLES: Tree = Tree::new("handles");
    /// OAuth client id → client record.
    pub const CLIENTS: Tree = Tree::new("clients");
    /// `{user id}/{device id}` → device record.
    pub const DEVICES: Tree = Tree::new("devices");
    /// SHA-256 of an authorization code → code record.
    pub const CODES: Tree = Tree::new("codes");
    /// Backend nonce → binding (user, device, expiry).
    pub const BACKEND_NONCES: Tree = Tree::new("backend_nonces");
    /// Access-token `jti` → revocation record.
    pub const REVOKED_TOKENS: Tree = Tree::new("revoked_tokens");
    /// SHA-256 of a refresh token → its record.
    pub const REFRESH_TOKENS: Tree = Tree::new("refresh_tokens");
    /// Refresh token family → revocation state and access tokens.
    pub const REFRESH_FAMILIES: Tree = Tree::new("refresh_families");
    /// SHA-256 of a device code → device authorization (RFC 8628).
    pub const DEVICE_CODES: Tree = Tree::new("device_codes");
    /// User code → SHA-256 of its device code.
    pub const USER_CODES: Tree = Tree::new("user_codes");
    /// `{user id}/{client id}` → the scopes the user granted the client.
    pub const CONSENTS: Tree = Tree::new("consents");
    /// `{user id}/{client id}` → when the user last withdrew the client's consent: what was
    /// granted to the client for the user at or before then is void.
    pub const WITHDRAWALS: Tree = Tree::new("withdrawals");
    /// Consent ticket → an authorization waiting for the user's answer.
    pub const CONSENT_TICKETS: Tree = Tree::new("consent_tickets");
    /// `{client id}:{jti}` of `private_key_jwt` assertions → expiry: used once.
    pub const CLIENT_ASSERTION_JTIS: Tree = Tree::new("client_assertion_jtis");
    /// DPoP proof `jti` (with key thumbprint) → expiry: the replay cache.
    pub const DPOP_JTIS: Tree = Tree::new("dpop_jtis");
}
