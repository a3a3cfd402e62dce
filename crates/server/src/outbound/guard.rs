//! The SSRF guard's rules: which destinations an outbound request may reach.
//!
//! Push endpoints and link-preview URLs come from users and webhook URLs from operators,
//! so without a guard a user could make the server fetch `http://169.254.169.254/` or a
//! service on its loopback (Synapse's CVE-2021-21392). The check happens where the
//! address is known:
//! - IP-literal URLs (which never reach a resolver) are checked before the request and
//!   on every redirect hop, by the redirect policy;
//! - host names are checked after DNS resolution, by the client's resolver, so a name
//!   that resolves (or re-resolves, DNS rebinding) to an internal address is refused at
//!   connection time, including names reached through a redirect;
//! - proxies from the environment are ignored, since a proxy would resolve names itself
//!   (`Outbound`, in `mod.rs`).
//!
//! An allow-list (`push.outbound_allow`, `link_previews.outbound_allow`) exempts CIDRs,
//! addresses or host names (tests, private deployments). Each caller also says what else
//! its destinations must be (`Rules`): push and webhooks accept plain `http` only for
//! destinations on their list; link previews accept `http` anywhere but only the default
//! ports, so the server cannot be used to knock on arbitrary ports of public hosts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// How long a look-up made only to vet a destination may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a destination is not acceptable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    #[error("invalid outbound_allow entry {0:?} (expected a CIDR, an address or a host name)")]
    BadEntry(String),
    #[error("not an http(s) URL: {0}")]
    BadUrl(String),
    #[error("destination refused: {0}")]
    Refused(String),
}

/// Destinations exempt from the guard.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    nets: Vec<IpNet>,
    /// Lowercase, without a trailing dot.
    hosts: Vec<String>,
}

impl AllowList {
    /// Parses `push.outbound_allow`: CIDRs, single addresses (IPv6 with or without
    /// brackets) and host names.
    pub fn parse(entries: &[String]) -> Result<Self, GuardError> {
        let mut list = AllowList::default();
        for entry in entries {
            let e = entry.trim();
            let bare = e.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = e.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if is_host_name(e) {
                list.hosts
                    .push(e.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(GuardError::BadEntry(entry.clone()));
            }
        }
        Ok(list)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.')
            .filter(|l| !l.is_empty())
            .all(|l| l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// True for addresses a public service never has: loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast and reserved. An IPv6 address
/// that stands for an IPv4 one (IPv4-mapped, IPv4-translated, NAT64) is judged by that
/// IPv4 address, so `::ffff:0:7f00:1` is loopback and `64:ff9b::808:808` is public;
/// other forms that embed or tunnel IPv4 (IPv4-compatible, 6to4, Teredo, local-use
/// NAT64) are refused whole, since they could smuggle an internal IPv4 address past a
/// v4-only check.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => embedded_v4(v6).map_or_else(|| v6_internal(v6), v4_internal),
    }
}

/// The IPv4 address an IPv6 address is a translation of, where the prefix says where it
/// sits: IPv4-mapped `::ffff:0:0/96` (RFC 4291), IPv4-translated `::ffff:0:0:0/96`
/// (RFC 2765) and the NAT64 well-known prefix `64:ff9b::/96` (RFC 6052). A connection to
/// any of them reaches that IPv4 host (through the kernel or a NAT64 gateway).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = || Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));
    match s[..6] {
        [0, 0, 0, 0, 0, 0xffff] | [0, 0, 0, 0, 0xffff, 0] | [0x64, 0xff9b, 0, 0, 0, 0] => {
            Some(v4())
        }
        _ => None,
    }
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                    // 0.0.0.0/8 "this network"
        || ip.is_loopback()                   // 127.0.0.0/8
        || ip.is_private()                    // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()                 // 169.254/16 (cloud metadata)
        || (a == 100 && (b & 0xc0) == 64)     // 100.64/10 shared address space
        || (a == 192 && b == 0 && c == 0)     // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 198 && (b & 0xfe) == 18)     // 198.18/15 benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    s[..6] == [0; 6]                           // ::/96: unspecified, loopback, IPv4-compatible
        || (s[0] == 0x64 && s[1] == 0xff9b)    // 64:ff9b:1::/48 local-use NAT64 (the /96 is judged by its IPv4)
        || (s[0] == 0x100 && s[1..4] == [0; 3]) // 100::/64 discard
        || (s[0] == 0x2001 && s[1] < 0x200)    // 2001::/23 IETF (Teredo 2001::/32, ORCHID, benchmarking)
        || (s[0] == 0x2001 && s[1] == 0xdb8)   // documentation
        || s[0] == 0x2002                      // 6to4
        || (s[0] & 0xfe00) == 0xfc00           // unique local
        || (s[0] & 0xffc0) == 0xfe80           // link-local
        || (s[0] & 0xffc0) == 0xfec0           // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

/// What a caller's destinations must be, besides not internal. Destinations on the
/// allow-list are exempt from both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Plain `http` is refused.
    pub https_only: bool,
    /// Only a scheme's default port (80, 443) may be named.
    pub default_ports_only: bool,
    /// Most redirects followed for one request, each checked again.
    pub max_redirects: usize,
}

impl Rules {
    /// Push services and webhooks: HTTPS to any port; five redirects.
    pub const NOTIFICATIONS: Rules = Rules {
        https_only: true,
        default_ports_only: false,
        max_redirects: 5,
    };
}

/// The rules, shared by the resolver, the redirect policy and the callers.
#[derive(Debug)]
pub struct Guard {
    allow: AllowList,
    rules: Rules,
}

impl Guard {
    pub fn new(allow: AllowList, rules: Rules) -> Self {
        Self { allow, rules }
    }

    /// What the destinations must be.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Whether the client may connect to `ip` for `host` (the name it was resolved from).
    fn permits(&self, host: Option<&str>, ip: IpAddr) -> bool {
        host.is_some_and(|h| self.allow.allows_host(h))
            || self.allow.allows_ip(ip)
            || !is_internal(ip)
    }

    /// Checks what can be checked without DNS: scheme, an IP-literal host, and (for a
    /// destination not on the allow-list) the caller's `Rules`.
    pub fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        let allowed = match url.host() {
            Some(Host::Ipv4(ip)) => {
                let ip = IpAddr::V4(ip);
                if !self.permits(None, ip) {
                    return Err(GuardError::Refused(format!("{ip} is an internal address")));
                }
                self.allow.allows_ip(ip)
            }
            Some(Host::Ipv6(ip)) => {
                let ip = IpAddr::V6(ip);
                if !self.permits(None, ip) {
                    return Err(GuardError::Refused(format!("{ip} is an internal address")));
                }
                self.allow.allows_ip(ip)
            }
            Some(Host::Domain(name)) => self.allow.allows_host(name),
            None => return Err(GuardError::BadUrl(url.to_string())),
        };
        match url.scheme() {
            "https" => {}
            "http" if allowed || !self.rules.https_only => {}
            "http" => {
                return Err(GuardError::Refused(
                    "plain http is accepted only for destinations on the outbound allow-list"
                        .into(),
                ));
            }
            _ => return Err(GuardError::BadUrl(url.to_string())),
        }
        // `port()` is `None` for the scheme's default port, however it was written.
        if let Some(port) = url.port()
            && self.rules.default_ports_only
            && !allowed
        {
            return Err(GuardError::Refused(format!(
                "port {port}: only the default ports are accepted"
            )));
        }
        Ok(())
    }

    /// `check_url`, then for a host name its addresses now: refused when every one of
    /// them is internal. A name that does not resolve (in `LOOKUP_TIMEOUT`) passes: it is
    /// checked again at every connection.
    pub async fn check_destination(&self, url: &Url) -> Result<(), GuardError> {
        self.check_url(url)?;
        if let Some(Host::Domain(name)) = url.host()
            && !self.allow.allows_host(name)
            && let Ok(Ok(addrs)) =
                tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, 0))).await
        {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if !addrs.is_empty() && !addrs.iter().any(|a| self.permits(Some(name), a.ip())) {
                return Err(GuardError::Refused(format!(
                    "{name} resolves only to internal addresses"
                )));
            }
        }
        Ok(())
    }
}

/// The resolver of the guarded client: resolves with the system resolver and keeps only
/// the addresses the guard permits.
pub(super) struct GuardedResolver(pub(super) Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = addrs
                .filter(|a| guard.permits(Some(&host), a.ip()))
                .collect();
            if permitted.is_empty() {
                let err =
                    GuardError::Refused(format!("{host} resolves only to internal addresses"));
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(s: &str) -> bool {
        is_internal(s.parse().expect("ip"))
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(internal(ip), "{ip} should be internal");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(!internal(ip), "{ip} should be public");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_are_judged_by_the_ipv4_address() {
        // IPv4-mapped (::ffff:0:0/96), IPv4-translated (::ffff:0:0:0/96) and NAT64
        // (64:ff9b::/96): each reaches the IPv4 host it embeds.
        for v4 in [
            "127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.168.1.1",
            "224.0.0.1",
        ] {
            let [a, b, c, d] = v4.parse::<Ipv4Addr>().expect("ip").octets();
            let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            for v6 in [
                format!("::ffff:{v4}"),
                format!("::ffff:0:{hi:x}:{lo:x}"),
                format!("64:ff9b::{hi:x}:{lo:x}"),
            ] {
                assert!(internal(&v6), "{v6} is {v4}, internal");
            }
        }
        for v6 in ["::ffff:8.8.8.8", "::ffff:0:808:808", "64:ff9b::808:808"] {
            assert!(!internal(v6), "{v6} is 8.8.8.8, public");
        }
        // Other forms that embed IPv4 stay refused whatever they carry.
        for v6 in [
            "::8.8.8.8",
            "64:ff9b:1::808:808",
            "2002:808:808::",
            "2001:0:808:808::",
        ] {
            assert!(internal(v6), "{v6} should be internal");
        }
    }

    #[test]
    fn allow_list_entries_parse() {
        let list = AllowList::parse(&[
            "127.0.0.1".into(),
            "10.0.0.0/8".into(),
            "[::1]".into(),
            "Push.Internal.".into(),
        ])
        .expect("parse");
        assert!(list.allows_ip("127.0.0.1".parse().expect("ip")));
        assert!(list.allows_ip("10.9.8.7".parse().expect("ip")));
        assert!(list.allows_ip("::1".parse().expect("ip")));
        assert!(!list.allows_ip("127.0.0.2".parse().expect("ip")));
        assert!(list.allows_host("push.internal"));
        assert!(AllowList::parse(&["not a host!".into()]).is_err());
        assert!(AllowList::parse(&["10.0.0.0/99".into()]).is_err());
    }

    #[test]
    fn urls_are_checked_before_dns() {
        let guard = Guard::new(
            AllowList::parse(&["127.0.0.1".into()]).expect("parse"),
            Rules::NOTIFICATIONS,
        );
        let check = |u: &str| guard.check_url(&Url::parse(u).expect("url"));
        assert!(check("http://127.0.0.1:9000/x").is_ok());
        assert!(check("https://push.example.com/x").is_ok());
        assert!(matches!(
            check("http://push.example.com/x"),
            Err(GuardError::Refused(_))
        ));
        assert!(matches!(
            check("https://127.0.0.2/"),
            Err(GuardError::Refused(_))
        ));
        assert!(matches!(
            check("https://[::ffff:127.0.0.1]/"),
            Err(GuardError::Refused(_))
        ));
        for literal in ["[::ffff:0:7f00:1]", "[64:ff9b::a9fe:a9fe]"] {
            assert!(
                matches!(
                    check(&format!("https://{literal}/")),
                    Err(GuardError::Refused(_))
                ),
                "{literal}"
            );
        }
        assert!(check("https://[64:ff9b::808:808]/").is_ok());
        assert!(matches!(
            check("https://0x7f000002/"),
            Err(GuardError::Refused(_))
        ));
        assert!(matches!(
            check("ftp://push.example.com/"),
            Err(GuardError::BadUrl(_))
        ));
    }

    #[test]
    fn rules_say_what_else_a_destination_must_be() {
        let pages = Rules {
            https_only: false,
            default_ports_only: true,
            max_redirects: 3,
        };
        let guard = Guard::new(
            AllowList::parse(&["127.0.0.1".into()]).expect("parse"),
            pages,
        );
        let check = |u: &str| guard.check_url(&Url::parse(u).expect("url"));
        // Plain http anywhere public, on the default ports only (however spelt).
        assert!(check("http://example.com/a").is_ok());
        assert!(check("http://example.com:80/a").is_ok());
        assert!(check("https://example.com:443/a").is_ok());
        for url in [
            "http://example.com:8080/",
            "https://example.com:25/",
            "http://8.8.8.8:6379/",
        ] {
            assert!(matches!(check(url), Err(GuardError::Refused(_))), "{url}");
        }
        // The allow-list exempts from the rules, never from the address check.
        assert!(check("http://127.0.0.1:9000/").is_ok());
        assert!(matches!(
            check("http://127.0.0.2/"),
            Err(GuardError::Refused(_))
        ));
        assert!(matches!(
            check("http://[::1]/"),
            Err(GuardError::Refused(_))
        ));
    }
}
