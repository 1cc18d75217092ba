//! Which addresses standard validation may connect to. http-01 and tls-alpn-01 connect where an
//! account points them (an `ip` identifier, or what a `dns` name resolves to), so without a
//! policy any account could make this server connect into its own network — loopback, RFC 1918
//! hosts, a cloud metadata service at 169.254.169.254 — and read from the challenge's outcome
//! what is there.
//!
//! Refused unless `[validation] allowed_networks` names them: "this network" 0/8 (with the
//! unspecified 0.0.0.0), private 10/8, 172.16/12, 192.168/16, shared CGNAT 100.64/10, loopback
//! 127/8, link-local 169.254/16, IETF protocol assignments 192.0.0/24, documentation 192.0.2/24,
//! 198.51.100/24, 203.0.113/24, the 6to4 relay anycast 192.88.99/24, benchmarking 198.18/15,
//! multicast 224/4, reserved 240/4 with the broadcast address; in IPv6 everything outside global
//! unicast 2000::/3 (unspecified, loopback, IPv4-compatible ::/96, discard 100::/64, ULA
//! fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, local NAT64
//! 64:ff9b:1::/48, ...) and inside it IETF protocol assignments 2001::/23 (Teredo, benchmarking),
//! documentation 2001:db8::/32 and 3fff::/20. IPv4-mapped addresses (::ffff:a.b.c.d) are judged
//! as the IPv4 address they reach; the NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of a
//! refused IPv4 address are refused too.
//!
//! The registration authority applies the policy to `ip` identifiers at newOrder; the validation
//! authority applies it again to every address before connecting (configuration may have
//! changed since the order), including the addresses a name resolves to and `resolve_to`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

/// The detail of every refusal: the same whatever is (or is not) at the address.
pub const REFUSED: &str = "this CA does not connect to loopback, private, link-local, multicast, \
     reserved or other special-purpose addresses";

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; an address alone is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(first: u16, second: u16, prefix: u8) -> Self {
        Self {
            addr: IpAddr::V6(Ipv6Addr::new(first, second, 0, 0, 0, 0, 0, 0)),
            prefix,
        }
    }

    /// Whether `ip` (of the same family) lies in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP network (address/prefix)");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// Refused IPv4 networks.
const REFUSED_V4: [Network; 15] = [
    Network::v4(0, 0, 0, 0, 8),
    Network::v4(10, 0, 0, 0, 8),
    Network::v4(100, 64, 0, 0, 10),
    Network::v4(127, 0, 0, 0, 8),
    Network::v4(169, 254, 0, 0, 16),
    Network::v4(172, 16, 0, 0, 12),
    Network::v4(192, 0, 0, 0, 24),
    Network::v4(192, 0, 2, 0, 24),
    Network::v4(192, 88, 99, 0, 24),
    Network::v4(192, 168, 0, 0, 16),
    Network::v4(198, 18, 0, 0, 15),
    Network::v4(198, 51, 100, 0, 24),
    Network::v4(203, 0, 113, 0, 24),
    Network::v4(224, 0, 0, 0, 4),
    Network::v4(240, 0, 0, 0, 4),
];

/// The only IPv6 addresses admitted: global unicast...
const GLOBAL_UNICAST: Network = Network::v6(0x2000, 0, 3);
/// ...but not these parts of it.
const REFUSED_V6: [Network; 3] = [
    Network::v6(0x2001, 0, 23),
    Network::v6(0x2001, 0x0db8, 32),
    Network::v6(0x3fff, 0, 20),
];
/// NAT64 (RFC 6052 well-known prefix): the IPv4 address is the last 32 bits.
const NAT64: Network = Network::v6(0x0064, 0xff9b, 96);
/// 6to4 (RFC 3056): the IPv4 address follows the 16-bit prefix.
const SIX_TO_FOUR: Network = Network::v6(0x2002, 0, 16);

/// The IPv4 address a NAT64 or 6to4 address leads to.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let ip = IpAddr::V6(v6);
    let at = |shift: u32| {
        u32::try_from((bits >> shift) & 0xffff_ffff)
            .ok()
            .map(Ipv4Addr::from)
    };
    if NAT64.contains(ip) {
        at(0)
    } else if SIX_TO_FOUR.contains(ip) {
        at(80)
    } else {
        None
    }
}

/// Whether `ip` is in a special-purpose range validation never connects to by default.
fn special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => REFUSED_V4.iter().any(|n| n.contains(ip)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) if special(IpAddr::V4(v4)) => true,
            Some(_) if NAT64.contains(ip) => false,
            _ => !GLOBAL_UNICAST.contains(ip) || REFUSED_V6.iter().any(|n| n.contains(ip)),
        },
    }
}

/// The address policy of validation: special-purpose ranges refused, `allowed_networks` admitted.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<Network>,
}

impl AddressPolicy {
    /// The default policy with `allowed` admitted on top.
    pub fn new(allowed: &[Network]) -> Self {
        Self {
            allowed: allowed.to_vec(),
        }
    }

    /// Whether validation may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped address reaches the IPv4 address: it is judged as that.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|n| n.contains(ip)) || !special(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_refused_and_public_addresses_admitted() {
        let policy = AddressPolicy::default();
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::7f00:1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused}");
        }
        for admitted in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "198.17.255.255",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
        ] {
            assert!(policy.permits(ip(admitted)), "{admitted}");
        }
    }

    #[test]
    fn allowed_networks_admit_exactly_what_they_name() {
        let networks: Vec<Network> = ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let policy = AddressPolicy::new(&networks);
        for admitted in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
        ] {
            assert!(policy.permits(ip(admitted)), "{admitted}");
        }
        for refused in ["10.2.0.1", "::2", "169.254.169.254", "64:ff9b::7f00:1"] {
            assert!(!policy.permits(ip(refused)), "{refused}");
        }
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "localhost",
            "1.2.3.4/x",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        assert!(
            "0.0.0.0/0"
                .parse::<Network>()
                .unwrap()
                .contains(ip("1.2.3.4"))
        );
    }
}
