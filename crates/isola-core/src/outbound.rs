//! Outbound `fetch()`: what a tenant may reach, and the contract between
//! the runtime and the host that makes the requests.
//!
//! The runtime never opens a socket. `fetch()` in a tenant becomes an
//! [`OutboundRequest`] handed to the host's [`Outbound`] (isola-server's
//! HTTP client, in-process with threads, in the supervisor with worker
//! processes); the invocation polls the [`OutboundCall`] on each turn of its
//! event loop. The host checks every request and every redirect hop against
//! the tenant's [`FetchPolicy`] *after* DNS resolution ([`FetchPolicy::check`]),
//! so a name that resolves to a private address is refused like the address.
//!
//! Deny by default: a tenant with an empty `allow` list cannot fetch at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

/// A tenant's outbound `fetch()` settings (`fetch` in the tenant settings).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FetchPolicy {
    /// Hosts the tenant may fetch from, over http or https: `api.example.com`
    /// (any port), `api.example.com:8443`, `*.example.com` (subdomains, not
    /// the domain itself), an IP address (`203.0.113.7`, `[2001:db8::1]:8080`).
    /// Empty (the default): `fetch()` is refused.
    pub allow: Vec<String>,
    /// Whether a host name in `allow` may resolve to a loopback, private,
    /// link-local or otherwise non-public address. An IP address written in
    /// `allow` is always an explicit permission for that address.
    pub allow_private: bool,
    /// Subrequests one invocation may make (redirect hops not counted).
    pub max_subrequests: u32,
    /// Largest response body one subrequest may return (bytes); it also
    /// counts in the tenant's ArrayBuffer budget once it reaches the tenant.
    pub max_response_bytes: u64,
    /// Time one subrequest may take, redirects included (milliseconds); the
    /// invocation's wall-time limit bounds it too.
    pub timeout_ms: u64,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow: Vec::new(),
            allow_private: false,
            max_subrequests: 50,
            max_response_bytes: 16 << 20,
            timeout_ms: 30_000,
        }
    }
}

/// Most entries in `fetch.allow`.
pub const MAX_ALLOW_ENTRIES: usize = 64;
/// Largest `fetch.max_subrequests`.
pub const MAX_SUBREQUESTS: u32 = 1000;
/// Largest `fetch.max_response_bytes`: 1 GiB.
pub const MAX_RESPONSE_BYTES: u64 = 1 << 30;
/// Largest `fetch.timeout_ms`: 5 minutes.
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// Redirects followed by one subrequest (the Fetch standard's bound is 20).
pub const MAX_REDIRECTS: usize = 10;

/// A `fetch` setting out of bounds: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchPolicyError {
    /// JSON path below `fetch` (`allow`, `max_subrequests`, ...).
    pub field: &'static str,
    /// What is wrong, with the bound.
    pub message: String,
}

/// One parsed `allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// An exact host name, or (with `subdomains`) any name below it.
    Name { name: String, subdomains: bool },
    /// An IP address.
    Ip(IpAddr),
}

fn parse_entry(entry: &str) -> Result<(Pattern, Option<u16>), String> {
    let e = entry.trim().to_ascii_lowercase();
    if e.is_empty() || e.len() > 260 {
        return Err("an entry must be 1-260 characters".into());
    }
    // "[v6]" or "[v6]:port"
    if let Some(rest) = e.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or("unclosed '['")?;
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("{addr} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(parse_port(
                p.strip_prefix(':').ok_or("expected :port after ']'")?,
            )?),
        };
        return Ok((Pattern::Ip(IpAddr::V6(ip)), port));
    }
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Ok((Pattern::Ip(ip), None));
    }
    let (host, port) = match e.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(p)?)),
        None => (e.as_str(), None),
    };
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((Pattern::Ip(IpAddr::V4(ip)), port));
    }
    let (name, subdomains) = match host.strip_prefix("*.") {
        Some(n) => (n, true),
        None => (host, false),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "\"{host}\" is not a host name, *.domain or IP address"
        ));
    }
    Ok((
        Pattern::Name {
            name: name.to_string(),
            subdomains,
        },
        port,
    ))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("\"{p}\" is not a port (1-65535)")),
    }
}

/// Why a request or an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The host is not in `allow`.
    #[error("fetch to {0} is not allowed: the host is not in the tenant's fetch.allow list")]
    Host(String),
    /// The address is loopback, private, link-local or otherwise not public.
    #[error("fetch to {host} is not allowed: it resolves to {ip}, a non-public address (allow it explicitly by IP address in fetch.allow, or set fetch.allow_private)")]
    Private {
        /// The host as requested.
        host: String,
        /// The address it resolved to.
        ip: IpAddr,
    },
    /// Not http or https.
    #[error("fetch: the scheme {0}: is not supported (http and https only)")]
    Scheme(String),
}

/// What matched a host: whether an IP-literal entry named this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    explicit_ip: Option<IpAddr>,
}

impl FetchPolicy {
    /// Checks the bounds and the shape of every entry.
    pub fn validate(&self) -> Result<(), FetchPolicyError> {
        if self.allow.len() > MAX_ALLOW_ENTRIES {
            return Err(FetchPolicyError {
                field: "allow",
                message: format!(
                    "{} entries; fetch.allow holds at most {MAX_ALLOW_ENTRIES}",
                    self.allow.len()
                ),
            });
        }
        for entry in &self.allow {
            let shown: String = entry.chars().take(80).collect();
            parse_entry(entry).map_err(|m| FetchPolicyError {
                field: "allow",
                message: format!("fetch.allow entry \"{shown}\": {m}"),
            })?;
        }
        let bounds: [(&'static str, u64, u64, u64); 3] = [
            (
                "max_subrequests",
                self.max_subrequests.into(),
                0,
                MAX_SUBREQUESTS.into(),
            ),
            (
                "max_response_bytes",
                self.max_response_bytes,
                0,
                MAX_RESPONSE_BYTES,
            ),
            ("timeout_ms", self.timeout_ms, 1, MAX_TIMEOUT_MS),
        ];
        for (field, v, min, max) in bounds {
            if v < min || v > max {
                return Err(FetchPolicyError {
                    field,
                    message: format!("fetch.{field} is {v}; it must be between {min} and {max}"),
                });
            }
        }
        Ok(())
    }

    /// Whether `url`'s scheme and host are allowed (before resolution).
    pub fn allows_url(&self, url: &url::Url) -> Result<Matched, Denied> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(Denied::Scheme(scheme.to_string()));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        let (name, ip) = match url.host() {
            Some(url::Host::Domain(d)) => {
                (Some(d.trim_end_matches('.').to_ascii_lowercase()), None)
            }
            Some(url::Host::Ipv4(a)) => (None, Some(IpAddr::V4(a))),
            Some(url::Host::Ipv6(a)) => (None, Some(IpAddr::V6(a))),
            None => return Err(Denied::Host(String::new())),
        };
        let shown = || match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        for entry in &self.allow {
            let Ok((pattern, want_port)) = parse_entry(entry) else {
                continue;
            };
            if want_port.is_some_and(|p| p != port) {
                continue;
            }
            match (&pattern, &name, ip) {
                (
                    Pattern::Name {
                        name: n,
                        subdomains,
                    },
                    Some(host),
                    _,
                ) => {
                    let hit = if *subdomains {
                        host.len() > n.len()
                            && host.ends_with(n.as_str())
                            && host.as_bytes()[host.len() - n.len() - 1] == b'.'
                    } else {
                        host == n
                    };
                    if hit {
                        return Ok(Matched { explicit_ip: None });
                    }
                }
                (Pattern::Ip(a), None, Some(b)) if canonical(*a) == canonical(b) => {
                    return Ok(Matched {
                        explicit_ip: Some(canonical(b)),
                    });
                }
                _ => {}
            }
        }
        Err(Denied::Host(shown()))
    }

    /// Whether a connection to `ip` (what the host of `url` resolved to) is
    /// allowed, given what matched the host.
    pub fn allows_ip(&self, host: &str, matched: Matched, ip: IpAddr) -> Result<(), Denied> {
        let ip = canonical(ip);
        if is_public(ip) || self.allow_private || matched.explicit_ip == Some(ip) {
            Ok(())
        } else {
            Err(Denied::Private {
                host: host.to_string(),
                ip,
            })
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, shared (CGNAT), unspecified, broadcast, multicast, reserved,
/// documentation or benchmarking space, and no IPv6 form that embeds such an
/// IPv4 address (mapped, compatible, NAT64, 6to4) or is not global (unique
/// local, site-local, Teredo).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => {
            let s = a.segments();
            if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
                return false;
            }
            let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
            match s[0] {
                0 => {
                    // ::/96 (IPv4-compatible, deprecated) and other ::/16 space.
                    false
                }
                0x64 if s[1] == 0xff9b => is_public_v4(embedded(s[6], s[7])),
                0x2002 => is_public_v4(embedded(s[1], s[2])),
                0x2001 if s[1] == 0 => false,       // Teredo
                0x2001 if s[1] == 0x0db8 => false,  // documentation
                x if x & 0xfe00 == 0xfc00 => false, // unique local fc00::/7
                x if x & 0xffc0 == 0xfe80 => false, // link-local fe80::/10
                x if x & 0xffc0 == 0xfec0 => false, // site-local fec0::/10
                x => x & 0xe000 == 0x2000,          // global unicast 2000::/3
            }
        }
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_unspecified()
        || o[0] == 0
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 shared (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || o[0] >= 240) // reserved
}

/// Bytes a subrequest holds on the tenant's behalf (its body copies, the
/// response being collected) are charged to a budget: the tenant's
/// ArrayBuffer budget in the runtime, a worker's share in the supervisor.
pub trait ByteBudget: Send + Sync {
    /// Charges `n` bytes if they fit.
    fn reserve(&self, n: usize) -> bool;
    /// Returns `n` charged bytes.
    fn release(&self, n: usize);
}

/// Bytes charged to a [`ByteBudget`], returned when dropped.
pub struct Reservation {
    budget: Arc<dyn ByteBudget>,
    bytes: usize,
}

impl Reservation {
    /// An empty reservation against `budget`.
    pub fn new(budget: Arc<dyn ByteBudget>) -> Reservation {
        Reservation { budget, bytes: 0 }
    }

    /// Charges `n` more bytes; `false` (nothing charged) if they do not fit.
    pub fn grow(&mut self, n: usize) -> bool {
        if self.budget.reserve(n) {
            self.bytes += n;
            true
        } else {
            false
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({} bytes)", self.bytes)
    }
}

/// One subrequest, as the tenant made it (already capped by the runtime).
pub struct OutboundRequest {
    /// The tenant's name (for logs and metrics).
    pub tenant: String,
    /// Upper-case method.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Header lines as the tenant set them.
    pub headers: Vec<(String, String)>,
    /// The request body (empty: none).
    pub body: Vec<u8>,
    /// `redirect: "follow"` (true) or `"manual"` (false); `"error"` is
    /// handled by the runtime from a 3xx response.
    pub follow_redirects: bool,
    /// The tenant's policy.
    pub policy: Arc<FetchPolicy>,
    /// How long the host may take (the policy's timeout, or what is left of
    /// the invocation's wall time if less).
    pub timeout: Duration,
    /// Largest body the host may collect (bytes).
    pub max_body_bytes: usize,
    /// Where the response bytes the host collects are charged as they
    /// arrive (the request body is charged already, by whoever copied it).
    pub budget: Arc<dyn ByteBudget>,
    /// The charge of the request body; returned when the request is dropped.
    pub body_charge: Option<Reservation>,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("tenant", &self.tenant)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A response to an [`OutboundRequest`].
#[derive(Debug, Default)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// The reason phrase, if any.
    pub status_text: String,
    /// The URL of the last hop.
    pub url: String,
    /// Whether a redirect was followed.
    pub redirected: bool,
    /// Header lines.
    pub headers: Vec<(String, String)>,
    /// The whole body (at most the request's `max_body_bytes`).
    pub body: Vec<u8>,
    /// The charge of `body`, held until the runtime has copied it into the
    /// tenant's heap (where it is counted again).
    pub body_charge: Option<Reservation>,
}

/// Where a subrequest stands.
#[derive(Debug)]
pub enum OutboundPoll {
    /// Not finished yet.
    Pending,
    /// Finished: a response, or a message for the tenant's `TypeError`.
    Done(Result<OutboundResponse, String>),
}

/// A subrequest in flight. Dropping it abandons the request.
pub trait OutboundCall: Send {
    /// Non-blocking: where the subrequest stands.
    fn poll(&mut self) -> OutboundPoll;
}

/// The host's HTTP client for tenants' `fetch()`.
pub trait Outbound: Send + Sync {
    /// Starts `req` in the background. The host must enforce
    /// `req.policy` on the first hop and every redirect after resolving the
    /// host, `req.timeout` and `req.max_body_bytes`.
    fn start(&self, req: OutboundRequest) -> Box<dyn OutboundCall>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> FetchPolicy {
        FetchPolicy {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            ..FetchPolicy::default()
        }
    }

    fn check(p: &FetchPolicy, url: &str) -> Result<Matched, Denied> {
        p.allows_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn hosts_match_names_subdomains_ports_and_addresses() {
        let p = policy(&[
            "api.example.com",
            "*.example.org",
            "svc.test:8443",
            "127.0.0.1:9000",
            "[::1]",
        ]);
        assert!(check(&p, "https://api.example.com/x").is_ok());
        assert!(check(&p, "http://API.EXAMPLE.COM./x").is_ok());
        assert!(check(&p, "https://a.b.example.org/").is_ok());
        assert!(
            check(&p, "https://example.org/").is_err(),
            "*.d is not d itself"
        );
        assert!(check(&p, "https://badexample.org/").is_err());
        assert!(check(&p, "https://svc.test:8443/").is_ok());
        assert!(
            check(&p, "https://svc.test/").is_err(),
            "port 443 is not 8443"
        );
        assert!(check(&p, "http://127.0.0.1:9000/").is_ok());
        assert!(check(&p, "http://127.0.0.1:9001/").is_err());
        assert!(check(&p, "http://[::1]:5/").is_ok());
        assert!(check(&p, "http://api.example.com.evil.net/").is_err());
        assert!(matches!(
            check(&p, "ftp://api.example.com/"),
            Err(Denied::Scheme(_))
        ));
        assert!(check(&policy(&[]), "https://api.example.com/").is_err());
    }

    #[test]
    fn private_addresses_need_an_explicit_permission() {
        let p = policy(&["internal.test", "10.0.0.5"]);
        let by_name = check(&p, "http://internal.test/").unwrap();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(
                p.allows_ip("internal.test", by_name, ip).is_err(),
                "{ip} must be refused"
            );
        }
        assert!(p
            .allows_ip("internal.test", by_name, "93.184.216.34".parse().unwrap())
            .is_ok());
        assert!(p
            .allows_ip(
                "internal.test",
                by_name,
                "2606:2800:220:1::1".parse().unwrap()
            )
            .is_ok());
        let by_ip = check(&p, "http://10.0.0.5/").unwrap();
        assert!(p
            .allows_ip("10.0.0.5", by_ip, "10.0.0.5".parse().unwrap())
            .is_ok());
        let open = FetchPolicy {
            allow_private: true,
            ..p.clone()
        };
        assert!(open
            .allows_ip("internal.test", by_name, "10.1.2.3".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn settings_are_validated_with_the_field_named() {
        assert!(policy(&["a.example", "*.b.example:81", "[2001:db8::1]:80"])
            .validate()
            .is_ok());
        for bad in ["", "http://x", "a..b", "*.", "x:0", "x:99999", "[::1"] {
            let e = policy(&[bad]).validate().unwrap_err();
            assert_eq!(e.field, "allow", "{bad}");
        }
        let e = FetchPolicy {
            timeout_ms: 0,
            ..FetchPolicy::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "timeout_ms");
        assert!(e.message.contains("between 1 and 300000"), "{e}");
    }
}
