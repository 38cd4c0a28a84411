//! Per-connection state. [`Client`] is owned by the connection's task and passed to handlers;
//! [`ClientHandle`] is the part other connections can see and act on (CLIENT LIST / KILL / INFO),
//! registered in the server's client registry.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::keyspace::clock::Stamp;
use crate::protocol::Proto;

/// CLIENT REPLY mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of this command only.
    Skip,
    /// CLIENT REPLY SKIP was just run: the next command's reply is skipped.
    SkipNext,
}

/// What CLIENT LIST shows about a connection, updated by its task after every batch. The
/// fields every batch writes come first (`repr(C)`), on the handle's first lines.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub struct ClientView {
    pub qbuf: usize,
    /// Input buffer capacity not in use.
    pub qbuf_free: usize,
    /// Bytes of the arguments of the command being run.
    pub argv_mem: usize,
    /// The arguments of the command showing this client (CLIENT LIST / INFO about itself): its
    /// tot-mem shows them on top of what the client holds between commands, as Redis counts a
    /// running command's argv while its cron and client eviction see the client without them.
    pub running_argv: usize,
    /// Reply buffer capacity, and the most it held in the last batch.
    pub rbs: usize,
    pub rbp: usize,
    pub last_cmd: &'static str,
    pub db: usize,
    pub multi: i64,
    /// Bytes of the commands queued in MULTI.
    pub multi_mem: usize,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// (bcast, broken redirect, redirect id) while tracking is on.
    pub tracking: Option<(bool, bool, u64)>,
    pub resp: u8,
    pub monitor: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    // Set when they change, not with every batch.
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub user: String,
}

/// The shared half of a connection. What its task reads or writes with every batch comes
/// first (`repr(C)`): the kill flag, its memory and idle time, its output meter and its view.
#[repr(C)]
pub struct ClientHandle {
    killed: AtomicBool,
    /// The cron asked the connection to check its buffers (`request_shrink`).
    shrink_requested: AtomicBool,
    /// Replication role of the connection: [`REPL_NONE`], [`REPL_REPLICA`] (a replica attached
    /// to us, flag `S`) or [`REPL_MASTER`] (our master's link, flag `M`).
    pub repl_kind: std::sync::atomic::AtomicU8,
    /// Everything the connection holds (CLIENT LIST's tot-mem, client eviction).
    pub mem: std::sync::atomic::AtomicUsize,
    /// When the last command ran, in milliseconds of the monotonic clock (for `idle=`).
    pub last_interaction_ms: AtomicU64,
    /// What the connection has yet to send (output-buffer limits, CLIENT LIST's omem).
    pub meter: Arc<crate::metrics::obuf::Meter>,
    pub view: Mutex<ClientView>,
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub created: Instant,
    /// Wakes the connection when it is blocked on keys.
    pub waiter: Arc<super::blocking::Waiter>,
    /// The connection's push queue (Pub/Sub messages, tracking invalidations redirected here).
    pub push: std::sync::OnceLock<crate::pubsub::Subscriber>,
    kill_notify: tokio::sync::Notify,
    /// A replica's share of the replication buffer (its output buffer, for `omem`).
    pub repl_omem: std::sync::atomic::AtomicUsize,
    /// What the connection held when client eviction closed it, until its task ends and
    /// gives it back (see `server::client_eviction`).
    pub evicted_mem: std::sync::atomic::AtomicUsize,
    /// The socket [`ClientHandle::kill`] shuts down at once: a replica link's, set only while
    /// the link is served (see [`ShutOnKill`]).
    shut_on_kill: Mutex<Option<i32>>,
}

/// While alive, [`ClientHandle::kill`] shuts the connection's socket down at once (a replica
/// link). Drop it before the socket is closed.
pub struct ShutOnKill<'a>(&'a ClientHandle);

impl<'a> ShutOnKill<'a> {
    pub fn new(handle: &'a ClientHandle) -> Self {
        if handle.fd >= 0 {
            *handle.shut_on_kill.lock() = Some(handle.fd as i32);
        }
        ShutOnKill(handle)
    }
}

impl Drop for ShutOnKill<'_> {
    fn drop(&mut self) {
        *self.0.shut_on_kill.lock() = None;
    }
}

pub const REPL_NONE: u8 = 0;
pub const REPL_REPLICA: u8 = 1;
pub const REPL_MASTER: u8 = 2;

impl ClientHandle {
    pub fn new(id: u64, addr: String, laddr: String, fd: i64) -> Arc<Self> {
        Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_interaction_ms: AtomicU64::new(Stamp::now().as_ms()),
            view: Mutex::new(ClientView { resp: 2, multi: -1, user: "default".into(), ..Default::default() }),
            waiter: Arc::new(super::blocking::Waiter::default()),
            push: std::sync::OnceLock::new(),
            meter: Arc::default(),
            mem: std::sync::atomic::AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            shrink_requested: AtomicBool::new(false),
            kill_notify: tokio::sync::Notify::new(),
            repl_kind: std::sync::atomic::AtomicU8::new(REPL_NONE),
            repl_omem: std::sync::atomic::AtomicUsize::new(0),
            evicted_mem: std::sync::atomic::AtomicUsize::new(0),
            shut_on_kill: Mutex::new(None),
        })
    }

    /// Ask the connection to close (CLIENT KILL); it closes at its next opportunity. True for
    /// the call that killed it (false if it was killed already).
    pub fn kill(&self) -> bool {
        let first = !self.killed.swap(true, Ordering::SeqCst);
        if let Some(fd) = *self.shut_on_kill.lock() {
            // Redis frees a killed replica before CLIENT KILL (or the EXEC holding it)
            // replies, so the replica sees its link end first; the link's task, on this or
            // another thread, may only run after our reply has left.
            #[cfg(unix)]
            // SAFETY: the fd is the link's open socket: ShutOnKill clears it, under this lock,
            // before the socket can be closed.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
        self.kill_notify.notify_one();
        // An idle connection waits on its socket and its push queue only.
        if let Some(queue) = self.push.get() {
            queue.push(crate::pubsub::Push::Wake);
        }
        first
    }

    /// Ask the connection, through its push queue, to trim its buffers (see
    /// `query_buffer::resize_client_buffers`); nothing if a request is already outstanding.
    pub fn request_shrink(&self) {
        if !self.shrink_requested.swap(true, Ordering::AcqRel) {
            if let Some(queue) = self.push.get() {
                queue.push(crate::pubsub::Push::Wake);
            }
        }
    }

    /// Whether a shrink was requested (and clear the request).
    pub fn take_shrink_request(&self) -> bool {
        self.shrink_requested.swap(false, Ordering::AcqRel)
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    pub async fn killed(&self) {
        while !self.is_killed() {
            self.kill_notify.notified().await;
        }
    }

    pub fn touch(&self) {
        self.touch_at(Stamp::now());
    }

    /// [`ClientHandle::touch`] with a time the caller already read.
    pub fn touch_at(&self, now: Stamp) {
        self.last_interaction_ms.store(now.as_ms(), Ordering::Relaxed);
    }

    pub fn idle_secs(&self) -> u64 {
        Stamp::now().as_ms().saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }

    /// Bytes queued for this connection and not yet written (Pub/Sub messages, invalidations).
    pub fn output_len(&self) -> usize {
        self.meter.pending() + self.repl_omem.load(Ordering::Relaxed)
    }

    /// CLIENT KILL / LIST TYPE: "master", "replica", "pubsub" (subscribed) or "normal".
    pub fn kind(&self) -> &'static str {
        match self.repl_kind.load(Ordering::Relaxed) {
            REPL_REPLICA => "replica",
            REPL_MASTER => "master",
            _ => {
                let v = self.view.lock();
                if v.sub + v.psub + v.ssub > 0 {
                    "pubsub"
                } else {
                    "normal"
                }
            }
        }
    }

    fn memory_of(v: &ClientView, omem: usize) -> usize {
        Self::memory_base_of(v) + omem
    }

    /// The view's memory apart from output.
    fn memory_base_of(v: &ClientView) -> usize {
        std::mem::size_of::<Client>() + v.qbuf + v.qbuf_free + v.rbs + v.argv_mem + v.multi_mem
    }

    /// [`Self::view_memory`] without the output (see `client_eviction::update_with_view`).
    pub fn view_memory_base(&self) -> usize {
        Self::memory_base_of(&self.view.lock())
    }

    /// The memory this connection uses (CLIENT LIST's tot-mem, INFO's mem_clients_normal).
    pub fn memory(&self) -> usize {
        self.view_memory().max(self.mem.load(Ordering::Relaxed))
    }

    /// The memory the published view accounts for (output as CLIENT LIST's omem).
    pub fn view_memory(&self) -> usize {
        let omem = crate::metrics::obuf::omem(self.meter.pending());
        Self::memory_of(&self.view.lock(), omem)
    }

    /// One CLIENT LIST / CLIENT INFO line (without the trailing newline), in Redis 7.0's format.
    pub fn info_line(&self, current_cmd: Option<&str>) -> String {
        let v = self.view.lock();
        let mut flags = String::new();
        match self.repl_kind.load(Ordering::Relaxed) {
            REPL_REPLICA => flags.push('S'),
            REPL_MASTER => flags.push('M'),
            _ => {}
        }
        if v.no_evict {
            flags.push('e');
        }
        if v.monitor {
            flags.push('O');
        }
        if v.no_touch {
            flags.push('T');
        }
        if let Some((bcast, broken, _)) = v.tracking {
            flags.push('t');
            if broken {
                flags.push('R');
            }
            if bcast {
                flags.push('B');
            }
        }
        if self.waiter.is_blocked() {
            flags.push('b');
        }
        if v.sub + v.psub + v.ssub > 0 {
            flags.push('P');
        }
        if v.multi >= 0 {
            flags.push('x');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let flags: String = {
            // Redis prints its flag letters in this order.
            let order = "SMOPxbtRBeT";
            let mut f: Vec<char> = flags.chars().collect();
            f.sort_by_key(|c| order.find(*c).unwrap_or(99));
            f.into_iter().collect()
        };
        let name = v.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        let lib_name = v.lib_name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        let lib_ver = v.lib_ver.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        // Output as Redis accounts it: the first 16 KB in the static buffer (obl), the rest
        // in reply blocks (oll, omem).
        let pending = self.meter.pending();
        let obl = pending.min(crate::metrics::obuf::REPLY_CHUNK_BYTES);
        let omem = crate::metrics::obuf::omem(pending);
        let oll = crate::metrics::obuf::blocks(pending);
        let tot = Self::memory_of(&v, omem).max(self.mem.load(Ordering::Relaxed) + v.running_argv);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            self.created.elapsed().as_secs(),
            if current_cmd.is_some() { 0 } else { self.idle_secs() },
            flags,
            v.db,
            v.sub,
            v.psub,
            v.ssub,
            v.multi,
            v.qbuf,
            v.qbuf_free,
            v.argv_mem,
            v.multi_mem,
            v.rbs,
            v.rbp,
            obl,
            oll,
            omem,
            tot,
            if pending > 0 { "rw" } else { "r" },
            current_cmd.unwrap_or(if v.last_cmd.is_empty() { "NULL" } else { v.last_cmd }),
            v.user,
            v.tracking.map_or(-1, |t| t.2 as i64),
            v.resp,
            lib_name,
            lib_ver,
        )
    }
}

/// REPLCONF options a replica sends before SYNC / PSYNC.
#[derive(Clone, Debug, Default)]
pub struct ReplConf {
    /// `listening-port` (0 until told).
    pub listening_port: i64,
    /// `ip-address` (the announced address, else the peer's).
    pub ip_address: Option<String>,
    /// `capa eof`: it reads a diskless transfer (`$EOF:<mark>`).
    pub capa_eof: bool,
    /// `capa psync2`: it understands `+CONTINUE <replid>`.
    pub capa_psync2: bool,
    /// `rdb-only 1`: it wants the snapshot only.
    pub rdb_only: bool,
    /// `rdb-filter-only functions`: the snapshot without data (redis-cli --functions-rdb).
    pub functions_only: bool,
}

/// The connection's own state, passed to handlers.
///
/// Laid out by hand (`repr(C)`): what every request reads comes first, so that a request
/// touches a few of its lines rather than one in each of eight. With many connections each one's state is out of the first-level cache by its next
/// request (GET -P 1, 50 clients, callgrind's cache simulation: one miss per line touched).
#[repr(C)]
pub struct Client {
    // First line: read by every request.
    pub handle: Arc<ClientHandle>,
    /// The ACL user the connection runs as (None: no restriction, as our master's link, the
    /// AOF loader and the server's own clients).
    pub user: Option<Arc<crate::acl::UserCell>>,
    pub db: usize,
    /// Full name of the last command run (published to CLIENT LIST once per batch).
    pub last_cmd: &'static str,
    /// When the first command of the connection's current batch began (the batch's start
    /// for the event-loop metrics, without a clock reading of its own).
    pub batch_began: Option<crate::keyspace::clock::Stamp>,
    pub proto: Proto,
    pub authenticated: bool,
    pub reply_mode: ReplyMode,
    /// Set while a blocked command is re-run after a wake-up: when none of the keys that woke it
    /// holds the type it waits for, it keeps waiting (see `block_woken_by`).
    pub block_retry: bool,
    /// The link to our master (REPLICAOF): its writes are exempt from READONLY.
    pub is_master: bool,
    /// The AOF loader's client: obeyed like our master (Redis's CLIENT_ID_AOF).
    pub loading_aof: bool,
    /// A replica attached to us (after SYNC / PSYNC): it may not touch the keyspace.
    pub is_replica: bool,
    // Second line: read by every request or batch too.
    /// The client's id (its handle's, kept here: the handle is another object to fetch).
    id: u64,
    /// The effect sequence number of the client's last write (what WAITAOF's local fsync
    /// waits for).
    pub woff: u64,
    /// The replication offset after the client's last write (what WAIT / WAITAOF wait for the
    /// replicas to acknowledge).
    pub repl_woff: i64,
    /// The transaction being queued (MULTI).
    pub multi: Option<crate::session::MultiState>,
    /// The client a Lua script's commands run as (Redis's CLIENT_SCRIPT).
    pub script: bool,
    /// The time TIME answers while it is frozen (Redis 7.2's cached time): while EXEC runs its
    /// queued commands, EXEC's start; on a script's client, the script's (or its EXEC's) start,
    /// refreshed at each kill-hook check once the script ran past busy-reply-threshold. The
    /// unix µs are kept once read, so every TIME of the unit gives the same answer.
    pub frozen_time: Option<(std::time::Instant, Option<i64>)>,
    /// In MONITOR mode.
    pub monitor: bool,
    /// EXEC is running the queued commands: they must answer at once (Redis's
    /// CLIENT_DENY_BLOCKING; a script's commands run on a client flagged `script`).
    pub in_exec: bool,
    /// Cluster: READONLY (reads served by a replica), ASKING (for the next command only).
    pub readonly: bool,
    pub asking: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    pub cross_slot: bool,
    /// Cluster, a script's client: the slot its keys are in so far, and whether it may use
    /// keys of several slots (`allow-cross-slot-keys`).
    pub slot: Option<u16>,
    // Read once per batch (client memory, CLIENT LIST's view).
    /// Pub/Sub subscriptions.
    pub subs: crate::session::Subscriptions,
    /// Client-side caching (CLIENT TRACKING ON).
    pub tracking: Option<crate::tracking::ClientTracking>,
    /// Watched keys: (database, key, logically expired flag shared with the watch registry).
    pub watched: Vec<(usize, Bytes, Arc<AtomicBool>)>,
    /// The request being run, when it is the whole of its read buffer's allocation (address,
    /// length; see `protocol::parser::Framing`): a command may keep a big argument of it as it
    /// is. Set by the connection around that request only.
    pub own_frame: Option<(usize, usize)>,
    /// Connections CLIENT KILL closes once the command (an EXEC, a script) has finished and its
    /// effects are published, as Redis frees them before serving anyone else.
    pub kill_after: Vec<Arc<ClientHandle>>,
    /// Writes done by the last EXEC, whose waiters and watchers are told once its locks are released.
    pub after_exec: Vec<super::Written>,
    // Seldom read.
    /// Set by a blocking command served on a re-run after a wake-up: the commands that put
    /// back what it took, run if its reply cannot be written (the client is gone).
    pub block_undo: Vec<Vec<Bytes>>,
    /// Set with `block_retry`: the keys whose signal woke the client (all of its keys when
    /// empty). The re-run goes on only if one of them holds the type the command waits for.
    pub block_woken_by: Vec<(usize, Bytes)>,
    /// Set when a watched key changes: EXEC will fail.
    pub cas_dirty: Arc<AtomicBool>,
    /// CLIENT SETNAME: set through [`Client::set_name`], which publishes it to CLIENT LIST at
    /// once (not with every batch's view). CLIENT SETINFO's lib-name and lib-ver live in the
    /// view only ([`Client::set_lib`]): nothing else reads them.
    name: Option<Bytes>,
    /// What REPLCONF told us before SYNC / PSYNC (a replica connecting to us).
    pub replconf: ReplConf,
    /// SCRIPT DEBUG: whether this client's next EVAL runs under the Lua debugger.
    pub lua_debug: LuaDebug,
    /// The connection is TLS (cluster replies show TLS ports to such a client, as Redis 7.2).
    pub tls: bool,
    /// Full name of the top-level command running (EXEC, EVAL...): the ACL LOG entry of a
    /// refusal inside it shows the client running that command (Redis 7.2's current_client).
    pub running: &'static str,
}

impl Client {
    /// Redis's mustObeyClient: our master's link or the AOF loader, whose writes a read-only
    /// replica or a failing disk does not refuse.
    pub fn must_obey(&self) -> bool {
        self.is_master || self.loading_aof
    }

    /// The frozen time in unix µs (see `frozen_time`), read from the clock once and kept, so
    /// every TIME of the unit gives the same answer; None when the time is not frozen.
    pub fn frozen_unix_us(&mut self) -> Option<i64> {
        let (at, us) = self.frozen_time.as_mut()?;
        Some(*us.get_or_insert_with(|| crate::keyspace::clock::unix_us_at(*at)))
    }

    /// Redis's CLIENT_SLAVE: a replica attached to us, or a MONITOR (which Redis flags as a
    /// replica too). Such a client may not touch the keyspace, is never paused and never
    /// times out.
    pub fn replica_flagged(&self) -> bool {
        self.is_replica || self.monitor
    }

    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        Self::with_cas_flag(handle, authenticated, Arc::new(AtomicBool::new(false)))
    }

    /// The client a script's commands run as. WATCH is refused in scripts, so its WATCH flag is
    /// never registered anywhere: every script client shares one, and a script run allocates
    /// none.
    pub fn for_script(handle: Arc<ClientHandle>) -> Self {
        static NEVER_WATCHES: std::sync::LazyLock<Arc<AtomicBool>> =
            std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));
        Self::with_cas_flag(handle, true, NEVER_WATCHES.clone())
    }

    fn with_cas_flag(handle: Arc<ClientHandle>, authenticated: bool, cas_dirty: Arc<AtomicBool>) -> Self {
        Client {
            id: handle.id,
            handle,
            db: 0,
            proto: Proto::Resp2,
            authenticated,
            user: None,
            name: None,
            reply_mode: ReplyMode::On,
            no_evict: false,
            no_touch: false,
            last_cmd: "NULL",
            running: "NULL",
            batch_began: None,
            block_retry: false,
            woff: 0,
            repl_woff: 0,
            replconf: ReplConf::default(),
            kill_after: Vec::new(),
            own_frame: None,
            block_undo: Vec::new(),
            block_woken_by: Vec::new(),
            multi: None,
            watched: Vec::new(),
            cas_dirty,
            after_exec: Vec::new(),
            subs: Default::default(),
            script: false,
            frozen_time: None,
            tracking: None,
            is_master: false,
            loading_aof: false,
            is_replica: false,
            monitor: false,
            in_exec: false,
            readonly: false,
            asking: false,
            slot: None,
            cross_slot: false,
            lua_debug: LuaDebug::Off,
            tls: false,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's name (CLIENT SETNAME, HELLO SETNAME).
    pub fn name(&self) -> Option<&Bytes> {
        self.name.as_ref()
    }

    /// Set (or clear) the client's name, and show it in CLIENT LIST.
    pub fn set_name(&mut self, name: Option<Bytes>) {
        self.handle.view.lock().name.clone_from(&name);
        self.name = name;
    }

    /// CLIENT SETINFO LIB-NAME (`lib_name`) or LIB-VER: show it in CLIENT LIST.
    pub fn set_lib(&mut self, lib_name: bool, value: Option<Bytes>) {
        let mut v = self.handle.view.lock();
        if lib_name {
            v.lib_name = value;
        } else {
            v.lib_ver = value;
        }
    }

    /// Publish the fields CLIENT LIST shows while this client runs `args` (CLIENT LIST / INFO
    /// about itself): its input buffer still holds the request, as Redis's does.
    pub fn sync_current(&self, name: &'static str, args: &[Bytes]) {
        let digits = |n: usize| n.to_string().len();
        let request: usize = 3 + digits(args.len()) + args.iter().map(|a| 5 + digits(a.len()) + a.len()).sum::<usize>();
        // What the request takes of the buffer is not free: qbuf + qbuf-free stays the buffer's
        // size, as Redis shows it (however many requests of the batch show the client).
        let held = {
            let v = self.handle.view.lock();
            v.qbuf + v.qbuf_free
        };
        self.sync_view(name, request);
        let mut v = self.handle.view.lock();
        v.argv_mem = args.iter().map(|a| a.len()).sum();
        v.running_argv = v.argv_mem;
        v.qbuf_free = held.saturating_sub(request);
    }

    /// Publish the fields CLIENT LIST shows.
    pub fn sync_view(&self, last_cmd: &'static str, qbuf: usize) {
        self.sync_view_with(last_cmd, qbuf, None);
    }

    /// [`Self::sync_view`], with the connection's buffer figures after a batch: unused input
    /// capacity, reply buffer capacity and the most it held. Returns the view's memory apart
    /// from output, as published (see `ClientHandle::view_memory_base`).
    pub fn sync_view_with(&self, last_cmd: &'static str, qbuf: usize, buffers: Option<(usize, usize, usize)>) -> usize {
        let mut v = self.handle.view.lock();
        if let Some((qbuf_free, rbs, rbp)) = buffers {
            v.qbuf_free = qbuf_free;
            v.rbs = rbs;
            v.rbp = rbp;
        }
        v.db = self.db;
        v.last_cmd = last_cmd;
        v.resp = if self.proto == Proto::Resp3 { 3 } else { 2 };
        v.qbuf = qbuf;
        v.no_evict = self.no_evict;
        v.no_touch = self.no_touch;
        v.sub = self.subs.channels.len();
        v.psub = self.subs.patterns.len();
        v.ssub = self.subs.shard_channels.len();
        v.multi = self.multi.as_ref().map_or(-1, |m| m.commands.len() as i64);
        v.multi_mem = self
            .multi
            .as_ref()
            .map_or(0, |m| m.commands.iter().map(|c| c.iter().map(|a| a.len()).sum::<usize>() + 8 * c.len()).sum());
        v.monitor = self.monitor;
        v.argv_mem = 0;
        v.running_argv = 0;
        v.tracking = self.tracking.as_ref().map(|t| (t.opts.bcast, t.broken.load(Ordering::Relaxed), t.redirect));
        ClientHandle::memory_base_of(&v)
    }
}

/// A client's SCRIPT DEBUG mode (Redis's CLIENT_LUA_DEBUG / CLIENT_LUA_DEBUG_SYNC flags); the
/// debugger itself is `scripting::ldb`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LuaDebug {
    #[default]
    Off,
    /// SCRIPT DEBUG YES (Redis forks; see `scripting::ldb` for what Ferrous does instead).
    Yes,
    /// SCRIPT DEBUG SYNC.
    Sync,
}

impl LuaDebug {
    /// Whether the next EVAL starts a debugging session.
    pub fn on(self) -> bool {
        matches!(self, LuaDebug::Yes | LuaDebug::Sync)
    }
}
