//! Per-connection session state, below both the command handlers and the connection loop:
//! the client's own state ([`Client`]: selected database, protocol, authentication, reply
//! mode, transaction, watched keys, subscriptions, tracking), the part other connections see
//! ([`ClientHandle`]: CLIENT LIST/KILL/UNBLOCK), the registry of clients blocked on keys
//! ([`blocking`]), and the client's [`console`] (the Lua debugger's I/O, done by the
//! connection).

pub mod blocking;
pub mod client;
pub mod console;
pub mod multi;
pub mod subscriptions;

pub use client::{Client, ClientHandle, ClientView, ReplyMode, ShutOnKill};
pub use multi::MultiState;
pub use subscriptions::Subscriptions;

/// A write done inside EXEC or a script, whose blocked clients and watching transactions are
/// told once the locks are released.
#[derive(Debug, Default)]
pub struct Written {
    /// The keys it reported as modified (while transactions watch keys).
    pub modified: Vec<crate::keyspace::Modified>,
    /// The keys it made ready for blocked clients (see `keyspace::ready`).
    pub ready: Vec<crate::keyspace::ready::Ready>,
}

/// A client from 127.0.0.1, ::1 or a Unix socket (Redis 7.0's islocalClient).
pub fn is_local(client: &Client) -> bool {
    let a = &client.handle.addr;
    a.starts_with("127.0.0.1:")
        || a.starts_with("[::1]:")
        || a.starts_with('/')
        || a.ends_with(":0") && !a.contains('.')
}
