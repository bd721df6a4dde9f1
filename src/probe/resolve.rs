//! Target address choice, as blackbox's `chooseProtocol`: the preferred
//! family first, the other one as fallback, with the lookup time and a hash
//! of the chosen address exposed so a changing IP is visible.

use super::module::{IpOptions, IpProtocol};
use super::Ctx;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

const LOOKUP: &str = "probe_dns_lookup_time_seconds";
const LOOKUP_HELP: &str = "Returns the time taken for probe dns lookup in seconds";
const PROTO: &str = "probe_ip_protocol";
const PROTO_HELP: &str = "Specifies whether probe ip protocol is IP4 or IP6";
const HASH: &str = "probe_ip_addr_hash";
const HASH_HELP: &str =
    "Specifies the hash of IP address. It's useful to detect if the IP address changes.";

/// FNV-1a 32 of the address bytes (4 bytes for IPv4), as blackbox.
pub fn ip_hash(ip: IpAddr) -> f64 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    f64::from(h)
}

/// Splits `host:port` (IPv6 in brackets). With `default_port`, a missing
/// port is allowed.
pub fn split_host_port(s: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return Err("missing ']' in address".into());
        };
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), Some(p)),
            None if after.is_empty() => (h.to_string(), None),
            None => return Err("unexpected characters after ']'".into()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                // A bare IPv6 address: only valid without a port.
                if default_port.is_some() && s.parse::<std::net::Ipv6Addr>().is_ok() {
                    (s.to_string(), None)
                } else {
                    return Err("too many colons in address".into());
                }
            }
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if host.contains('/') {
        return Err("host must not contain '/'".into());
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port {p:?}"))?,
        (None, Some(d)) => d,
        (None, None) => return Err("missing port in address".into()),
    };
    Ok((host, port))
}

/// Resolves `host` choosing the address family; records the three
/// resolution metrics. Returns the address and the lookup seconds.
pub async fn choose(ctx: &mut Ctx, host: &str, ip: &IpOptions) -> Result<(IpAddr, f64), String> {
    ctx.metrics.register(LOOKUP, LOOKUP_HELP);
    ctx.metrics.set(PROTO, PROTO_HELP, 0.0);
    ctx.metrics.set(HASH, HASH_HELP, 0.0);
    ctx.metrics.set(LOOKUP, LOOKUP_HELP, 0.0);
    let (want, other) = match ip.preferred {
        IpProtocol::Ip6 => ("ip6", "ip4"),
        IpProtocol::Ip4 => ("ip4", "ip6"),
    };
    ctx.info(
        "Resolving target address",
        &[("target", host), ("ip_protocol", want)],
    );
    let start = Instant::now();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Result<Vec<IpAddr>, String> = match bare.parse::<IpAddr>() {
        Ok(a) => Ok(vec![a]),
        Err(_) => tokio::net::lookup_host((bare, 0u16))
            .await
            .map(|it| it.map(|sa: SocketAddr| sa.ip()).collect())
            .map_err(|e| e.to_string()),
    };
    let lookup = start.elapsed().as_secs_f64();
    ctx.metrics.set(LOOKUP, LOOKUP_HELP, lookup);
    let addrs = match addrs {
        Ok(a) => a,
        Err(e) => {
            ctx.error(
                "Resolution with IP protocol failed",
                &[("target", host), ("err", &e)],
            );
            return Err(e);
        }
    };
    let is_v4 = |a: &IpAddr| match a {
        IpAddr::V4(_) => true,
        IpAddr::V6(v) => v.to_ipv4_mapped().is_some(),
    };
    let wants_v4 = ip.preferred == IpProtocol::Ip4;
    let chosen = addrs.iter().find(|a| is_v4(a) == wants_v4).copied();
    let (addr, proto) = match chosen {
        Some(a) => (a, want),
        None => match addrs.first() {
            Some(a) if ip.fallback => (*a, other),
            _ => {
                let e = "unable to find ip; no fallback".to_string();
                ctx.error(
                    "Resolution with IP protocol failed",
                    &[("target", host), ("ip_protocol", want), ("err", &e)],
                );
                return Err(e);
            }
        },
    };
    ctx.metrics
        .set(PROTO, PROTO_HELP, if proto == "ip4" { 4.0 } else { 6.0 });
    ctx.metrics.set(HASH, HASH_HELP, ip_hash(addr));
    ctx.info(
        "Resolved target address",
        &[("target", host), ("ip", &addr.to_string())],
    );
    Ok((addr, lookup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_blackbox() {
        // blackbox_exporter's probe_ip_addr_hash for 127.0.0.1 (shared
        // reference output).
        assert_eq!(
            ip_hash("127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
            3_668_918_509.0
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("a:1", None), Ok(("a".into(), 1)));
        assert_eq!(split_host_port("[::1]:53", None), Ok(("::1".into(), 53)));
        assert_eq!(split_host_port("::1", Some(53)), Ok(("::1".into(), 53)));
        assert_eq!(split_host_port("a", Some(53)), Ok(("a".into(), 53)));
        assert!(split_host_port("a", None).is_err());
        assert!(split_host_port(":80", None).is_err());
        assert!(split_host_port("a:99999", None).is_err());
    }
}
