//! The OpenID `claims` request parameter of `/authorize` (the Wire `keyauth` and `acme_aud`
//! values echoed into the ID token).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(claims) = proto::wire_claims::AcmeClaims::from_claims_parameter(Some(text)) {
        for value in [&claims.keyauth, &claims.acme_aud].into_iter().flatten() {
            assert!(value.len() <= proto::wire_claims::MAX_ACME_CLAIM);
        }
    }
});
