//! Per-connection session state, below both the command handlers and the connection loop:
//! the client's own state ([`Client`]: selected database, protocol, authentication, reply
//! mode, transaction, watched keys, subscriptions, tracking), the part other connections see
//! ([`ClientHandle`]: CLIENT LIST/KILL/UNBLOCK), and the registry of clients blocked on keys
//! ([`blocking`]).

pub mod blocking;
pub mod client;
pub mod multi;
pub mod subscriptions;

pub use client::{Client, ClientHandle, ClientView, ReplyMode};
pub use multi::MultiState;
pub use subscriptions::Subscriptions;

/// A write done inside EXEC or a script, whose blocked clients and watching transactions are
/// told once the locks are released.
#[derive(Debug, Default)]
pub struct Written {
    /// The database the command ran in.
    pub db: usize,
    /// Its key arguments.
    pub keys: Vec<bytes::Bytes>,
    /// It may have written anywhere (keyspace-wide, or another database): every blocked client
    /// re-checks its keys.
    pub everywhere: bool,
    /// It cannot make a blocked client servable: nobody is woken.
    pub wakes_nobody: bool,
    /// Keyspace-wide: it touched the watched keys it affected itself.
    pub keyspace_wide: bool,
    /// The keys it reported as modified (while transactions watch keys).
    pub modified: Vec<(usize, bytes::Bytes)>,
}

/// `enable-debug-command`, fixed at start-up.
pub static PROTECTED_DEBUG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether a protected command (DEBUG) may run for this client, per `enable-debug-command`.
pub fn client_protected_mode(client: &Client) -> bool {
    // The setting is immutable, so it is read from the process-wide copy made at start-up.
    match PROTECTED_DEBUG.get().map(String::as_str) {
        Some("yes") => true,
        Some("local") => is_local(client),
        _ => false,
    }
}

/// A client on the loopback interface or a Unix socket (Redis's islocalClient).
pub fn is_local(client: &Client) -> bool {
    let a = &client.handle.addr;
    a.starts_with("127.") || a.starts_with("[::1]") || a.starts_with('/') || a.ends_with(":0") && !a.contains('.')
}
