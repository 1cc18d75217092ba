//! Wire identifiers, exactly as Wire deployments use them:
//!
//! * client-id URI `wireapp://{base64url(16 uuid bytes)}!{device id hex}@{domain}` (in a SAN the
//!   `!` may appear as `%21`);
//! * handle URI `wireapp://%40{handle}@{domain}`;
//! * the ACME identifier values of type `wireapp-device` and `wireapp-user` (a JSON object
//!   serialised as a string);
//! * the key authorization `token.thumbprint` (RFC 8555 §8.1).

use serde_json::{Map, Value};

use crate::{Error, Result, b64};

const SCHEME: &str = "wireapp://";

/// A device of a user: the client-id URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId {
    user: [u8; 16],
    device: String,
    domain: String,
}

impl ClientId {
    /// Builds from the user's UUID bytes, the device id (lower-case hex) and the domain.
    pub fn new(user: [u8; 16], device: &str, domain: &str) -> Result<Self> {
        validate_device_id(device)?;
        validate_domain(domain).map_err(|_| Error::InvalidClientId("domain"))?;
        Ok(Self {
            user,
            device: device.to_owned(),
            domain: domain.to_owned(),
        })
    }

    /// Parses the URI form, accepting `%21` for the `!` separator.
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or(Error::InvalidClientId("scheme must be wireapp://"))?;
        let (local, domain) = rest
            .rsplit_once('@')
            .ok_or(Error::InvalidClientId("missing @domain"))?;
        let (user, device) = local
            .split_once('!')
            .or_else(|| local.split_once("%21"))
            .ok_or(Error::InvalidClientId("missing ! separator"))?;
        let user_bytes =
            b64::decode(user, "client id user").map_err(|_| Error::InvalidClientId("user id"))?;
        let user: [u8; 16] = user_bytes
            .try_into()
            .map_err(|_| Error::InvalidClientId("user id is not 16 bytes"))?;
        Self::new(user, device, domain)
    }

    /// The canonical URI (with a literal `!`).
    pub fn to_uri(&self) -> String {
        format!(
            "{SCHEME}{}!{}@{}",
            b64::encode(self.user),
            self.device,
            self.domain
        )
    }

    /// The user's UUID bytes.
    pub fn user(&self) -> [u8; 16] {
        self.user
    }

    /// The user's UUID in hyphenated form.
    pub fn user_uuid(&self) -> String {
        format_uuid(&self.user)
    }

    /// The device id (lower-case hex).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// A user's handle: the handle URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandleUri {
    handle: String,
    domain: String,
}

impl HandleUri {
    /// Builds from a handle (`[a-z0-9_.-]`, 2–256 characters) and a domain.
    pub fn new(handle: &str, domain: &str) -> Result<Self> {
        validate_handle(handle)?;
        validate_domain(domain).map_err(|_| Error::InvalidHandle("domain"))?;
        Ok(Self {
            handle: handle.to_owned(),
            domain: domain.to_owned(),
        })
    }

    /// Parses `wireapp://%40{handle}@{domain}`.
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or(Error::InvalidHandle("scheme must be wireapp://"))?;
        let rest = rest
            .strip_prefix("%40")
            .ok_or(Error::InvalidHandle("the handle must start with %40"))?;
        let (handle, domain) = rest
            .rsplit_once('@')
            .ok_or(Error::InvalidHandle("missing @domain"))?;
        Self::new(handle, domain)
    }

    /// The URI form.
    pub fn to_uri(&self) -> String {
        format!("{SCHEME}%40{}@{}", self.handle, self.domain)
    }

    /// The bare handle.
    pub fn handle(&self) -> &str {
        &self.handle
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl std::fmt::Display for HandleUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// The ACME identifier type of a device.
pub const DEVICE_IDENTIFIER_TYPE: &str = "wireapp-device";
/// The ACME identifier type of a user.
pub const USER_IDENTIFIER_TYPE: &str = "wireapp-user";

/// The value of a `wireapp-device` identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentifier {
    /// The device's client-id URI.
    pub client_id: ClientId,
    /// The owner's handle URI.
    pub handle: HandleUri,
    /// The owner's display name.
    pub name: String,
}

/// The value of a `wireapp-user` identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentifier {
    /// The user's handle URI.
    pub handle: HandleUri,
    /// The user's display name.
    pub name: String,
}

impl DeviceIdentifier {
    /// Builds the identifier; client-id and handle must share the domain.
    pub fn new(client_id: ClientId, handle: HandleUri, name: &str) -> Result<Self> {
        if client_id.domain() != handle.domain() {
            return Err(Error::InvalidIdentifier(
                "client-id and handle domains differ",
            ));
        }
        validate_name(name)?;
        Ok(Self {
            client_id,
            handle,
            name: name.to_owned(),
        })
    }

    /// The domain both URIs name.
    pub fn domain(&self) -> &str {
        self.client_id.domain()
    }

    /// Serialises as Wire does: `{"client-id","handle","name","domain"}`.
    pub fn to_value(&self) -> String {
        let mut map = Map::new();
        map.insert("client-id".into(), self.client_id.to_uri().into());
        map.insert("handle".into(), self.handle.to_uri().into());
        map.insert("name".into(), self.name.clone().into());
        map.insert("domain".into(), self.domain().into());
        ordered_json(&map, &["client-id", "handle", "name", "domain"])
    }

    /// Parses an identifier value; `domain` must agree with both URIs.
    pub fn parse(value: &str) -> Result<Self> {
        let map = parse_object(value)?;
        let client_id = ClientId::parse(field(&map, "client-id")?)?;
        let handle = HandleUri::parse(field(&map, "handle")?)?;
        let id = Self::new(client_id, handle, field(&map, "name")?)?;
        if field(&map, "domain")? != id.domain() {
            return Err(Error::InvalidIdentifier("domain does not match the URIs"));
        }
        Ok(id)
    }
}

impl UserIdentifier {
    /// Builds the identifier.
    pub fn new(handle: HandleUri, name: &str) -> Result<Self> {
        validate_name(name)?;
        Ok(Self {
            handle,
            name: name.to_owned(),
        })
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        self.handle.domain()
    }

    /// Serialises as Wire does: `{"handle","name","domain"}`.
    pub fn to_value(&self) -> String {
        let mut map = Map::new();
        map.insert("handle".into(), self.handle.to_uri().into());
        map.insert("name".into(), self.name.clone().into());
        map.insert("domain".into(), self.domain().into());
        ordered_json(&map, &["handle", "name", "domain"])
    }

    /// Parses an identifier value; `domain` must agree with the handle.
    pub fn parse(value: &str) -> Result<Self> {
        let map = parse_object(value)?;
        let id = Self::new(
            HandleUri::parse(field(&map, "handle")?)?,
            field(&map, "name")?,
        )?;
        if field(&map, "domain")? != id.domain() {
            return Err(Error::InvalidIdentifier("domain does not match the handle"));
        }
        Ok(id)
    }
}

/// A Wire identity: which device of which user. The one type the ACME order, the DPoP proof's
/// Wire claims, the backend's access token, the ID token mapping, the CSR and the certificate
/// are checked against. Stored as its URIs (`client_id`, `handle`), `name` and, when known,
/// `team`; the domain is the URIs' (they must agree).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "StoredIdentity", into = "StoredIdentity")]
pub struct WireIdentity {
    client_id: ClientId,
    handle: HandleUri,
    name: String,
    team: Option<String>,
}

impl WireIdentity {
    /// An identity; client-id and handle must share the domain, the name must be a display
    /// name. `team` is the user's team where the verifier knows it (the backend), `None` where
    /// it does not (the ACME server: no identifier carries it) — a proof's `team` is checked
    /// only against `Some`.
    pub fn new(
        client_id: ClientId,
        handle: HandleUri,
        name: &str,
        team: Option<String>,
    ) -> Result<Self> {
        let device = DeviceIdentifier::new(client_id, handle, name)?;
        Ok(Self {
            client_id: device.client_id,
            handle: device.handle,
            name: device.name,
            team,
        })
    }

    /// The identity an order's two identifiers name: they must agree on handle, name and
    /// domain.
    pub fn from_identifiers(device: &DeviceIdentifier, user: &UserIdentifier) -> Result<Self> {
        if device.handle != user.handle || device.name != user.name {
            return Err(Error::InvalidIdentifier(
                "the device and user identifiers name different users",
            ));
        }
        Self::new(
            device.client_id.clone(),
            device.handle.clone(),
            &device.name,
            None,
        )
    }

    /// The device.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The user's handle.
    pub fn handle(&self) -> &HandleUri {
        &self.handle
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The team, where known.
    pub fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }

    /// The domain of both URIs.
    pub fn domain(&self) -> &str {
        self.client_id.domain()
    }

    /// The `wireapp-device` identifier.
    pub fn device_identifier(&self) -> DeviceIdentifier {
        DeviceIdentifier {
            client_id: self.client_id.clone(),
            handle: self.handle.clone(),
            name: self.name.clone(),
        }
    }

    /// The `wireapp-user` identifier.
    pub fn user_identifier(&self) -> UserIdentifier {
        UserIdentifier {
            handle: self.handle.clone(),
            name: self.name.clone(),
        }
    }

    /// The two ACME identifiers of an order for this identity, as Wire serialises them.
    pub fn acme_identifiers(&self) -> Vec<crate::acme::Identifier> {
        vec![
            crate::acme::Identifier {
                kind: DEVICE_IDENTIFIER_TYPE.into(),
                value: self.device_identifier().to_value(),
            },
            crate::acme::Identifier {
                kind: USER_IDENTIFIER_TYPE.into(),
                value: self.user_identifier().to_value(),
            },
        ]
    }
}

/// [`WireIdentity`] as stored: its URIs and names as strings (an older record's `domain`
/// member is ignored; it is the URIs').
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredIdentity {
    client_id: String,
    handle: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
}

impl TryFrom<StoredIdentity> for WireIdentity {
    type Error = Error;

    fn try_from(stored: StoredIdentity) -> Result<Self> {
        Self::new(
            ClientId::parse(&stored.client_id)?,
            HandleUri::parse(&stored.handle)?,
            &stored.name,
            stored.team,
        )
    }
}

impl From<WireIdentity> for StoredIdentity {
    fn from(identity: WireIdentity) -> Self {
        Self {
            client_id: identity.client_id.to_uri(),
            handle: identity.handle.to_uri(),
            name: identity.name,
            team: identity.team,
        }
    }
}

/// RFC 8555 §8.1 key authorization: `token || '.' || base64url(JWK thumbprint)`.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// Formats 16 bytes as a hyphenated UUID.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Parses a hyphenated UUID.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn ordered_json(map: &Map<String, Value>, order: &[&str]) -> String {
    let members: Vec<String> = order
        .iter()
        .map(|k| format!("{}:{}", Value::String((*k).into()), map[*k]))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn parse_object(value: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::InvalidIdentifier("the value is not a JSON object")),
    }
}

fn field<'a>(map: &'a Map<String, Value>, name: &'static str) -> Result<&'a str> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or(Error::InvalidIdentifier(name))
}

fn validate_device_id(device: &str) -> Result<()> {
    let ok = (1..=16).contains(&device.len())
        && device
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(()).ok_or(Error::InvalidClientId(
        "device id must be 1-16 lower-case hex digits",
    ))
}

/// Whether `handle` is a Wire handle: 2–256 characters of `[a-z0-9_.-]`.
pub fn validate_handle(handle: &str) -> Result<()> {
    let ok = (2..=256).contains(&handle.len())
        && handle.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    ok.then_some(())
        .ok_or(Error::InvalidHandle("a handle is 2-256 of [a-z0-9_.-]"))
}

/// A DNS domain: dot-separated labels of `[a-z0-9-]`, no empty label.
pub fn validate_domain(domain: &str) -> Result<()> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    ok.then_some(()).ok_or(Error::InvalidIdentifier("domain"))
}

/// Whether `name` can be a Wire display name (or team name): not blank, at most 256 bytes, no
/// control characters.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.trim().is_empty() && name.len() <= 256 && !name.chars().any(char::is_control);
    ok.then_some(()).ok_or(Error::InvalidIdentifier("name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSCRIPT_CLIENT: &str = "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com";

    #[test]
    fn client_id_round_trips_and_tolerates_percent_21() {
        let id = ClientId::parse(TRANSCRIPT_CLIENT).unwrap();
        assert_eq!(id.device(), "9ff0457928ebe5f4");
        assert_eq!(id.domain(), "wire.com");
        assert_eq!(id.to_uri(), TRANSCRIPT_CLIENT);
        let encoded = TRANSCRIPT_CLIENT.replace('!', "%21");
        assert_eq!(ClientId::parse(&encoded).unwrap(), id);
        assert_eq!(parse_uuid(&id.user_uuid()).unwrap(), id.user());
    }

    #[test]
    fn client_id_refuses_malformed_uris() {
        for bad in [
            "https://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com",
            "wireapp://yRbSiljXSnCl77-QkM634g9ff0457928ebe5f4@wire.com",
            "wireapp://yRbSiljXSnCl77-QkM634g!9FF0457928EBE5F4@wire.com",
            "wireapp://yRbSiljXSnCl77-QkM6!9ff0457928ebe5f4@wire.com",
            "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4",
            "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@Wire.com",
            "wireapp://yRbSiljXSnCl77-QkM634g!0123456789abcdef0@wire.com",
        ] {
            assert!(
                matches!(ClientId::parse(bad), Err(Error::InvalidClientId(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn handle_uri_round_trips() {
        let h = HandleUri::parse("wireapp://%40alice_wire@wire.com").unwrap();
        assert_eq!(h.handle(), "alice_wire");
        assert_eq!(h.to_uri(), "wireapp://%40alice_wire@wire.com");
        assert!(HandleUri::parse("wireapp://alice_wire@wire.com").is_err());
        assert!(HandleUri::parse("wireapp://%40Alice@wire.com").is_err());
        assert!(HandleUri::parse("wireapp://%40a@wire.com").is_err());
    }

    #[test]
    fn identifiers_serialise_exactly_as_wire_and_parse_back() {
        let device = r#"{"client-id":"wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com","handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;
        let user = r#"{"handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;
        assert_eq!(DeviceIdentifier::parse(device).unwrap().to_value(), device);
        assert_eq!(UserIdentifier::parse(user).unwrap().to_value(), user);
        let other_domain = device.replace(r#""domain":"wire.com""#, r#""domain":"wire.org""#);
        assert!(matches!(
            DeviceIdentifier::parse(&other_domain),
            Err(Error::InvalidIdentifier(_))
        ));
        let mixed = device.replace("%40alice_wire@wire.com", "%40alice_wire@wire.org");
        assert!(matches!(
            DeviceIdentifier::parse(&mixed),
            Err(Error::InvalidIdentifier(_))
        ));
        assert!(matches!(
            UserIdentifier::parse("[]"),
            Err(Error::InvalidIdentifier(_))
        ));
    }

    #[test]
    fn key_authorization_joins_token_and_thumbprint() {
        assert_eq!(
            key_authorization(
                "MXwp2QZezi1xShr3wjNuqKDmmapvtnxv",
                "StoKb1FuB59XWMLjhsdeU94T95R_AoMP3u2g9HscYog"
            ),
            "MXwp2QZezi1xShr3wjNuqKDmmapvtnxv.StoKb1FuB59XWMLjhsdeU94T95R_AoMP3u2g9HscYog"
        );
    }
}
