//! The NASes allowed to talk to the agent: an address range, the shared
//! secret and the dynamic authorization port Disconnect-Requests go to.

use std::net::IpAddr;

use crate::Error;

/// An address range, `10.0.0.0/8`, `::1/128` or a bare address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR[/PREFIX]`.
    ///
    /// # Errors
    /// [`Error::Radius`] for an address or prefix that does not parse.
    pub fn parse(s: &str) -> Result<Cidr, Error> {
        let bad = || Error::Radius(format!("{s:?} is not an address range (ADDR/PREFIX)"));
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One NAS range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The addresses requests may come from.
    pub net: Cidr,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// The NAS's dynamic authorization (Disconnect-Request) port.
    pub dynauth_port: u16,
    /// Drop Access-Requests without a Message-Authenticator (RFC 3579;
    /// the BlastRADIUS advice).
    pub require_message_authenticator: bool,
}

/// The first client whose range holds `ip`.
#[must_use]
pub fn find(clients: &[Client], ip: IpAddr) -> Option<&Client> {
    clients.iter().find(|c| c.net.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1/33").is_err());
        assert!(Cidr::parse("host/8").is_err());
    }
}
