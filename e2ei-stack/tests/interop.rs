//! The issued certificate used for what it is for: a real mutual-TLS handshake with a rustls
//! server that trusts the identity CA's root, and `openssl verify` with the client purpose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use client_sdk::{Enrolled, Enrollment};
use e2ei_stack::stack::Stack;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn chain_of(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

/// Runs one mutual-TLS exchange; returns the client certificate the server saw, or the
/// handshake error.
fn mutual_tls(
    ca_root_pem: &str,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
) -> Result<CertificateDer<'static>, String> {
    let mut client_roots = rustls::RootCertStore::empty();
    for root in chain_of(ca_root_pem) {
        client_roots.add(root).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots),
        provider(),
    )
    .build()
    .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || -> Result<CertificateDer<'static>, String> {
        let (socket, _) = listener.accept().map_err(|e| e.to_string())?;
        let conn = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, socket);
        let mut hello = [0u8; 5];
        tls.read_exact(&mut hello).map_err(|e| e.to_string())?;
        tls.write_all(b"olleh").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let seen = tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first().cloned())
            .ok_or("no client certificate")?;
        Ok(seen.into_owned())
    });

    let mut server_roots = rustls::RootCertStore::empty();
    server_roots.add(server_cert.der().clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(server_roots)
        .with_client_auth_cert(client_chain, client_key)
        .unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::new(client_config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    let client_side = tls.write_all(b"hello").and_then(|()| {
        let mut reply = [0u8; 5];
        tls.read_exact(&mut reply).map(|()| reply)
    });
    drop(tls);
    let server_side = server.join().unwrap();
    match (client_side, server_side) {
        (Ok(reply), Ok(seen)) => {
            assert_eq!(&reply, b"olleh");
            Ok(seen)
        }
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e.to_string()),
    }
}

async fn enrolled() -> (Enrolled, String) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    let root = std::fs::read_to_string(&stack.acme.ca_root).unwrap();
    stack.shutdown().await.unwrap();
    (enrolled, root)
}

#[tokio::test]
async fn the_leaf_authenticates_a_client_in_a_mutual_tls_handshake() {
    let (enrolled, root) = enrolled().await;
    let chain = chain_of(&enrolled.chain_pem);
    let key = PrivateKeyDer::Pkcs8(enrolled.credential_key.expose().to_vec().into());
    let seen = tokio::task::spawn_blocking({
        let root = root.clone();
        let chain = chain.clone();
        move || mutual_tls(&root, chain, key)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(seen, chain[0]);

    // A certificate the identity CA did not issue is refused.
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let stranger = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&stranger_key)
        .unwrap();
    let refused = tokio::task::spawn_blocking(move || {
        mutual_tls(
            &root,
            vec![stranger.der().clone()],
            PrivateKeyDer::Pkcs8(stranger_key.serialize_der().into()),
        )
    })
    .await
    .unwrap();
    assert!(refused.is_err());
}

#[tokio::test]
async fn openssl_verifies_the_chain_for_client_use() {
    let (enrolled, root) = enrolled().await;
    let dir = tempfile::tempdir().unwrap();
    let pems: Vec<&str> = enrolled
        .chain_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    assert_eq!(pems.len(), 2);
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("root.pem"), &root).unwrap();
    std::fs::write(path("intermediate.pem"), pems[1]).unwrap();
    std::fs::write(path("leaf.pem"), pems[0]).unwrap();
    let run = |purpose: &str| {
        std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(path("root.pem"))
            .arg("-untrusted")
            .arg(path("intermediate.pem"))
            .args(["-purpose", purpose])
            .arg(path("leaf.pem"))
            .output()
            .expect("openssl must be installed (`cargo xtask test` installs it)")
    };
    let client = run("sslclient");
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(String::from_utf8_lossy(&client.stdout).contains("leaf.pem: OK"));
    // The profile is client-only.
    assert!(!run("sslserver").status.success());
}
