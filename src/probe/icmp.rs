//! The ICMP prober, on unprivileged ICMP datagram sockets only
//! (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`): klaxon does not need root
//! or CAP_NET_RAW. When the kernel refuses such sockets the probe fails
//! with a message naming the sysctl that allows them.

use super::module::IcmpModule;
use super::{resolve, Ctx};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const DUR: &str = "probe_icmp_duration_seconds";
const DUR_HELP: &str = "Duration of icmp request by phase";

/// The message when unprivileged ICMP is not allowed.
pub const NOT_PERMITTED: &str =
    "unprivileged ICMP sockets are not permitted for this user's group; \
allow them with sysctl net.ipv4.ping_group_range (e.g. \"0 2147483647\")";

/// Owns the socket descriptor so every path closes it.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor was returned by socket() and is closed once.
        unsafe {
            libc::close(self.0);
        }
    }
}

fn open_socket() -> Result<Fd, String> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!("{NOT_PERMITTED}: {e}"),
            _ => format!("creating ICMP socket: {e}"),
        });
    }
    Ok(Fd(fd))
}

/// Whether unprivileged ICMP sockets work here (used by tests and docs).
pub fn available() -> Result<(), String> {
    open_socket().map(|_| ())
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of 16-bit big-endian words, an odd last byte padded with
/// zero.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let hi = u32::from(c.first().copied().unwrap_or(0));
        let lo = u32::from(c.get(1).copied().unwrap_or(0));
        sum += (hi << 8) | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The payload of klaxon's echo requests: a reply carrying another payload
/// answers someone else's request.
const PAYLOAD: &[u8] = b"klaxon-probe";

/// An ICMP echo request (type 8, code 0) with its checksum filled in. On a
/// datagram socket the kernel replaces the identifier with the socket's.
fn echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(8 + payload.len());
    pkt.extend_from_slice(&[8, 0, 0, 0]);
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(payload);
    let cs = checksum(&pkt).to_be_bytes();
    if let Some(slot) = pkt.get_mut(2..4) {
        slot.copy_from_slice(&cs);
    }
    pkt
}

/// Whether `buf` (as a datagram socket hands it over: the ICMP message
/// without the IP header) is the echo reply to our request `seq`.
fn is_reply_to(buf: &[u8], seq: u16, payload: &[u8]) -> bool {
    buf.len() == 8 + payload.len()
        && buf.first() == Some(&0)
        && buf.get(1) == Some(&0)
        && buf.get(6..8) == Some(&seq.to_be_bytes()[..])
        && buf.get(8..) == Some(payload)
}

/// One echo request/reply, blocking with a receive timeout.
fn echo(ip: Ipv4Addr, timeout: Duration) -> Result<Duration, String> {
    let fd = open_socket()?;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    // SAFETY: valid fd, pointer to a live timeval of the stated size.
    unsafe {
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let pkt = echo_request(0, 1, PAYLOAD);
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    let start = Instant::now();
    // SAFETY: valid fd, buffer and sockaddr_in with their exact sizes.
    let n = unsafe {
        libc::sendto(
            fd.0,
            pkt.as_ptr() as *const libc::c_void,
            pkt.len(),
            0,
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(format!(
            "sending ICMP echo: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut buf = [0u8; 1500];
    loop {
        // SAFETY: valid fd and a buffer of the given length.
        let n = unsafe { libc::recv(fd.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err(format!(
                "waiting for ICMP echo reply: {}",
                std::io::Error::last_os_error()
            ));
        }
        // The kernel matches the identifier for us; the sequence and
        // payload tell our reply from a late one of an earlier probe.
        if is_reply_to(buf.get(..n as usize).unwrap_or(&[]), 1, PAYLOAD) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err("timeout waiting for ICMP echo reply".into());
        }
    }
}

pub(crate) async fn probe(ctx: &mut Ctx, m: &IcmpModule, target: &str) -> bool {
    for p in ["resolve", "rtt", "setup"] {
        ctx.metrics.set_labeled(DUR, DUR_HELP, &[("phase", p)], 0.0);
    }
    let (ip, lookup) = match resolve::choose(ctx, target, &m.ip).await {
        Ok(v) => v,
        Err(_) => return false,
    };
    ctx.metrics
        .set_labeled(DUR, DUR_HELP, &[("phase", "resolve")], lookup);
    let v4 = match ip {
        IpAddr::V4(v) => v,
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                ctx.error(
                    "Error creating socket",
                    &[("err", "ICMPv6 probes are not supported yet")],
                );
                return false;
            }
        },
    };
    ctx.info("Creating socket", &[]);
    // Never zero: SO_RCVTIMEO 0 would wait forever.
    let budget = ctx.timeout.max(Duration::from_millis(1));
    let r = tokio::task::spawn_blocking(move || echo(v4, budget)).await;
    match r {
        Ok(Ok(rtt)) => {
            ctx.metrics
                .set_labeled(DUR, DUR_HELP, &[("phase", "rtt")], rtt.as_secs_f64());
            ctx.info("Found matching reply packet", &[]);
            true
        }
        Ok(Err(e)) => {
            ctx.error("Error in ICMP probe", &[("err", &e)]);
            false
        }
        Err(e) => {
            ctx.error("Error in ICMP probe", &[("err", &e.to_string())]);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_rfc1071() {
        // RFC 1071 section 3's example: the ones' complement sum of
        // 0001 f203 f4f5 f6f7 is ddf2, so the checksum is 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // An odd length is padded with a zero byte.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2]),
            checksum(&[0x00, 0x01, 0xf2, 0x00])
        );
        // All zeros sum to 0, whose complement is ffff.
        assert_eq!(checksum(&[0, 0, 0, 0]), 0xffff);
    }

    #[test]
    fn echo_request_layout_and_checksum() {
        let p = echo_request(0x1234, 7, b"abc");
        assert_eq!(&p[..2], &[8, 0], "type 8 code 0");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7], "identifier and sequence");
        assert_eq!(&p[8..], b"abc");
        // A packet with a correct checksum sums to zero (RFC 1071: the
        // receiver's check).
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn replies_are_matched_by_type_sequence_and_payload() {
        let mut reply = echo_request(9, 1, PAYLOAD);
        reply[0] = 0;
        assert!(is_reply_to(&reply, 1, PAYLOAD));
        assert!(!is_reply_to(&reply, 2, PAYLOAD), "another sequence");
        assert!(!is_reply_to(&reply, 1, b"other-payload"), "another payload");
        assert!(
            !is_reply_to(&echo_request(9, 1, PAYLOAD), 1, PAYLOAD),
            "a request"
        );
        assert!(!is_reply_to(&reply[..8], 1, PAYLOAD), "truncated");
        assert!(!is_reply_to(&[], 1, PAYLOAD));
    }
}
