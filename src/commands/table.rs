//! The command table: every family's specs gathered in one registry, looked up by name
//! (case-insensitively), with per-command statistics for INFO commandstats.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::util::striped::CounterSet;

use super::key_specs::{self, kflags, BeginSearch, FindKeys, Keys};
use super::meta::{self, Meta};
use super::CommandSpec;

/// Per-command counters (INFO commandstats), kept per worker thread (`util::striped`): every
/// call writes them, and one set for all workers moved its cache line between cores at each
/// call.
#[derive(Default)]
pub struct CmdStats {
    /// [`CALLS`], [`USEC`], [`REJECTED`], [`FAILED`], added together in one line per thread.
    counts: CounterSet<4>,
    /// LATENCY HISTOGRAM / INFO latencystats.
    pub latency: crate::metrics::latency::CommandHistogram,
}

const CALLS: usize = 0;
const USEC: usize = 1;
const REJECTED: usize = 2;
const FAILED: usize = 3;

impl CmdStats {
    /// A call that ran for `usec` microseconds (and failed, or not).
    #[inline]
    pub fn record_call(&self, usec: u64, failed: bool) {
        let c = self.counts.local();
        c[CALLS].fetch_add(1, Ordering::Relaxed);
        c[USEC].fetch_add(usec, Ordering::Relaxed);
        if failed {
            c[FAILED].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A call refused before it ran.
    pub fn record_rejected(&self) {
        self.counts.local()[REJECTED].fetch_add(1, Ordering::Relaxed);
    }

    /// Undo the count of a call (a blocking command counted when it is finally served): never
    /// below zero.
    pub fn uncount_call(&self) {
        if self.calls() > 0 {
            self.counts.local()[CALLS].fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn calls(&self) -> u64 {
        // Below zero (wrapped) only in a race of an uncount with CONFIG RESETSTAT.
        (self.counts.get(CALLS) as i64).max(0) as u64
    }

    pub fn usec(&self) -> u64 {
        self.counts.get(USEC)
    }

    pub fn rejected(&self) -> u64 {
        self.counts.get(REJECTED)
    }

    pub fn failed(&self) -> u64 {
        self.counts.get(FAILED)
    }

    pub fn reset(&self) {
        for i in [CALLS, USEC, REJECTED, FAILED] {
            self.counts.set(i, 0);
        }
        self.latency.reset();
    }
}

/// A command as registered: its handler and Ferrous flags (`spec`), its metadata (`meta`),
/// full name (`parent|sub` for subcommands), stats and subcommands.
pub struct Command {
    pub spec: &'static CommandSpec,
    pub meta: &'static Meta,
    pub full_name: String,
    /// Redis's flags from the metadata and Ferrous's own, together.
    pub flags: u64,
    /// Every key spec is a fixed index and range (most commands): keys are found by arithmetic
    /// on the hot path, without building a list (see [`Command::for_each_key`]).
    simple_keys: bool,
    pub stats: CmdStats,
    pub subcommands: HashMap<String, Command>,
    pub parent: Option<&'static CommandSpec>,
    /// The command's bit in ACL command bitmaps: its rank by full name among every command
    /// and subcommand (see `acl::Catalog`).
    pub acl_id: usize,
}

impl Command {
    fn new(spec: &'static CommandSpec, parent: Option<&'static CommandSpec>) -> Self {
        let full_name = match parent {
            Some(p) => format!("{}|{}", p.name, spec.name),
            None => spec.name.to_string(),
        };
        let meta = meta::get(&full_name).unwrap_or_else(|| panic!("no metadata for command {full_name}"));
        // Subcommands inherit the Ferrous flags of their container (CLIENT's KEEPS_CACHING...).
        let inherited = parent.map_or(0, |p| p.internal);
        // (A key finder that only refines flags — SET, BITFIELD — finds no other positions.)
        let simple_keys = meta.key_specs.iter().all(|k| {
            k.flags & (kflags::NOT_KEY | kflags::INCOMPLETE) == 0
                && matches!(k.begin, BeginSearch::Index(_))
                && matches!(k.find, FindKeys::Range { limit: 0, .. })
        });
        Command {
            spec,
            meta,
            simple_keys,
            flags: meta.flags | spec.internal | inherited,
            full_name,
            stats: CmdStats::default(),
            subcommands: spec.subcommands.iter().map(|s| (s.name.to_string(), Command::new(s, Some(spec)))).collect(),
            parent,
            acl_id: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.full_name
    }

    pub fn arity(&self) -> i32 {
        self.meta.arity
    }

    pub fn has_flag(&self, f: u64) -> bool {
        self.flags & f != 0
    }

    /// Whether `argc` arguments (the command name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let (arity, argc) = (self.meta.arity, argc as i64);
        !((arity > 0 && arity as i64 != argc) || argc < -(arity as i64))
    }

    /// Every argument of a call that may be a key (locking, WATCH, blocking, tracking), from
    /// the key specs and the command's key finder.
    pub fn keys(&self, args: &[bytes::Bytes]) -> Keys {
        key_specs::touched_keys(&self.meta.key_specs, self.spec.getkeys, self.meta.arity, args)
    }

    /// Call `f` with the position of every argument that may be a key (the same as
    /// [`Command::keys`], without building a list when the specs are fixed ranges).
    #[inline]
    pub fn for_each_key(&self, args: &[bytes::Bytes], mut f: impl FnMut(usize)) {
        if !self.for_each_simple_key(args.len(), &mut f) {
            self.keys(args).iter().for_each(|k| f(k.pos));
        }
    }

    /// [`Command::for_each_key`] for a command whose key specs are fixed ranges, which only the
    /// argument count decides; false (and no call) for any other command.
    #[inline]
    pub fn for_each_simple_key(&self, argc: usize, mut f: impl FnMut(usize)) -> bool {
        if !self.simple_keys {
            return false;
        }
        let argc = argc as i64;
        for spec in &self.meta.key_specs {
            let (BeginSearch::Index(first), FindKeys::Range { lastkey, keystep, .. }) = (&spec.begin, &spec.find)
            else {
                continue;
            };
            let first = *first as i64;
            let last = if *lastkey >= 0 { first + *lastkey as i64 } else { argc + *lastkey as i64 };
            // A spec that does not fit the call is skipped, as key_specs::touched_keys does.
            if last >= argc || last < first || first >= argc {
                continue;
            }
            let mut i = first;
            while i <= last {
                f(i as usize);
                i += (*keystep as i64).max(1);
            }
        }
        true
    }

    /// The keys of a call exactly as Redis reports them (COMMAND GETKEYS; later ACL and
    /// cluster checks): empty when the call does not fit the specs.
    pub fn reported_keys(&self, args: &[bytes::Bytes]) -> Keys {
        key_specs::keys_of(&self.meta.key_specs, self.spec.getkeys, self.meta.arity, args)
    }

    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// Look a subcommand up by name, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&Command> {
        let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        self.subcommands.get(&lower)
    }

    /// ACL categories, in Redis's order.
    pub fn acl_categories(&self) -> impl Iterator<Item = &'static str> + '_ {
        super::ACL_CATEGORIES.iter().enumerate().filter(|(i, _)| self.meta.acl & (1 << i) != 0).map(|(_, c)| *c)
    }
}

pub struct CommandTable {
    commands: HashMap<String, Command, ahash::RandomState>,
    /// Commands `rename-command` removed (renamed to ""): ACL rules still name them.
    removed: Vec<Command>,
}

impl CommandTable {
    fn build() -> Self {
        let families: &[&'static [CommandSpec]] = &[
            super::strings::COMMANDS,
            super::bitmaps::COMMANDS,
            super::keys::COMMANDS,
            super::lists::COMMANDS,
            super::hashes::COMMANDS,
            super::hash_expire::COMMANDS,
            super::sets::COMMANDS,
            super::zsets::COMMANDS,
            super::connection::COMMANDS,
            super::server::COMMANDS,
            super::introspection::COMMANDS,
            super::replication::COMMANDS,
            super::transactions::COMMANDS,
            super::pubsub::COMMANDS,
            super::blocking::COMMANDS,
            super::sort::COMMANDS,
            super::persistence::COMMANDS,
            super::scripting::COMMANDS,
            super::functions::COMMANDS,
            super::hyperloglog::COMMANDS,
            super::geo::COMMANDS,
            super::observability::COMMANDS,
            super::migrate::COMMANDS,
            super::cluster::COMMANDS,
            super::streams::COMMANDS,
            super::acl::COMMANDS,
            super::module::COMMANDS,
            super::sentinel::COMMANDS,
        ];
        let sentinel = sentinel_mode();
        let mut commands = HashMap::default();
        for fam in families {
            for spec in fam.iter() {
                // Redis 7.2's command flags SENTINEL (exists in sentinel mode too) and
                // ONLY_SENTINEL (exists only there).
                let keep = if sentinel {
                    crate::sentinel::commands::allowed(spec.name)
                } else {
                    !crate::sentinel::commands::only_sentinel(spec.name)
                };
                if !keep {
                    continue;
                }
                let mut cmd = Command::new(spec, None);
                if sentinel {
                    cmd.subcommands.retain(|_, sub| crate::sentinel::commands::allowed(&sub.full_name));
                }
                let prev = commands.insert(spec.name.to_string(), cmd);
                assert!(prev.is_none(), "command {} registered twice", spec.name);
            }
        }
        // ACL ids: every full name's rank, as acl::Catalog numbers them.
        let mut names: Vec<String> = commands
            .values()
            .flat_map(|c: &Command| {
                std::iter::once(c.full_name.clone()).chain(c.subcommands.values().map(|s| s.full_name.clone()))
            })
            .collect();
        names.sort();
        let rank = |n: &str| names.binary_search_by(|x| x.as_str().cmp(n)).unwrap_or(0);
        for c in commands.values_mut() {
            c.acl_id = rank(&c.full_name);
            for s in c.subcommands.values_mut() {
                s.acl_id = rank(&s.full_name);
            }
        }
        let mut removed = Vec::new();
        for (from, to) in RENAMES.get().into_iter().flatten() {
            match rename(&mut commands, from, to) {
                Ok(Some(gone)) => removed.push(gone),
                Ok(None) => {}
                Err(e) => {
                    let _ = RENAME_ERROR.set(e);
                    break;
                }
            }
        }
        CommandTable { commands, removed }
    }

    /// Every command as registered, under its original name, renamed away or not (what ACL
    /// rules name: Redis's `orig_commands`).
    pub fn originals(&self) -> impl Iterator<Item = &Command> {
        self.commands.values().chain(self.removed.iter())
    }

    /// Look a command up by its name, case-insensitively, without allocating for short names.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 32];
        if name.len() <= buf.len() {
            let mut ascii = true;
            for (d, s) in buf.iter_mut().zip(name) {
                ascii &= s.is_ascii();
                *d = s.to_ascii_lowercase();
            }
            let lower = &buf[..name.len()];
            let lower = if ascii {
                // SAFETY: every byte was just checked to be ASCII, which is valid UTF-8 (this
                // runs for every command: the general check costs more than the lookup).
                unsafe { std::str::from_utf8_unchecked(lower) }
            } else {
                std::str::from_utf8(lower).ok()?
            };
            self.commands.get(lower)
        } else {
            None
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.commands.values()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// Sentinel mode: set once at start-up, before the table is built (it then holds only the
/// commands Redis 7.2 flags SENTINEL or ONLY_SENTINEL).
static SENTINEL_MODE: OnceLock<bool> = OnceLock::new();

/// Build the table for sentinel mode (call before anything looks a command up).
pub fn set_sentinel_mode() {
    let _ = SENTINEL_MODE.set(true);
}

/// Whether the command table is sentinel mode's.
pub fn sentinel_mode() -> bool {
    SENTINEL_MODE.get().copied().unwrap_or(false)
}

/// `rename-command` directives, set once at start-up before the table is built.
static RENAMES: OnceLock<Vec<(String, String)>> = OnceLock::new();
static RENAME_ERROR: OnceLock<String> = OnceLock::new();

/// Apply `rename-command <from> <to>` directives (an empty `to` removes the command); Err with
/// Redis's text when one cannot be applied.
pub fn apply_renames(renames: &[(String, String)]) -> Result<(), String> {
    let _ = RENAMES.set(renames.to_vec());
    table();
    match RENAME_ERROR.get() {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

/// Ok(Some(command)) when the command was removed (renamed to "").
fn rename(
    commands: &mut HashMap<String, Command, ahash::RandomState>,
    from: &str,
    to: &str,
) -> Result<Option<Command>, String> {
    let Some(cmd) = commands.remove(&from.to_ascii_lowercase()) else {
        return Err(format!("No such command in rename-command: {from}"));
    };
    if to.is_empty() {
        return Ok(Some(cmd));
    }
    if commands.insert(to.to_ascii_lowercase(), cmd).is_some() {
        return Err(format!("Target command name already exists: {to}"));
    }
    Ok(None)
}

/// The process-wide command table.
pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(CommandTable::build)
}

/// [`CommandTable::lookup`] in the process-wide table, remembering the last few names this
/// thread looked up exactly as they were spelled (one per slot, the slot chosen by the first
/// letter and the length): a pipeline or a busy client usually repeats a few commands (a
/// script's EVALSHA and the command it calls, MULTI / EXEC around writes), and comparing a few
/// bytes costs a fraction of lower-casing and hashing the name (this runs for every command).
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    const CAP: usize = 16;
    const SLOTS: usize = 8;
    type Recent = ([u8; CAP], u8, Option<&'static Command>);
    thread_local! {
        static RECENT: [std::cell::Cell<Recent>; SLOTS] =
            const { [const { std::cell::Cell::new(([0; CAP], 0, None)) }; SLOTS] };
    }
    let slot = name.first().map_or(0, |&b| (b | 0x20) as usize + name.len()) % SLOTS;
    let (bytes, len, cmd) = RECENT.with(|r| r[slot].get());
    if cmd.is_some() && name.len() == len as usize && name == &bytes[..name.len()] {
        return cmd;
    }
    let found = table().lookup(name);
    if found.is_some() && name.len() <= CAP {
        let mut copy = [0; CAP];
        copy[..name.len()].copy_from_slice(name);
        RECENT.with(|r| r[slot].set((copy, name.len() as u8, found)));
    }
    found
}

/// The command a request names (Redis's lookupCommand): its first argument's command, or that
/// container's subcommand when there is a second argument. None when either is unknown. No
/// arity check.
pub fn lookup_args(args: &[Bytes]) -> Option<&'static Command> {
    let cmd = lookup(args.first()?)?;
    match args.get(1) {
        Some(sub) if cmd.is_container() => cmd.subcommand(sub),
        _ => Some(cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_lookup_follows_the_name() {
        assert_eq!(lookup(b"GET").map(|c| c.spec.name), Some("get"));
        assert_eq!(lookup(b"GET").map(|c| c.spec.name), Some("get"));
        assert_eq!(lookup(b"set").map(|c| c.spec.name), Some("set"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert_eq!(lookup(b"gEt").map(|c| c.spec.name), Some("get"));
    }

    #[test]
    fn alternating_and_colliding_names_each_find_their_command() {
        // SET and RPOP share a slot (same first letter class and length sum); EVALSHA and
        // INCR alternate as a script's calls do.
        for _ in 0..3 {
            for (name, want) in [(&b"SET"[..], "set"), (b"RPOP", "rpop"), (b"evalsha", "evalsha"), (b"INCR", "incr")] {
                assert_eq!(lookup(name).map(|c| c.spec.name), Some(want));
            }
            assert!(lookup(b"SETX").is_none());
            assert!(lookup(b"").is_none());
        }
    }

    #[test]
    fn every_command_has_metadata_and_consistent_flags() {
        let t = table();
        assert!(t.lookup(b"GeT").is_some());
        assert!(t.lookup(b"nosuchcommand").is_none());
        for c in t.iter() {
            assert_eq!(c.spec.name, c.spec.name.to_ascii_lowercase());
            assert!(c.arity() != 0, "{} has arity 0", c.full_name);
            assert!(
                !(c.has_flag(crate::commands::flags::WRITE) && c.has_flag(crate::commands::flags::READONLY)),
                "{} is both write and readonly",
                c.full_name
            );
            // A key finder exactly where the specs cannot find every key or its flags (Redis's
            // getkeys_proc): incomplete specs or variable flags.
            use crate::commands::key_specs::kflags;
            let needs = c.meta.key_specs.iter().any(|k| k.flags & (kflags::INCOMPLETE | kflags::VARIABLE_FLAGS) != 0);
            if needs {
                assert!(c.spec.getkeys.is_some(), "{} needs a key finder", c.full_name);
            }
            if c.spec.getkeys.is_some() {
                assert!(needs || c.has_flag(crate::commands::flags::MOVABLE_KEYS), "{}", c.full_name);
            }
            for sub in c.subcommands.values() {
                assert!(sub.full_name.contains('|'));
            }
        }
    }

    #[test]
    fn the_fast_key_path_finds_what_the_specs_find() {
        for c in table().iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.values())) {
            for argc in (1..10).filter(|&n| c.arity_ok(n)) {
                let args: Vec<bytes::Bytes> =
                    (0..argc).map(|i| bytes::Bytes::from(format!("a{i}"))).collect::<Vec<_>>();
                let mut fast = Vec::new();
                c.for_each_key(&args, |i| fast.push(i));
                let slow: Vec<usize> = c.keys(&args).iter().map(|k| k.pos).collect();
                assert_eq!(fast, slow, "{} with {argc} arguments", c.full_name);
            }
        }
    }

    #[test]
    fn keys_follow_the_specs() {
        let t = table();
        let args = |s: &str| s.split(' ').map(|w| bytes::Bytes::copy_from_slice(w.as_bytes())).collect::<Vec<_>>();
        let pos =
            |name: &[u8], a: &str| t.lookup(name).unwrap().keys(&args(a)).iter().map(|k| k.pos).collect::<Vec<_>>();
        assert_eq!(pos(b"mset", "MSET a 1 b 2"), vec![1, 3]);
        assert_eq!(pos(b"del", "DEL a b c"), vec![1, 2, 3]);
        assert_eq!(pos(b"ping", "PING x"), Vec::<usize>::new());
        assert_eq!(pos(b"zunionstore", "ZUNIONSTORE d 2 a b"), vec![1, 3, 4]);
    }
}
