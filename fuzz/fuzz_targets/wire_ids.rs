//! Wire identifiers: client-id and handle URIs, the ACME identifier values that carry them, UUIDs
//! and domains.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::wire_id::{ClientId, HandleUri, parse_uuid, validate_domain};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = ClientId::parse(text) {
        // What parses prints back to something that parses to the same identifier.
        assert_eq!(ClientId::parse(&id.to_uri()).ok(), Some(id));
    }
    if let Ok(handle) = HandleUri::parse(text) {
        assert_eq!(HandleUri::parse(&handle.to_uri()).ok(), Some(handle));
    }
    let _ = parse_uuid(text);
    let _ = validate_domain(text);
    let _ = proto::wire_id::DeviceIdentifier::parse(text);
    let _ = proto::wire_id::UserIdentifier::parse(text);
});
