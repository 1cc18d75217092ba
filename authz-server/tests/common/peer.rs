//! A small real HTTPS server on 127.0.0.1 standing for a system of the operator's that our
//! server calls (a remote verifier, an issuer's JWKS endpoint): an axum router served over TLS
//! by `server_kit::serve` with a dev PKI of its own, whose root the tests configure as the trust
//! anchor.

use std::path::PathBuf;

use server_kit::limits::Limits;

pub struct TlsPeer {
    /// `https://127.0.0.1:{port}`.
    pub base: String,
    /// The PEM root its certificate chains to.
    pub ca: PathBuf,
    _serving: server_kit::serve::Serving,
    _dir: tempfile::TempDir,
}

impl TlsPeer {
    pub fn spawn(app: axum::Router) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tls = server_kit::tls::ensure_dev_tls(dir.path(), None).unwrap();
        let config = server_kit::tls::server_config(&tls.cert, &tls.key).unwrap();
        let listener = server_kit::serve::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let limits = Limits {
            max_connections_per_address: 1000,
            ..Limits::default()
        };
        let serving =
            server_kit::serve::serve_tls(listener, config, app, "test-peer", &limits).unwrap();
        Self {
            base: format!("https://{}", serving.addr),
            ca: tls.ca_cert,
            _serving: serving,
            _dir: dir,
        }
    }
}
