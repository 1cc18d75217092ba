//! Challenge types: the three standard ones (RFC 8555 §8.3, §8.4; RFC 8737) and Wire's two.

use proto::acme::{DNS_01, HTTP_01, TLS_ALPN_01, WIRE_DPOP_01, WIRE_OIDC_01};

use super::kinds::string_kinds;

string_kinds! {
    /// A challenge type.
    ChallengeKind {
        /// `http-01`: a file served over HTTP.
        Http01 => HTTP_01,
        /// `dns-01`: a TXT record.
        Dns01 => DNS_01,
        /// `tls-alpn-01`: a certificate served with ALPN `acme-tls/1`.
        TlsAlpn01 => TLS_ALPN_01,
        /// `wire-dpop-01`: the Wire backend's DPoP access token.
        WireDpop01 => WIRE_DPOP_01,
        /// `wire-oidc-01`: the identity provider's ID token.
        WireOidc01 => WIRE_OIDC_01,
    }
}
