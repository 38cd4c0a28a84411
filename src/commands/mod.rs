//! Commands: the command table (one [`CommandSpec`] per command, with its metadata and its
//! handler), the one command pipeline that runs the generic checks, and one module per
//! command family. Handlers read typed arguments from a [`Ctx`], work on the locked keyspace
//! view and write their reply to the context's reply sink; they never touch sockets.

pub mod acl;
pub mod args;
pub mod bitfield;
pub mod bitmaps;
pub mod blocking;
pub mod client_tracking;
pub mod cluster;
pub mod connection;
pub mod debug_extra;
pub mod functions;
pub mod geo;
pub mod hash_expire;
pub mod hashes;
pub mod hyperloglog;
pub mod introspection;
pub mod key_specs;
pub mod keys;
pub mod lists;
pub mod lolwut;
pub mod meta;
pub mod migrate;
pub mod module;
pub mod observability;
pub mod persistence;
pub mod pipeline;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod sentinel;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod streams_groups;
pub mod streams_info;
pub mod streams_read;
#[cfg(test)]
mod streams_tests;
pub mod strings;
pub mod table;
// Not test-only: the dispatch benchmark (benches/dispatch.rs) drives the pipeline through it.
#[doc(hidden)]
pub mod testing;
pub mod transactions;
pub mod zsets;

use bytes::Bytes;

use crate::keyspace::Db;
use crate::protocol::ReplySink;
use crate::server::Server;
use crate::session::client::Client;

/// Command flags: Redis's CMD_* flags (from the command metadata) in the low bits, and
/// Ferrous's own properties of a command (declared where it is registered) from bit 32.
pub mod flags {
    pub const WRITE: u64 = 1 << 0;
    pub const READONLY: u64 = 1 << 1;
    pub const DENYOOM: u64 = 1 << 2;
    pub const MODULE: u64 = 1 << 3;
    pub const ADMIN: u64 = 1 << 4;
    pub const PUBSUB: u64 = 1 << 5;
    pub const NOSCRIPT: u64 = 1 << 6;
    pub const BLOCKING: u64 = 1 << 7;
    pub const LOADING: u64 = 1 << 8;
    pub const STALE: u64 = 1 << 9;
    pub const SKIP_MONITOR: u64 = 1 << 10;
    pub const SKIP_SLOWLOG: u64 = 1 << 11;
    pub const ASKING: u64 = 1 << 12;
    pub const FAST: u64 = 1 << 13;
    pub const NO_AUTH: u64 = 1 << 14;
    pub const MAY_REPLICATE: u64 = 1 << 15;
    pub const NO_MANDATORY_KEYS: u64 = 1 << 16;
    pub const PROTECTED: u64 = 1 << 17;
    pub const NO_ASYNC_LOADING: u64 = 1 << 18;
    pub const NO_MULTI: u64 = 1 << 19;
    pub const MOVABLE_KEYS: u64 = 1 << 20;
    pub const ALLOW_BUSY: u64 = 1 << 21;
    /// SCAN, RANDOMKEY: the keys they find expired are deleted one by one, never wrapped in a
    /// transaction with anything else (hidden, as in Redis).
    pub const TOUCHES_ARBITRARY_KEYS: u64 = 1 << 22;

    // Ferrous's own properties.
    /// Works on the whole selected database (or all of them): every shard is locked for it.
    pub const ALL_KEYS: u64 = 1 << 32;
    /// Runs a Lua script (EVAL*, FCALL*): the pipeline takes the script gate and marks the
    /// script running before locking; the connection runs it on a script stack.
    pub const SCRIPT_RUN: u64 = 1 << 33;
    /// Runs at once inside MULTI instead of being queued (EXEC, DISCARD, MULTI, WATCH, QUIT,
    /// RESET).
    pub const TX_RUN_NOW: u64 = 1 << 34;
    /// Ends or leaves a transaction: not refused inside MULTI over maxmemory (EXEC, DISCARD,
    /// QUIT, RESET).
    pub const TX_END: u64 = 1 << 35;
    /// EXEC: admitted for what its queued commands do; a refusal discards the transaction.
    pub const TX_EXEC: u64 = 1 << 36;
    /// Its replies are pushes (the SUBSCRIBE family): CLIENT REPLY OFF/SKIP do not silence them.
    pub const PUSH_REPLY: u64 = 1 << 37;
    /// Allowed on a RESP2 connection in subscribed mode.
    pub const SUBSCRIBED_OK: u64 = 1 << 38;
    /// Keeps CLIENT CACHING's one-command window open (the CLIENT commands themselves).
    pub const KEEPS_CACHING: u64 = 1 << 40;
    /// Protected by `enable-debug-command` (DEBUG).
    pub const DEBUG_COMMAND: u64 = 1 << 41;
    /// Answered with the persistence error (MISCONF) like a write command (PING, as Redis).
    pub const REPORTS_DISK_ERROR: u64 = 1 << 42;
    /// Not a script, but may run scripts (DEBUG LOADAOF replays the AOF's): the connection
    /// runs it on a script stack too, so a slow one steps aside as [`SCRIPT_RUN`]'s do.
    pub const SCRIPT_STACK: u64 = 1 << 44;

    /// Redis's flag names, in the order COMMAND INFO prints them (the hidden ones last).
    pub const NAMES: &[(u64, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (MODULE, "module"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
        (MAY_REPLICATE, "may_replicate"),
        (PROTECTED, "protected"),
        (TOUCHES_ARBITRARY_KEYS, "touches_arbitrary_keys"),
    ];

    /// Flags hidden from COMMAND INFO, as in Redis.
    pub const HIDDEN: u64 = MAY_REPLICATE | PROTECTED | TOUCHES_ARBITRARY_KEYS;

    /// A Redis flag by its name.
    pub fn by_name(name: &str) -> Option<u64> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// Error a handler returns; the pipeline writes it as an error reply. Texts follow Redis's
/// addReplyError convention: a leading `-CODE` sets the error code, otherwise `ERR` is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub String);

impl CmdError {
    pub fn new(s: impl Into<String>) -> Self {
        CmdError(s.into())
    }
}

/// Redis's shared error replies: one code per error that several commands answer, mapped to
/// Redis's text in one place ([`errors::Code::text`]; the constants are the same texts).
pub mod errors {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Code {
        Syntax,
        WrongType,
        NotInteger,
        NotFloat,
        NoKey,
        OutOfRange,
        Overflow,
        DbIndex,
        NoAuth,
    }

    impl Code {
        pub const fn text(self) -> &'static str {
            match self {
                Code::Syntax => "syntax error",
                Code::WrongType => "-WRONGTYPE Operation against a key holding the wrong kind of value",
                Code::NotInteger => "value is not an integer or out of range",
                Code::NotFloat => "value is not a valid float",
                Code::NoKey => "no such key",
                Code::OutOfRange => "index out of range",
                Code::Overflow => "increment or decrement would overflow",
                Code::DbIndex => "DB index is out of range",
                Code::NoAuth => "-NOAUTH Authentication required.",
            }
        }
    }

    pub const SYNTAX: &str = Code::Syntax.text();
    pub const WRONGTYPE: &str = Code::WrongType.text();
    pub const NOT_INTEGER: &str = Code::NotInteger.text();
    pub const NOT_FLOAT: &str = Code::NotFloat.text();
    pub const NO_KEY: &str = Code::NoKey.text();
    pub const OUT_OF_RANGE: &str = Code::OutOfRange.text();
    pub const OVERFLOW: &str = Code::Overflow.text();
    pub const DB_INDEX: &str = Code::DbIndex.text();
    pub const NOAUTH: &str = Code::NoAuth.text();
}

impl From<errors::Code> for CmdError {
    fn from(code: errors::Code) -> Self {
        CmdError::new(code.text())
    }
}

impl From<crate::types::WrongType> for CmdError {
    fn from(_: crate::types::WrongType) -> Self {
        errors::Code::WrongType.into()
    }
}

pub type CmdResult = Result<(), CmdError>;

pub type Handler = fn(&mut Ctx) -> CmdResult;

pub use key_specs::GetKeys;

/// What the connection must do after the reply of a command is written.
#[derive(Debug, Default)]
pub enum Action {
    #[default]
    None,
    /// QUIT: close after the reply.
    Close,
    /// Close at once, dropping the replies not yet sent (Redis's freeClientAsync: an HTTP
    /// request line, see `pipeline::admit::cross_protocol_attack`).
    Drop,
    /// SHUTDOWN with its `SHUTDOWN_*` flags: stop the server (see `server::shutdown`).
    Shutdown(u32),
    /// Clients are paused (CLIENT PAUSE): wait for the pause to end, then run the command.
    Paused,
    /// A blocking command found nothing: wait for one of the keys (no reply was written).
    Block(Box<crate::session::blocking::BlockSpec>),
    /// A script is running (and has not yet run past busy-reply-threshold): wait for it to
    /// end, then run the command.
    WaitScript,
    /// SYNC/PSYNC: the connection is now this replica's link (its full synchronisation or
    /// the rest of the stream; see `replication::master`).
    Replicate(std::sync::Arc<crate::replication::Link>),
    /// WAIT / WAITAOF that could not answer at once: wait for the acknowledgements, then reply.
    WaitAcks(Box<crate::replication::WaitSpec>),
}

/// One command's registration: its name and handler, next to each other in the family's
/// module. Everything Redis knows about the command (arity, flags, key specs, ACL categories,
/// docs) is data, joined by name from [`meta`]; what is Ferrous's own (the `flags` from bit
/// 32, a key finder where Redis has one) is declared here.
pub struct CommandSpec {
    /// Lower-case name; subcommands have only their own name (the full name is `parent|sub`).
    pub name: &'static str,
    pub handler: Handler,
    /// Ferrous's own flags (`flags::ALL_KEYS`, `flags::TX_RUN_NOW`...).
    pub internal: u64,
    /// Where the key specs are incomplete or their flags depend on the arguments: the command's
    /// key finder (Redis's getkeys_proc).
    pub getkeys: Option<GetKeys>,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub const fn new(name: &'static str, handler: Handler) -> Self {
        CommandSpec { name, handler, internal: 0, getkeys: None, subcommands: &[] }
    }
    pub const fn internal(mut self, flags: u64) -> Self {
        self.internal = flags;
        self
    }
    pub const fn getkeys(mut self, f: GetKeys) -> Self {
        self.getkeys = Some(f);
        self
    }
    pub const fn subs(mut self, subcommands: &'static [CommandSpec]) -> Self {
        self.subcommands = subcommands;
        self
    }
}

/// ACL categories in Redis's canonical order (the ACL model's list: a category's bit is its index).
pub use crate::acl::catalog::CATEGORIES as ACL_CATEGORIES;

/// Everything a handler works with.
pub struct Ctx<'a, 'k> {
    pub server: &'a Server,
    pub client: &'a mut Client,
    /// The arguments, the command name first.
    pub args: &'a [Bytes],
    /// The locked view of the client's database (shards of the command's keys, or all of them:
    /// under EXEC, every queued command shares one all-shards view).
    pub db: &'a mut Db<'k>,
    pub reply: &'a mut ReplySink,
    pub action: Action,
}

impl Ctx<'_, '_> {
    pub fn arg(&self, i: usize) -> &[u8] {
        &self.args[i]
    }

    pub fn argc(&self) -> usize {
        self.args.len()
    }
}
