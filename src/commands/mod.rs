//! Commands: the command table (one [`CommandSpec`] per command, with its metadata and its
//! handler), the single dispatch path that runs the generic checks, and one module per
//! command family. Handlers read typed arguments from a [`Ctx`], work on the locked keyspace
//! view and write their reply to the context's reply sink; they never touch sockets.

pub mod args;
pub mod bitmaps;
pub mod blocking;
pub mod client_tracking;
pub mod connection;
pub mod dispatch;
pub mod functions;
pub mod hashes;
pub mod hyperloglog;
pub mod introspection;
pub mod keys;
pub mod lists;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod streams_groups;
pub mod streams_info;
pub mod streams_read;
pub mod strings;
pub mod table;
pub mod transactions;
pub mod zsets;

use bytes::Bytes;

use crate::keyspace::Db;
use crate::protocol::ReplySink;
use crate::server::client::Client;
use crate::server::Server;

/// Command flags (Redis's CMD_* flags, plus `ALL_KEYS` for keyspace-wide commands).
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    pub const PROTECTED: u32 = 1 << 16;
    /// Not a Redis flag: the command works on the whole selected database (or all of them), so
    /// the dispatcher locks every shard for it.
    pub const ALL_KEYS: u32 = 1 << 24;
    /// Not a Redis flag: the command runs a Lua script (EVAL*, FCALL*). The dispatcher takes
    /// the script gate and marks the script running before locking; the connection runs it
    /// off its worker thread so the worker keeps answering other clients (BUSY, SCRIPT KILL).
    pub const SCRIPT_RUN: u32 = 1 << 25;

    /// Names as COMMAND INFO reports them, in Redis's order (may_replicate and protected are
    /// hidden, as in Redis).
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// Error a handler returns; the dispatcher writes it as an error reply. Texts follow Redis's
/// addReplyError convention: a leading `-CODE` sets the error code, otherwise `ERR` is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub String);

impl CmdError {
    pub fn new(s: impl Into<String>) -> Self {
        CmdError(s.into())
    }
}

/// Redis's shared error replies.
pub mod errors {
    pub const SYNTAX: &str = "syntax error";
    pub const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INTEGER: &str = "value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "value is not a valid float";
    pub const NO_KEY: &str = "no such key";
    pub const OUT_OF_RANGE: &str = "index out of range";
    pub const OVERFLOW: &str = "increment or decrement would overflow";
    pub const DB_INDEX: &str = "DB index is out of range";
    pub const NOAUTH: &str = "-NOAUTH Authentication required.";
}

pub type CmdResult = Result<(), CmdError>;

pub type Handler = fn(&mut Ctx) -> CmdResult;

/// The exact key positions of a call, for commands with movable keys.
pub type GetKeys = fn(&[Bytes]) -> Vec<usize>;

/// What the connection must do after the reply of a command is written.
#[derive(Debug, Default)]
pub enum Action {
    #[default]
    None,
    /// QUIT: close after the reply.
    Close,
    /// DEBUG SLEEP: hold this connection (and nothing else) for a while.
    Sleep(std::time::Duration),
    /// SHUTDOWN: stop the server.
    Shutdown,
    /// Clients are paused (CLIENT PAUSE): wait for the pause to end, then run the command.
    Paused,
    /// A blocking command found nothing: wait for one of the keys (no reply was written).
    Block(crate::server::blocking::BlockSpec),
    /// A script is running (and has not yet run past busy-reply-threshold): wait for it to
    /// end, then run the command.
    WaitScript,
    /// SYNC/PSYNC: after the snapshot, the connection streams these effects to the replica.
    Replicate(tokio::sync::mpsc::UnboundedReceiver<crate::keyspace::effects::EffectBatch>),
}

/// The metadata and the handler of one command (or subcommand), one table row.
pub struct CommandSpec {
    /// Lower-case name; subcommands have only their own name (the full name is `parent|sub`).
    pub name: &'static str,
    /// Redis arity: positive = exact argument count, negative = at least -arity.
    pub arity: i32,
    pub flags: u32,
    /// Key positions (first, last, step), as in COMMAND INFO; last < 0 counts from the end.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL categories beyond those implied by the flags (without `@`).
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
    /// Key-spec flags (COMMAND INFO), when they differ from the defaults the command flags imply
    /// (RW update for writes, RO access for reads), and the key spec's notes.
    pub key_flags: Option<&'static [&'static str]>,
    pub key_notes: &'static str,
    /// For commands whose keys are not a fixed range (numkeys, SORT ... STORE): the exact key
    /// positions of a call (COMMAND GETKEYS; COMMAND INFO then shows `movablekeys`). Locking
    /// keeps using the range, which covers them.
    pub getkeys: Option<GetKeys>,
}

impl CommandSpec {
    pub const fn new(name: &'static str, arity: i32, flags: u32, handler: Handler) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl: &[],
            group: "generic",
            summary: "",
            since: "1.0.0",
            handler,
            subcommands: &[],
            key_flags: None,
            key_notes: "",
            getkeys: None,
        }
    }
    pub const fn movable(mut self, f: GetKeys) -> Self {
        self.getkeys = Some(f);
        self
    }
    pub const fn key_spec(mut self, flags: &'static [&'static str], notes: &'static str) -> Self {
        self.key_flags = Some(flags);
        self.key_notes = notes;
        self
    }
    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Self {
        self.first_key = first;
        self.last_key = last;
        self.step = step;
        self
    }
    pub const fn acl(mut self, acl: &'static [&'static str]) -> Self {
        self.acl = acl;
        self
    }
    pub const fn group(mut self, group: &'static str) -> Self {
        self.group = group;
        self
    }
    pub const fn doc(mut self, since: &'static str, summary: &'static str) -> Self {
        self.since = since;
        self.summary = summary;
        self
    }
    pub const fn subs(mut self, subcommands: &'static [CommandSpec]) -> Self {
        self.subcommands = subcommands;
        self
    }

    pub fn has_flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// The key arguments of a call (indices into `args`), from the key positions.
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 { argc as i64 + self.last_key as i64 } else { self.last_key as i64 };
        let step = self.step.max(1) as usize;
        let end = if first == 0 { 0 } else { (last.min(argc as i64 - 1) + 1).max(0) as usize };
        (first..end.max(first)).step_by(step)
    }

    /// ACL categories: the explicit ones plus those Redis derives from the flags.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let mut cats: Vec<&'static str> = Vec::new();
        let mut add = |c: &'static str| {
            if !cats.contains(&c) {
                cats.push(c)
            }
        };
        if self.has_flag(flags::WRITE) {
            add("write");
        }
        if self.has_flag(flags::READONLY) && !self.acl.contains(&"scripting") {
            add("read");
        }
        if self.has_flag(flags::ADMIN) {
            add("admin");
            add("dangerous");
        }
        if self.has_flag(flags::PUBSUB) {
            add("pubsub");
        }
        if self.has_flag(flags::FAST) {
            add("fast");
        }
        if self.has_flag(flags::BLOCKING) {
            add("blocking");
        }
        if !self.has_flag(flags::FAST) {
            add("slow");
        }
        for c in self.acl {
            add(c);
        }
        // Redis lists categories in the order of its category table.
        cats.sort_by_key(|c| ACL_CATEGORIES.iter().position(|x| x == c).unwrap_or(usize::MAX));
        cats
    }
}

/// Key extraction for commands with movable keys (see [`CommandSpec::getkeys`]).
pub mod getkeys {
    use bytes::Bytes;

    fn numkeys_from(args: &[Bytes], idx: usize, mut keys: Vec<usize>) -> Vec<usize> {
        let n = args.get(idx).and_then(|a| crate::util::num::parse_i64(a)).unwrap_or(0).max(0) as usize;
        keys.extend((idx + 1..idx + 1 + n).filter(|&i| i < args.len()));
        keys
    }

    /// `CMD numkeys key ...` (ZUNION, ZINTER, ZDIFF, ZINTERCARD, SINTERCARD, LMPOP, ZMPOP).
    pub fn numkeys1(args: &[Bytes]) -> Vec<usize> {
        numkeys_from(args, 1, Vec::new())
    }

    /// `CMD timeout numkeys key ...` (BLMPOP, BZMPOP).
    pub fn numkeys2(args: &[Bytes]) -> Vec<usize> {
        numkeys_from(args, 2, Vec::new())
    }

    /// `CMD destination numkeys key ...` (ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE).
    pub fn dest_numkeys(args: &[Bytes]) -> Vec<usize> {
        numkeys_from(args, 2, vec![1])
    }

    /// `SORT key ... [STORE destination]` (only the last STORE counts, as in Redis).
    pub fn sort(args: &[Bytes]) -> Vec<usize> {
        let mut keys = vec![1];
        let mut store = None;
        let mut i = 2;
        while i < args.len() {
            let a = &args[i];
            if a.eq_ignore_ascii_case(b"limit") {
                i += 2;
            } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
                i += 1;
            } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
                store = Some(i + 1);
                i += 1;
            }
            i += 1;
        }
        keys.extend(store);
        keys
    }
}

/// ACL categories in Redis's canonical order.
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

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
