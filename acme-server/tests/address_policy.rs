//! The address policy of standard validation over HTTPS against the real server: `ip`
//! identifiers outside the public internet are refused at newOrder, a name that resolves (through
//! the validation resolver, played here by a small DNS server, or `resolve_to`) only to refused
//! addresses is refused before anything connects, the refusal reads the same whatever is at the
//! address, and `allowed_networks` admits what it names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use acme_server::va::addresses::REFUSED;
use common::standard::Fixture;
use common::{Account, assert_problem};
use proto::acme::{Authorization, Challenge, ChallengeStatus};
use serde_json::{Value, json};

/// A DNS server on 127.0.0.1 answering A and AAAA queries from a table (NXDOMAIN otherwise).
async fn dns_server(table: HashMap<&'static str, Vec<IpAddr>>) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let query = &buf[..n];
            // Header (12 bytes), then the name as labels, then type and class.
            let mut pos = 12;
            let mut labels = Vec::new();
            while query[pos] != 0 {
                let len = usize::from(query[pos]);
                labels.push(String::from_utf8_lossy(&query[pos + 1..pos + 1 + len]).to_string());
                pos += 1 + len;
            }
            let question_end = pos + 5;
            let qtype = u16::from_be_bytes([query[pos + 1], query[pos + 2]]);
            let name = labels.join(".");
            let records: Vec<Vec<u8>> = match table.get(name.as_str()) {
                Some(ips) => ips
                    .iter()
                    .filter_map(|ip| match (ip, qtype) {
                        (IpAddr::V4(v4), 1) => Some(v4.octets().to_vec()),
                        (IpAddr::V6(v6), 28) => Some(v6.octets().to_vec()),
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            let mut reply = query[..question_end].to_vec();
            reply[2] = 0x81;
            reply[3] = if table.contains_key(name.as_str()) {
                0x80
            } else {
                0x83
            };
            reply[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
            for rdata in records {
                reply.extend_from_slice(&[0xC0, 12]);
                reply.extend_from_slice(&qtype.to_be_bytes());
                reply.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                reply.extend_from_slice(&rdata);
            }
            let _ = socket.send_to(&reply, from).await;
        }
    });
    addr
}

/// A TCP listener on 127.0.0.1 that counts the connections made to it (the tls-alpn-01 port).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

async fn new_order(f: &Fixture, account: &Account, ids: &[(&str, &str)]) -> reqwest::Response {
    let ids: Vec<Value> = ids
        .iter()
        .map(|(kind, value)| json!({"type": kind, "value": value}))
        .collect();
    let url = f.client.directory.new_order.clone();
    f.client
        .post_as(account, &url, Some(&json!({ "identifiers": ids })))
        .await
}

/// Orders `name` and answers its `kind` challenge (the responder serving the right key
/// authorization); the challenge as the server answers it.
async fn answer(f: &Fixture, account: &Account, name: &str, kind: &str) -> Challenge {
    let (_, order) = f.order(account, &[("dns", name)]).await;
    let authz: Authorization = f.client.get(account, &order.authorizations[0]).await;
    let challenge = authz.challenges.iter().find(|c| c.kind == kind).unwrap();
    f.serve(account, challenge);
    let response = f.client.answer(account, &challenge.url, json!({})).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    response.json().await.unwrap()
}

/// The problem type name and detail of an invalid challenge.
fn refusal(challenge: &Challenge) -> (String, String) {
    assert_eq!(challenge.status, ChallengeStatus::Invalid, "{challenge:?}");
    let error = challenge.error.as_ref().unwrap();
    (error.kind.clone(), error.detail.clone())
}

#[tokio::test]
async fn addresses_outside_the_public_internet_are_rejected_at_new_order() {
    let f = Fixture::start_with(|c| c.validation.allowed_networks.clear()).await;
    let account = f.client.new_account().await;
    for (family, ip) in [
        ("loopback", "127.0.0.1"),
        ("loopback, elsewhere in 127/8", "127.1.2.3"),
        ("IPv6 loopback", "::1"),
        ("cloud metadata (link-local)", "169.254.169.254"),
        ("IPv6 link-local", "fe80::1"),
        ("private 10/8", "10.0.0.1"),
        ("private 172.16/12", "172.16.5.4"),
        ("private 192.168/16", "192.168.1.1"),
        ("unique local fc00::/7", "fd00::1"),
        ("unspecified", "0.0.0.0"),
        ("IPv6 unspecified", "::"),
        ("this network 0/8", "0.1.2.3"),
        ("broadcast", "255.255.255.255"),
        ("reserved 240/4", "240.0.0.1"),
        ("multicast", "224.0.0.1"),
        ("IPv6 multicast", "ff02::1"),
        ("shared CGNAT 100.64/10", "100.64.0.1"),
        ("documentation", "192.0.2.1"),
        ("IPv6 documentation", "2001:db8::1"),
        ("benchmarking", "198.18.0.1"),
        ("IPv4-mapped loopback", "::ffff:127.0.0.1"),
        ("IPv4-mapped metadata", "::ffff:169.254.169.254"),
        ("NAT64 of loopback", "64:ff9b::7f00:1"),
        ("6to4 of a private address", "2002:a00:1::"),
        ("Teredo", "2001::1"),
    ] {
        let response = new_order(&f, &account, &[("ip", ip)]).await;
        assert_eq!(response.status(), 400, "{family} {ip}");
        let problem = assert_problem(response, 400, "rejectedIdentifier").await;
        assert_eq!(problem["detail"], REFUSED, "{family}");
        assert_eq!(problem["subproblems"][0]["identifier"]["value"], ip);
    }
    // An order is refused for the refused identifiers only, each named.
    let response = new_order(
        &f,
        &account,
        &[("ip", "8.8.8.8"), ("ip", "10.1.1.1"), ("ip", "::1")],
    )
    .await;
    let problem = assert_problem(response, 400, "rejectedIdentifier").await;
    let named: Vec<&str> = problem["subproblems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["identifier"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["10.1.1.1", "::1"]);
    // Public addresses are ordered (nothing connects before a challenge is answered).
    for ip in ["8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
        assert_eq!(new_order(&f, &account, &[("ip", ip)]).await.status(), 201);
    }
}

#[tokio::test]
async fn allowed_networks_admit_exactly_what_they_name() {
    let f = Fixture::start_with(|c| {
        c.validation.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let account = f.client.new_account().await;
    for ip in ["127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1"] {
        let response = new_order(&f, &account, &[("ip", ip)]).await;
        assert_eq!(response.status(), 201, "{ip}");
    }
    for ip in ["::1", "10.0.0.1", "169.254.169.254"] {
        let response = new_order(&f, &account, &[("ip", ip)]).await;
        assert_problem(response, 400, "rejectedIdentifier").await;
    }
}

#[tokio::test]
async fn a_name_resolving_to_refused_addresses_is_refused_before_any_connection() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let dns = dns_server(HashMap::from([
        ("inside.example.test", vec![loopback]),
        ("inside6.example.test", vec!["::1".parse().unwrap()]),
        (
            "metadata.example.test",
            vec!["169.254.169.254".parse().unwrap()],
        ),
        (
            "mixed.example.test",
            vec!["10.0.0.1".parse().unwrap(), loopback],
        ),
    ]))
    .await;
    let (tls_port, tls_connections) = counting_listener().await;

    // `resolve_to` (the test set-up option) is judged by the policy like any address.
    let f = Fixture::start_with(|c| {
        c.validation.allowed_networks.clear();
        c.validation.tls_port = tls_port;
    })
    .await;
    let account = f.client.new_account().await;
    for kind in ["http-01", "tls-alpn-01"] {
        let challenge = answer(&f, &account, "sent.example.test", kind).await;
        let expected = (
            "urn:ietf:params:acme:error:rejectedIdentifier".to_owned(),
            format!("{kind}: {REFUSED}"),
        );
        assert_eq!(refusal(&challenge), expected);
    }

    // Names resolved by the validation resolver: every address is judged.
    let f2 = Fixture::start_with(|c| {
        c.validation.allowed_networks.clear();
        c.validation.resolve_to = None;
        c.validation.dns_server = Some(dns);
        c.validation.tls_port = tls_port;
    })
    .await;
    let account = f2.client.new_account().await;
    for name in [
        "inside.example.test",
        "inside6.example.test",
        "metadata.example.test",
        "mixed.example.test",
    ] {
        for kind in ["http-01", "tls-alpn-01"] {
            let challenge = answer(&f2, &account, name, kind).await;
            let (problem, detail) = refusal(&challenge);
            assert_eq!(problem, "urn:ietf:params:acme:error:rejectedIdentifier");
            assert_eq!(detail, format!("{kind}: {REFUSED}"), "{name}");
        }
    }
    // A name that does not resolve is a DNS problem, not a refusal.
    let challenge = answer(&f2, &account, "nowhere.example.test", "http-01").await;
    assert_eq!(refusal(&challenge).0, "urn:ietf:params:acme:error:dns");

    // Neither the http-01 responders (which serve the right key authorization) nor the
    // tls-alpn-01 port were ever connected to.
    assert_eq!(f.requests.load(Ordering::SeqCst), 0);
    assert_eq!(f2.requests.load(Ordering::SeqCst), 0);
    assert_eq!(tls_connections.load(Ordering::SeqCst), 0);

    // With loopback admitted, the mixed name is validated at its admitted address only
    // (10.0.0.1, listed first, is skipped: nothing answers there).
    let f3 = Fixture::start_with(|c| {
        c.validation.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        c.validation.resolve_to = None;
        c.validation.dns_server = Some(dns);
    })
    .await;
    let account = f3.client.new_account().await;
    let challenge = answer(&f3, &account, "mixed.example.test", "http-01").await;
    assert_eq!(challenge.status, ChallengeStatus::Valid, "{challenge:?}");
    assert_eq!(f3.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refusal_reads_the_same_whatever_is_at_the_address() {
    // 127.0.0.1: the responder, listening; 127.0.0.2: nothing listens (connection refused);
    // 10.255.255.1: nothing routes (a connection would hang until the timeout).
    let dns = dns_server(HashMap::from([
        ("listening.example.test", vec!["127.0.0.1".parse().unwrap()]),
        ("closed.example.test", vec!["127.0.0.2".parse().unwrap()]),
        (
            "unrouted.example.test",
            vec!["10.255.255.1".parse().unwrap()],
        ),
    ]))
    .await;
    let f = Fixture::start_with(|c| {
        c.validation.allowed_networks.clear();
        c.validation.resolve_to = None;
        c.validation.dns_server = Some(dns);
    })
    .await;
    let account = f.client.new_account().await;

    let mut at_new_order = Vec::new();
    for ip in ["127.0.0.1", "127.0.0.2", "10.255.255.1"] {
        let response = new_order(&f, &account, &[("ip", ip)]).await;
        let problem = assert_problem(response, 400, "rejectedIdentifier").await;
        at_new_order.push((problem["type"].clone(), problem["detail"].clone()));
    }
    assert!(at_new_order.iter().all(|p| *p == at_new_order[0]));

    let mut at_validation = Vec::new();
    for name in [
        "listening.example.test",
        "closed.example.test",
        "unrouted.example.test",
    ] {
        at_validation.push(refusal(&answer(&f, &account, name, "http-01").await));
    }
    assert!(
        at_validation.iter().all(|r| *r == at_validation[0]),
        "{at_validation:?}"
    );
    assert_eq!(f.requests.load(Ordering::SeqCst), 0);
}
