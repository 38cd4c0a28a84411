//! Ferrous: a Redis-compatible in-memory data server.
//!
//! Layout and layers (see docs/ARCHITECTURE.md): `protocol` decodes requests and encodes
//! replies, `server` owns connections and shared state, `commands` holds the command table (its
//! metadata as data), the one command pipeline and one module per command family, `session`
//! the per-connection state, `keyspace` the sharded databases, `types` the value types,
//! `persistence` the file formats, `config` the configuration, `util` small shared helpers.

pub mod acl;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod keyspace;
pub mod metrics;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod sentinel;
pub mod server;
pub mod session;
pub mod tracking;
pub mod types;
pub mod util;

/// Ferrous's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Redis version whose behaviour Ferrous implements, reported by INFO and HELLO.
pub const REDIS_VERSION: &str = "7.2.4";
