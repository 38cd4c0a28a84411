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
    /// The database the command ran in.
    pub db: usize,
    /// Its key arguments (inline up to two: most writes have one key).
    pub keys: smallvec::SmallVec<[bytes::Bytes; 2]>,
    /// It may have written anywhere (keyspace-wide, or another database): every blocked client
    /// re-checks its keys.
    pub everywhere: bool,
    /// It cannot make a blocked client servable: nobody is woken.
    pub wakes_nobody: bool,
    /// Keyspace-wide: it touched the watched keys it affected itself.
    pub keyspace_wide: bool,
    /// The keys it reported as modified (while transactions watch keys).
    pub modified: Vec<crate::keyspace::Modified>,
}

/// A client from 127.0.0.1, ::1 or a Unix socket (Redis 7.0's islocalClient).
pub fn is_local(client: &Client) -> bool {
    let a = &client.handle.addr;
    a.starts_with("127.0.0.1:")
        || a.starts_with("[::1]:")
        || a.starts_with('/')
        || a.ends_with(":0") && !a.contains('.')
}
