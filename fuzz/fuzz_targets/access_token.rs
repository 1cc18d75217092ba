//! Wire access-token verification (the `wire-dpop-01` answer): the outer JWT against a backend
//! key, then the embedded proof, as the ACME server's validation authority runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::access_token::{AccessTokenCheck, AccessTokenPolicy, verify_access_token};
use proto::jwk::Jwk;
use proto::wire_id::{ClientId, HandleUri, WireIdentity};

const NOW: i64 = 1_763_129_560;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // The transcript's backend and ACME account keys.
    let backend = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519",
        "x": "p8RM7kLwp61kjwCsfncENGOKlf1MZPIcFaUeg0ZytpQ"
    });
    let account = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519",
        "x": "-5zCew93D_bahlxo2Gw5ceNyNOSqAxcbMuM8dBMI1Kg"
    });
    let (Ok(backend), Ok(account), Ok(client_id), Ok(handle)) = (
        Jwk::from_json(&backend),
        Jwk::from_json(&account),
        ClientId::parse("wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com"),
        HandleUri::parse("wireapp://%40alice_wire@wire.com"),
    ) else {
        return;
    };
    let Ok(identity) = WireIdentity::new(client_id, handle, "Alice Smith", Some("wire".into())) else {
        return;
    };
    let keys = [backend];
    let check = AccessTokenCheck {
        backend_keys: &keys,
        issuer: "http://wire.com:46335/clients/9ff0457928ebe5f4/access-token",
        audience: "https://stepca:32791/acme/wire/challenge/xHRAajFP4HlKRNPe0IstIzHWrrDS6ev0/pN19guj2sKZCQ3Q27w6YBAZlrbl3RogU",
        account_key: &account,
        challenge_token: "OysCZNnV2iJTYfjmTUJZ6vavXXkzPFLf",
        identity: &identity,
    };
    let _ = verify_access_token(raw, &check, &AccessTokenPolicy::default(), NOW);
});
