//! DPoP proof verification (RFC 9449 and the Wire claims) with the checks of the Wire
//! access-token endpoint, at the time of the recorded enrollment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::dpop::{DpopCheck, DpopPolicy, NonceCheck, WireExpectations, verify_dpop_proof};
use proto::wire_id::{ClientId, HandleUri, WireIdentity};

/// The recorded enrollment's time (`verify_at_unix` of the transcript).
const NOW: i64 = 1_763_129_560;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let (Ok(client_id), Ok(handle)) = (
        ClientId::parse("wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com"),
        HandleUri::parse("wireapp://%40alice_wire@wire.com"),
    ) else {
        return;
    };
    let Ok(identity) = WireIdentity::new(client_id, handle, "Alice Smith", Some("wire".into())) else {
        return;
    };
    let check = DpopCheck {
        htm: "POST",
        htu: "http://wire.com:46335/clients/9ff0457928ebe5f4/access-token",
        nonce: NonceCheck::Present,
        access_token: None,
        wire: Some(WireExpectations {
            identity: &identity,
            challenge: None,
            audience: None,
        }),
    };
    let _ = verify_dpop_proof(raw, &check, &DpopPolicy::wire(), NOW);
});
