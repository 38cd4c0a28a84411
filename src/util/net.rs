//! Outgoing TCP connections from a chosen source address (`bind-source-addr`): the replica's
//! link to its master and the cluster bus links, as Redis's
//! anetTcpNonBlockBestEffortBindConnect.

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};

/// Connect to `host:port`, from `source` when it is a non-empty address. The binding is best
/// effort, as in Redis: if it fails (the address is not local, or of the other family), the
/// connection is made from whatever address the system picks. Each resolved address of `host`
/// is tried in turn.
pub async fn connect_from(host: &str, port: u16, source: &str) -> io::Result<TcpStream> {
    let source: Option<IpAddr> = source.parse().ok();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
    for addr in tokio::net::lookup_host((host, port)).await? {
        match connect_one(addr, source).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn connect_one(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = || if addr.is_ipv6() { TcpSocket::new_v6() } else { TcpSocket::new_v4() };
    if let Some(ip) = source.filter(|ip| ip.is_ipv6() == addr.is_ipv6()) {
        let s = socket()?;
        if s.bind(SocketAddr::new(ip, 0)).is_ok() {
            return s.connect(addr).await;
        }
    }
    socket()?.connect(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection comes from the source address asked for, and from the system's choice
    /// when that address cannot be bound.
    #[tokio::test]
    async fn binds_the_source_address_when_it_can() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // 127.0.0.2 is local on Linux (the whole 127/8 is loopback).
        let s = connect_from("127.0.0.1", port, "127.0.0.2").await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.2");
        assert_eq!(peer.peer_addr().unwrap().ip().to_string(), "127.0.0.2");
        // 192.0.2.1 (TEST-NET-1) is not ours: bound best effort, so from 127.0.0.1.
        let s = connect_from("127.0.0.1", port, "192.0.2.1").await.unwrap();
        assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.1");
        let s = connect_from("localhost", port, "").await.unwrap();
        assert!(s.local_addr().unwrap().ip().is_loopback());
    }
}
