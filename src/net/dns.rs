//! The DNS wire client shared by the DNS prober and DNS service discovery:
//! one encoded query to one server over UDP or TCP (hickory-proto encodes
//! and decodes the messages).

use hickory_proto::op::Message;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one encoded query to `addr` and waits for the answer with the
/// same `id`: over TCP with the two-byte length prefix, over UDP from an
/// ephemeral connected socket, skipping stray datagrams. Returns the answer
/// and the seconds the connect took. The caller bounds the wait.
pub(crate) async fn exchange(
    addr: SocketAddr,
    tcp: bool,
    query: &[u8],
    id: u16,
) -> Result<(Message, f64), String> {
    let t0 = Instant::now();
    if tcp {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        let connect = t0.elapsed().as_secs_f64();
        let len = u16::try_from(query.len()).map_err(|_| "query too large".to_string())?;
        let mut buf = len.to_be_bytes().to_vec();
        buf.extend_from_slice(query);
        s.write_all(&buf).await.map_err(|e| e.to_string())?;
        let n = s.read_u16().await.map_err(|e| e.to_string())?;
        let mut resp = vec![0u8; usize::from(n)];
        s.read_exact(&mut resp).await.map_err(|e| e.to_string())?;
        let m = Message::from_vec(&resp).map_err(|e| e.to_string())?;
        Ok((m, connect))
    } else {
        let bind: SocketAddr = if addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let s = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| e.to_string())?;
        s.connect(addr)
            .await
            .map_err(|e| format!("dial udp {addr}: {e}"))?;
        let connect = t0.elapsed().as_secs_f64();
        s.send(query).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65_535];
        loop {
            let n = s.recv(&mut buf).await.map_err(|e| e.to_string())?;
            let Some(data) = buf.get(..n) else { continue };
            match Message::from_vec(data) {
                Ok(m) if m.metadata.id == id => return Ok((m, connect)),
                // A stray or malformed datagram: keep waiting until timeout.
                _ => continue,
            }
        }
    }
}

/// A query id that differs between queries (not security relevant: the
/// socket is connected, so only the server can answer).
pub(crate) fn rand_id() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t ^ (t >> 16)) as u16
}
