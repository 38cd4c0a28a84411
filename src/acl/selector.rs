//! A selector: one set of permissions — the commands it may run (a bitmap over the catalog's
//! command ids, plus "first arguments" allowed for otherwise blocked commands), the keys it
//! may read or write (glob patterns with %R/%W flags) and the Pub/Sub channels it may use. A
//! user has a root selector and any number of extra `(...)` selectors (ACL v2); a command is
//! allowed when one of them allows it. Rules and checks follow Redis 7.2's acl.c.

use std::collections::BTreeMap;

use super::catalog::{Catalog, Channels, CmdInfo, COMMAND_BITS, FUTURE_BIT};
use super::RuleError;
use crate::util::glob::glob_match;

/// Key permission bits.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const READ_WRITE: u8 = READ | WRITE;

/// A key pattern and what it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub flags: u8,
    pub pattern: Vec<u8>,
}

impl KeyPattern {
    /// `~pat`, `%R~pat`, `%W~pat` (a pattern always has a permission: `%~pat` is refused).
    pub fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.flags {
            READ_WRITE => b"~" as &[u8],
            READ => b"%R~",
            WRITE => b"%W~",
            _ => b"%~",
        });
        out.extend_from_slice(&self.pattern);
    }
}

/// Why a selector (or a user) refuses a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The command (or subcommand) is not allowed.
    Command,
    /// The key at this argument position is not allowed.
    Key(usize),
    /// The channel at this argument position is not allowed.
    Channel(usize),
}

impl Denied {
    /// Redis's ACL_DENIED_* number (CMD 1, KEY 2, CHANNEL 4): the most relevant refusal of
    /// several selectors is the highest, then the latest argument.
    fn rank(&self) -> (u8, usize) {
        match *self {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        }
    }

    /// The most relevant of two refusals (Redis's ACLCheckAllUserCommandPerm).
    pub fn most_relevant(self, other: Denied) -> Denied {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// A key argument of a call, with the permissions it needs.
#[derive(Clone, Copy, Debug)]
pub struct KeyArg {
    pub pos: usize,
    /// READ and/or WRITE (0: any pattern matches, as for keys whose spec has no access flags).
    pub needs: u8,
}

/// A command call, as the checks see it.
pub struct Call<'a> {
    pub cmd: &'a CmdInfo,
    pub args: &'a [bytes::Bytes],
    /// Whether the command may have keys at all (Redis's doesCommandHaveKeys).
    pub has_keys: bool,
    /// Finds the call's keys (Redis's getKeysFromCommandWithSpecs); run at most once, when a
    /// selector needs them.
    pub find_keys: &'a dyn Fn() -> Vec<KeyArg>,
    pub keys: std::cell::OnceCell<Vec<KeyArg>>,
}

impl<'a> Call<'a> {
    pub fn new(
        cmd: &'a CmdInfo,
        args: &'a [bytes::Bytes],
        has_keys: bool,
        find_keys: &'a dyn Fn() -> Vec<KeyArg>,
    ) -> Self {
        Call { cmd, args, has_keys, find_keys, keys: std::cell::OnceCell::new() }
    }

    fn keys(&self) -> &[KeyArg] {
        self.keys.get_or_init(|| (self.find_keys)())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub root: bool,
    pub all_keys: bool,
    pub all_channels: bool,
    pub all_commands: bool,
    pub allowed: [u64; COMMAND_BITS / 64],
    /// Command id → first arguments allowed although the command is not (`+select|0`).
    pub firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    pub patterns: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
    /// The command rules given since the last `+@all`/`-@all`, in order, lower-cased, each
    /// `+name` or `-name` (`name`: a command's full name, `@category`, or `command|firstarg`),
    /// a later rule on the same name (or on a container, for its subcommands' rules) replacing
    /// the earlier one: Redis 7.2's `command_rules`, which ACL LIST and GETUSER print back.
    pub rules: Vec<Vec<u8>>,
}

/// A C string's view of an argument: up to its first NUL (Redis compares rule keywords and
/// looks command names up with C string functions).
pub use crate::util::bytetext::c_str as cstr;

/// Whether a byte string holds white space or NUL (not allowed in user names and patterns).
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c == 0 || matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
}

impl Selector {
    /// An empty selector (no permission at all); `all_channels` from `acl-pubsub-default`.
    pub fn new(root: bool, all_channels: bool) -> Selector {
        Selector {
            root,
            all_keys: false,
            all_channels,
            all_commands: false,
            allowed: [0; COMMAND_BITS / 64],
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }

    pub fn bit(&self, id: usize) -> bool {
        id < COMMAND_BITS && self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if id >= COMMAND_BITS {
            return;
        }
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Allow or block a command, and every subcommand of a container (ACLChangeSelectorPerm).
    pub fn change_perm(&mut self, cat: &Catalog, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &sub in &cat.get(id).subs {
            self.set_bit(sub, allow);
        }
    }

    /// `+@cat` / `-@cat`: every command of the category (containers first, then their
    /// subcommands of the category).
    pub fn set_category(&mut self, cat: &Catalog, flag: u32, allow: bool) {
        for &top in &cat.top {
            let cmd = cat.get(top);
            if cmd.categories & flag != 0 {
                self.change_perm(cat, top, allow);
            }
            for &sub in &cmd.subs {
                if cat.get(sub).categories & flag != 0 {
                    self.change_perm(cat, sub, allow);
                }
            }
        }
    }

    /// Commands of a category this selector allows and blocks.
    pub fn count_category(&self, cat: &Catalog, flag: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for c in cat.walk() {
            if c.categories & flag != 0 {
                if self.bit(c.id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    fn set_all(&mut self, allow: bool) {
        self.allowed = [if allow { u64::MAX } else { 0 }; COMMAND_BITS / 64];
        self.all_commands = allow;
        self.firstargs.clear();
        self.rules.clear();
    }

    /// Record a command rule (Redis 7.2's ACLUpdateCommandRules): drop the earlier rule on the
    /// same name, and those on its subcommands or first arguments (`name|...`), then append
    /// this one.
    fn update_rules(&mut self, name: &[u8], allow: bool) {
        let name = name.to_ascii_lowercase();
        self.rules.retain(|r| {
            let existing = &r[1..];
            !(existing == name.as_slice()
                || (existing.len() > name.len() && existing.starts_with(&name) && existing[name.len()] == b'|'))
        });
        let mut rule = Vec::with_capacity(name.len() + 1);
        rule.push(if allow { b'+' } else { b'-' });
        rule.extend_from_slice(&name);
        self.rules.push(rule);
    }

    /// Whether `+@all` (or `allcommands`) built this selector: it may run commands added later.
    pub fn future_commands(&self) -> bool {
        self.bit(FUTURE_BIT)
    }

    fn add_firstarg(&mut self, id: usize, arg: &[u8]) {
        let list = self.firstargs.entry(id).or_default();
        if !list.iter().any(|a| a.eq_ignore_ascii_case(arg)) {
            list.push(arg.to_vec());
        }
    }

    /// Apply one rule (Redis's ACLSetSelector). `pubsub_default`: unused here (flags of new
    /// selectors are set where they are created).
    pub fn apply(&mut self, cat: &Catalog, op: &[u8]) -> Result<(), RuleError> {
        let word = cstr(op);
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || is("~*") {
            self.all_keys = true;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.patterns.clear();
        } else if is("allchannels") || is("&*") {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all(false);
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            if self.all_keys {
                return Err(RuleError::KeysAfterAll);
            }
            let mut flags = 0u8;
            let mut offset = 1;
            if op[0] == b'%' {
                while offset < op.len() {
                    let c = op[offset];
                    if c.eq_ignore_ascii_case(&b'R') && flags & READ == 0 {
                        flags |= READ;
                    } else if c.eq_ignore_ascii_case(&b'W') && flags & WRITE == 0 {
                        flags |= WRITE;
                    } else if c == b'~' {
                        offset += 1;
                        break;
                    } else {
                        return Err(RuleError::Syntax);
                    }
                    offset += 1;
                }
                // Neither R nor W (`%`, `%~key`) is a syntax error, not a pattern without
                // permissions (CVE-2024-31227 and CVE-2024-51741, fixed in Redis 7.2.6 and 7.2.7).
                if flags == 0 {
                    return Err(RuleError::Syntax);
                }
            } else {
                flags = READ_WRITE;
            }
            let pattern = &op[offset.min(op.len())..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            match self.patterns.iter_mut().find(|p| p.pattern == pattern) {
                Some(p) => p.flags |= flags,
                None => self.patterns.push(KeyPattern { flags, pattern: pattern.to_vec() }),
            }
            self.all_keys = false;
        } else if op.first() == Some(&b'&') {
            if self.all_channels {
                return Err(RuleError::ChannelsAfterAll);
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pattern) {
                self.channels.push(pattern.to_vec());
            }
            self.all_channels = false;
        } else if word.first() == Some(&b'+') && word.get(1) != Some(&b'@') {
            let name = &word[1..];
            match memchr::memrchr(b'|', name) {
                None => {
                    let cmd = cat.lookup(name).ok_or(RuleError::Unknown)?;
                    self.change_perm(cat, cmd.id, true);
                    self.update_rules(cmd.full_name.as_bytes(), true);
                }
                Some(bar) => {
                    let (base, sub) = (&name[..bar], &name[bar + 1..]);
                    let cmd = cat.lookup(base).ok_or(RuleError::Unknown)?;
                    if cmd.parent.is_some() {
                        return Err(RuleError::FirstArgOfSubcommand);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !cmd.subs.is_empty() {
                        let id = cat.lookup(name).ok_or(RuleError::Unknown)?.id;
                        self.change_perm(cat, id, true);
                    } else {
                        crate::acl::warn_firstarg(name);
                        self.add_firstarg(cmd.id, sub);
                    }
                    self.update_rules(name, true);
                }
            }
        } else if word.first() == Some(&b'-') && word.get(1) != Some(&b'@') {
            let cmd = cat.lookup(&word[1..]).ok_or(RuleError::Unknown)?;
            self.change_perm(cat, cmd.id, false);
            self.update_rules(cmd.full_name.as_bytes(), false);
        } else if matches!(word.first(), Some(b'+' | b'-')) && word.get(1) == Some(&b'@') {
            let flag = super::catalog::category(&word[2..]).ok_or(RuleError::Unknown)?;
            self.update_rules(&word[1..], word[0] == b'+');
            self.set_category(cat, flag, word[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// Whether a key may be used with these permissions (ACLSelectorCheckKey).
    pub fn key_allowed(&self, key: &[u8], needs: u8) -> bool {
        self.all_keys || self.patterns.iter().any(|p| p.flags & needs == needs && glob_match(&p.pattern, key, false))
    }

    /// Whether a `*` pattern grants these permissions on every key
    /// (ACLSelectorHasUnrestrictedKeyAccess).
    pub fn unrestricted_keys(&self, needs: u8) -> bool {
        self.all_keys || self.patterns.iter().any(|p| p.flags & needs == needs && p.pattern == b"*")
    }

    /// Whether a channel (or, for PSUBSCRIBE, a pattern, compared literally) may be used.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels || channel_in(&self.channels, channel, is_pattern)
    }

    /// Check a call (ACLSelectorCheckCmd).
    pub fn check(&self, call: &Call) -> Result<(), Denied> {
        let cmd = call.cmd;
        if !self.all_commands && !cmd.no_auth && !self.bit(cmd.id) {
            let Some(allowed) = self.firstargs.get(&cmd.id).filter(|_| call.args.len() >= 2) else {
                return Err(Denied::Command);
            };
            let idx = if cmd.parent.is_some() { 2 } else { 1 };
            let arg = call.args.get(idx).map(|a| cstr(a)).unwrap_or(b"");
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(arg)) {
                return Err(Denied::Command);
            }
        }
        if !self.all_keys && call.has_keys {
            for k in call.keys() {
                if !self.key_allowed(&call.args[k.pos], k.needs) {
                    return Err(Denied::Key(k.pos));
                }
            }
        }
        if !self.all_channels && cmd.channels != Channels::None {
            let (range, pattern) = match cmd.channels {
                Channels::Publish => (1..2.min(call.args.len()), false),
                Channels::Subscribe => (1..call.args.len(), false),
                _ => (1..call.args.len(), true),
            };
            for pos in range {
                if !channel_in(&self.channels, &call.args[pos], pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }
}

/// Redis's ACLCheckChannelAgainstList: a channel matches the patterns as a glob; a pattern
/// (PSUBSCRIBE's argument) only matches an identical ACL pattern.
pub fn channel_in(list: &[Vec<u8>], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| if is_pattern { cstr(p) == cstr(channel) } else { glob_match(p, channel, false) })
}
