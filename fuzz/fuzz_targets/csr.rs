//! CSR parsing and the identity checks of finalize (subject, SAN URIs, key, signature), and
//! the checks of standard orders' names.
#![no_main]

use acme_server::ca::csr::validate;
use acme_server::model::{Name, OrderProfile};
use libfuzzer_sys::fuzz_target;
use proto::wire_id::{ClientId, HandleUri, WireIdentity};

fuzz_target!(|data: &[u8]| {
    let (Ok(client_id), Ok(handle)) = (
        ClientId::parse("wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com"),
        HandleUri::parse("wireapp://%40alice_wire@wire.com"),
    ) else {
        return;
    };
    let Ok(expected) = WireIdentity::new(client_id, handle, "Alice Smith", None) else {
        return;
    };
    let _ = validate(data, &OrderProfile::Identity(expected), |_| Ok(false));
    let names = vec![
        Name::Dns {
            name: "example.test".into(),
            wildcard: false,
        },
        Name::Ip(std::net::IpAddr::from([192, 0, 2, 1])),
    ];
    let _ = validate(data, &OrderProfile::Names(names), |_| Ok(false));
});
