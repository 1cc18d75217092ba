//! A minimal DNS client for validation (RFC 1035 over UDP): one query to one server, answers
//! read with name compression, a random query id checked on the reply. It looks up the TXT
//! records of dns-01 (`_acme-challenge.<name>`) and the A and AAAA records http-01 and
//! tls-alpn-01 connect to, so every address validation uses is resolved here, by the configured
//! resolver, and judged by the address policy ([`super::addresses`]) before any connection,
//! never resolved again behind its back. The reply is read into a fixed 4 KiB buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Record type A.
const A: u16 = 1;
/// Record type TXT.
const TXT: u16 = 16;
/// Record type AAAA.
const AAAA: u16 = 28;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// No answer in time, or the socket failed.
    Unreachable(String),
    /// The server answered with an error code (2 SERVFAIL, 5 REFUSED, ...).
    Rcode(u8),
    /// The reply is not a DNS message we can read.
    Malformed,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) => write!(f, "DNS server unreachable: {m}"),
            Self::Rcode(c) => write!(f, "DNS server answered with rcode {c}"),
            Self::Malformed => write!(f, "malformed DNS reply"),
        }
    }
}

/// The nameserver of /etc/resolv.conf.
pub fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
}

fn query_message(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut m = Vec::with_capacity(512);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        m.push(u8::try_from(label.len()).ok()?);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    Some(m)
}

/// Skips a (possibly compressed) name at `pos`; returns the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => return Some(pos + 2),
            l => pos += 1 + usize::from(l),
        }
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// The data of the answers of type `qtype` in a reply (NXDOMAIN: none).
fn parse_answers(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<&[u8]>, DnsError> {
    let bad = DnsError::Malformed;
    if u16_at(msg, 0) != Some(id) {
        return Err(bad);
    }
    let flags = u16_at(msg, 2).ok_or(bad.clone())?;
    if flags & 0x8000 == 0 || flags & 0x0200 != 0 {
        return Err(bad);
    }
    let rcode = u8::try_from(flags & 0x000F).map_err(|_| bad.clone())?;
    match rcode {
        0 => {}
        3 => return Ok(Vec::new()),
        other => return Err(DnsError::Rcode(other)),
    }
    let questions = u16_at(msg, 4).ok_or(bad.clone())?;
    let answers = u16_at(msg, 6).ok_or(bad.clone())?;
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(msg, pos).ok_or(bad.clone())? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        pos = skip_name(msg, pos).ok_or(bad.clone())?;
        let rtype = u16_at(msg, pos).ok_or(bad.clone())?;
        let rdlen = usize::from(u16_at(msg, pos + 8).ok_or(bad.clone())?);
        let start = pos + 10;
        let rdata = msg.get(start..start + rdlen).ok_or(bad.clone())?;
        pos = start + rdlen;
        if rtype == qtype {
            out.push(rdata);
        }
    }
    Ok(out)
}

/// The TXT strings of a reply (each record's character-strings concatenated).
fn parse_txt(msg: &[u8], id: u16) -> Result<Vec<String>, DnsError> {
    parse_answers(msg, id, TXT)?
        .into_iter()
        .map(|rdata| {
            let mut text = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let len = usize::from(rdata[i]);
                text.extend_from_slice(rdata.get(i + 1..i + 1 + len).ok_or(DnsError::Malformed)?);
                i += 1 + len;
            }
            Ok(String::from_utf8_lossy(&text).into_owned())
        })
        .collect()
}

/// The addresses of an A or AAAA reply.
fn parse_addresses(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<IpAddr>, DnsError> {
    parse_answers(msg, id, qtype)?
        .into_iter()
        .map(|rdata| match (qtype, rdata.len()) {
            (A, 4) => Ok(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (AAAA, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(rdata);
                Ok(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            _ => Err(DnsError::Malformed),
        })
        .collect()
}

/// Sends one query for `name` of type `qtype` to `server`; the reply and the query id.
async fn query(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<(Vec<u8>, u16), DnsError> {
    let id = u16::from_be_bytes([proto::random::bytes(1)[0], proto::random::bytes(1)[0]]);
    let query = query_message(id, name, qtype).ok_or(DnsError::Malformed)?;
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let unreachable = |e: std::io::Error| DnsError::Unreachable(e.to_string());
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(unreachable)?;
    socket.connect(server).await.map_err(unreachable)?;
    socket.send(&query).await.map_err(unreachable)?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(timeout, socket.recv(&mut buf))
        .await
        .map_err(|_| DnsError::Unreachable("timed out".into()))?
        .map_err(unreachable)?;
    buf.truncate(n);
    Ok((buf, id))
}

/// The TXT records of `name` according to `server`.
pub async fn txt(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    let (reply, id) = query(server, name, TXT, timeout).await?;
    parse_txt(&reply, id)
}

/// The IPv4 then the IPv6 addresses of `name` according to `server` (both queries at once); an
/// error only when both lookups fail.
pub async fn addresses(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let lookup = |qtype| async move {
        let (reply, id) = query(server, name, qtype, timeout).await?;
        parse_addresses(&reply, id, qtype)
    };
    match tokio::join!(lookup(A), lookup(AAAA)) {
        (Err(e), Err(_)) => Err(e),
        (v4, v6) => Ok(v4
            .unwrap_or_default()
            .into_iter()
            .chain(v6.unwrap_or_default())
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply to a TXT query for `_acme-challenge.a.test` with two records, the second split
    /// into two character-strings, using a compression pointer for the answer names.
    fn reply(id: u16) -> Vec<u8> {
        let mut m = query_message(id, "_acme-challenge.a.test", TXT).unwrap();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 2;
        for parts in [&["abc"][..], &["de", "f"][..]] {
            m.extend_from_slice(&[0xC0, 12]);
            m.extend_from_slice(&TXT.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            let rdata: Vec<u8> = parts
                .iter()
                .flat_map(|p| std::iter::once(p.len() as u8).chain(p.bytes()))
                .collect();
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        m
    }

    #[test]
    fn replies_are_read_and_checked() {
        assert_eq!(parse_txt(&reply(7), 7).unwrap(), vec!["abc", "def"]);
        assert_eq!(
            parse_txt(&reply(7), 8),
            Err(DnsError::Malformed),
            "wrong id"
        );
        let mut nx = reply(7);
        nx[3] = 0x83;
        assert_eq!(parse_txt(&nx, 7).unwrap(), Vec::<String>::new());
        let mut servfail = reply(7);
        servfail[3] = 0x82;
        assert_eq!(parse_txt(&servfail, 7), Err(DnsError::Rcode(2)));
        assert_eq!(parse_txt(&reply(7)[..20], 7), Err(DnsError::Malformed));
    }

    /// A reply to a `qtype` query for `a.test`: a CNAME (skipped), then `records`.
    fn address_reply(id: u16, qtype: u16, records: &[&[u8]]) -> Vec<u8> {
        let mut m = query_message(id, "a.test", qtype).unwrap();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = records.len() as u8 + 1;
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
        for rdata in records {
            m.extend_from_slice(&[0xC0, 12]);
            m.extend_from_slice(&qtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        }
        m
    }

    #[test]
    fn address_replies_are_read() {
        let v4 = address_reply(9, A, &[&[127, 0, 0, 1], &[10, 0, 0, 1]]);
        assert_eq!(
            parse_addresses(&v4, 9, A).unwrap(),
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
            ]
        );
        let v6 = address_reply(9, AAAA, &[&Ipv6Addr::LOCALHOST.octets()]);
        assert_eq!(
            parse_addresses(&v6, 9, AAAA).unwrap(),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        let short = address_reply(9, A, &[&[1, 2, 3]]);
        assert_eq!(parse_addresses(&short, 9, A), Err(DnsError::Malformed));
    }
}
