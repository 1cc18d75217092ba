//! A minimal DNS client for dns-01 (RFC 1035 over UDP): one TXT query to one server, answers
//! read with name compression, a random query id checked on the reply. Enough to ask a
//! recursive resolver (or a test DNS server) for `_acme-challenge.<name>` without a resolver
//! library.

use std::net::SocketAddr;
use std::time::Duration;

/// Record type TXT.
const TXT: u16 = 16;

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

/// The TXT strings of a reply (each record's character-strings concatenated).
fn parse_txt(msg: &[u8], id: u16) -> Result<Vec<String>, DnsError> {
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
        if rtype != TXT {
            continue;
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < rdata.len() {
            let len = usize::from(rdata[i]);
            text.extend_from_slice(rdata.get(i + 1..i + 1 + len).ok_or(bad.clone())?);
            i += 1 + len;
        }
        out.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(out)
}

/// The TXT records of `name` according to `server`.
pub async fn txt(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    let id = u16::from_be_bytes([proto::random::bytes(1)[0], proto::random::bytes(1)[0]]);
    let query = query_message(id, name, TXT).ok_or(DnsError::Malformed)?;
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
    parse_txt(&buf[..n], id)
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
}
