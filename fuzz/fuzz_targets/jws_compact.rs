//! Compact JWS parsing: header decoding, algorithm and embedded-key extraction, and a signature
//! check against the key the header carries (as the DPoP verifier does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::jws::UnverifiedJws;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jws) = UnverifiedJws::from_compact(text) {
        let _ = jws.header().algorithm();
        let _ = jws.header().typ();
        if let Ok(jwk) = jws.header().jwk() {
            let _ = jwk.thumbprint();
            if let Ok(verified) = jws.verify(&jwk) {
                let _ = verified.claims();
            }
        }
    }
});
