//! Access control lists, as Redis 7.2: users (on/off, passwords, selectors), the rules that
//! build them (ACL SETUSER, `user` directives, the ACL file), the permission checks every
//! command passes, and the ACL LOG. This module knows nothing of connections or the command
//! table: the command layer gives it a [`catalog::Catalog`] of the commands and, for each
//! call, the command and its keys (see `commands::acl`).
//!
//! Users live in a registry sorted by name (Redis's rax order). A connection holds an
//! `Arc<UserCell>`; changing a user swaps the cell's rules atomically, so connections see the
//! new rules on their next command without any lock on the hot path.

pub mod catalog;
pub mod describe;
pub mod file;
pub mod log;
pub mod password;
pub mod selector;
pub mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};

pub use catalog::Catalog;
pub use selector::{Call, Denied, KeyArg};
pub use user::User;

/// Why a rule was refused (Redis's errno values of ACLSetUser), with Redis's texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL
    Syntax,
    /// ENOENT
    Unknown,
    /// EEXIST
    KeysAfterAll,
    /// EISDIR
    ChannelsAfterAll,
    /// ENODEV
    NoSuchPassword,
    /// EBADMSG
    BadHash,
    /// EALREADY
    Duplicate,
    /// ECHILD
    FirstArgOfSubcommand,
}

impl RuleError {
    /// Redis's ACLSetUserStringError.
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
            RuleError::FirstArgOfSubcommand => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Where warnings go (the server's log; set once at start-up).
pub static WARN: OnceLock<fn(&str)> = OnceLock::new();

pub(crate) fn warn(line: &str) {
    if let Some(f) = WARN.get() {
        f(line)
    }
}

pub(crate) fn warn_firstarg(rule: &[u8]) {
    warn(&format!(
        "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
        String::from_utf8_lossy(rule)
    ));
}

/// A user: its name and its current rules.
pub struct UserCell {
    pub name: Vec<u8>,
    rules: ArcSwap<User>,
    /// Whether the current rules allow every command on every key and channel (`rules()`'s
    /// `unrestricted`), readable without loading the rules: the per-command check of the
    /// usual `default` user is one load.
    unrestricted: std::sync::atomic::AtomicBool,
}

impl UserCell {
    fn new(name: &[u8], user: User) -> Arc<UserCell> {
        let unrestricted = std::sync::atomic::AtomicBool::new(user.unrestricted);
        Arc::new(UserCell { name: name.to_vec(), rules: ArcSwap::from_pointee(user), unrestricted })
    }

    /// Replace the rules (the only way they change).
    fn set_rules(&self, user: User) {
        self.unrestricted.store(user.unrestricted, std::sync::atomic::Ordering::Release);
        self.rules.store(Arc::new(user));
    }

    /// Whether the rules allow everything (see the field).
    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current rules (a lock-free snapshot).
    pub fn rules(&self) -> arc_swap::Guard<Arc<User>> {
        self.rules.load()
    }

    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

impl std::fmt::Debug for UserCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserCell({})", self.name_str())
    }
}

/// Counters of refusals by reason (INFO's acl_access_denied_*).
#[derive(Default)]
pub struct Denials {
    pub cmd: AtomicU64,
    pub key: AtomicU64,
    pub channel: AtomicU64,
    pub auth: AtomicU64,
}

/// The ACL state of a server.
pub struct Acl {
    pub catalog: Arc<Catalog>,
    users: RwLock<BTreeMap<Vec<u8>, Arc<UserCell>>>,
    /// The `default` user: the same cell for the server's life (ACL LOAD copies into it).
    default: Arc<UserCell>,
    pub log: Mutex<log::AclLog>,
    pub denials: Denials,
    /// Whether clients must authenticate (the default user has a password or is off).
    auth_required: AtomicBool,
}

/// The default user's rules when nothing configures it.
fn default_rules(cat: &Catalog) -> User {
    let mut u = User::new(false);
    for rule in ["+@all", "~*", "&*", "on", "nopass"] {
        let _ = u.apply(cat, rule.as_bytes(), false);
    }
    u
}

/// Changes a SETUSER made that concern connected clients.
pub struct SetUser {
    pub cell: Arc<UserCell>,
    /// Channel permissions were narrowed: the user's subscribers whose subscriptions the new
    /// channel list no longer allows must be disconnected (the list is the new channels).
    pub revoked_channels: Option<Vec<Vec<u8>>>,
}

impl Acl {
    pub fn new(catalog: Arc<Catalog>) -> Acl {
        let default = UserCell::new(b"default", default_rules(&catalog));
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), default.clone());
        Acl {
            catalog,
            users: RwLock::new(users),
            default,
            log: Mutex::new(log::AclLog::default()),
            denials: Denials::default(),
            auth_required: AtomicBool::new(false),
        }
    }

    pub fn default_user(&self) -> Arc<UserCell> {
        self.default.clone()
    }

    /// Whether a client that has not authenticated must (Redis's authRequired, without the
    /// client's flag).
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Ordering::Relaxed)
    }

    fn refresh_default(&self) {
        let d = self.default.rules();
        let open = d.has(user::NOPASS) && !d.has(user::DISABLED);
        self.auth_required.store(!open, Ordering::Relaxed);
    }

    /// Whether the default user needs no password (protected mode's test).
    pub fn default_nopass(&self) -> bool {
        self.default.rules().has(user::NOPASS)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<UserCell>> {
        self.users.read().get(name).cloned()
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<UserCell>> {
        self.users.read().values().cloned().collect()
    }

    /// The user a name and password open (Redis's ACLCheckUserCredentials).
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<UserCell>> {
        let cell = self.get(name)?;
        let ok = cell.rules().accepts(pass);
        ok.then_some(cell)
    }

    /// ACL SETUSER: create or modify a user with these rules, all or nothing. Err is the
    /// reply's error text.
    pub fn set_user(&self, name: &[u8], rules: &[Vec<u8>], all_channels: bool) -> Result<SetUser, String> {
        let mut users = self.users.write();
        let existing = users.get(name).cloned();
        let base = existing.as_ref().map_or_else(|| User::new(all_channels), |c| (**c.rules()).clone());
        let new = base.with_rules(&self.catalog, rules, all_channels)?;
        let (cell, revoked_channels) = match existing {
            Some(cell) => {
                let revoked = revoked_channels(&new, &cell.rules());
                cell.set_rules(new);
                (cell, revoked)
            }
            None => {
                let cell = UserCell::new(name, new);
                users.insert(name.to_vec(), cell.clone());
                (cell, None)
            }
        };
        drop(users);
        if Arc::ptr_eq(&cell, &self.default) {
            self.refresh_default();
        }
        Ok(SetUser { cell, revoked_channels })
    }

    /// ACL DELUSER: remove these users (the default user cannot be). Returns the removed ones.
    pub fn del_users(&self, names: &[&[u8]]) -> Result<Vec<Arc<UserCell>>, String> {
        if names.contains(&&b"default"[..]) {
            return Err("The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write();
        Ok(names.iter().filter_map(|n| users.remove(*n)).collect())
    }

    /// Create a user or replace its rules (start-up configuration).
    pub fn install(&self, name: &[u8], user: User) {
        let mut users = self.users.write();
        match users.get(name) {
            Some(cell) => cell.set_rules(user),
            None => {
                users.insert(name.to_vec(), UserCell::new(name, user));
            }
        }
        drop(users);
        self.refresh_default();
    }

    /// `requirepass`: the default user gets this password only (or nopass).
    pub fn set_default_password(&self, pass: Option<&[u8]>) {
        let mut u = (**self.default.rules()).clone();
        let _ = u.apply(&self.catalog, b"resetpass", false);
        match pass {
            Some(p) => {
                let mut rule = b">".to_vec();
                rule.extend_from_slice(p);
                let _ = u.apply(&self.catalog, &rule, false);
            }
            None => {
                let _ = u.apply(&self.catalog, b"nopass", false);
            }
        }
        self.default.set_rules(u);
        self.refresh_default();
    }

    /// Replace every user at once (ACL LOAD, start-up): the default user's cell keeps its
    /// identity and takes the new default rules (Redis's rules when `users` has none).
    /// Returns the cells that were dropped (their clients must be disconnected).
    pub fn replace_all(&self, users: Vec<(Vec<u8>, User)>) -> Vec<Arc<UserCell>> {
        let mut map = BTreeMap::new();
        let mut new_default = None;
        for (name, u) in users {
            if name == b"default" {
                new_default = Some(u);
            } else {
                map.insert(name.clone(), UserCell::new(&name, u));
            }
        }
        self.default.set_rules(new_default.unwrap_or_else(|| default_rules(&self.catalog)));
        map.insert(b"default".to_vec(), self.default.clone());
        let old = std::mem::replace(&mut *self.users.write(), map);
        self.refresh_default();
        old.into_iter().filter(|(n, _)| n != b"default").map(|(_, c)| c).collect()
    }

    /// A user as `user <name> <rules>` (ACL LIST, ACL SAVE, CONFIG REWRITE).
    pub fn describe_line(&self, cell: &UserCell) -> Vec<u8> {
        let mut line = b"user ".to_vec();
        line.extend_from_slice(&cell.name);
        line.push(b' ');
        line.extend_from_slice(&cell.rules().describe(&self.catalog));
        line
    }

    /// The `user` lines CONFIG REWRITE writes into the configuration file (None when the users
    /// live in an ACL file, `aclfile` not empty).
    pub fn config_lines(&self, aclfile: &str) -> Option<Vec<String>> {
        if !aclfile.is_empty() {
            return None;
        }
        Some(self.users().iter().map(|u| String::from_utf8_lossy(&self.describe_line(u)).into_owned()).collect())
    }

    /// Check a call against a user's selectors (Redis's ACLCheckAllUserCommandPerm): Ok when
    /// one allows it, else the most relevant refusal.
    pub fn check(user: &User, call: &Call) -> Result<(), Denied> {
        if user.unrestricted {
            return Ok(());
        }
        let mut worst: Option<Denied> = None;
        for s in &user.selectors {
            match s.check(call) {
                Ok(()) => return Ok(()),
                Err(d) => worst = Some(worst.map_or(d, |w| w.most_relevant(d))),
            }
        }
        Err(worst.unwrap_or(Denied::Command))
    }

    /// Whether a selector that allows the call also has unrestricted access of this kind to
    /// every key (Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess: SORT BY/GET patterns).
    pub fn check_unrestricted_keys(user: &User, call: &Call, needs: u8) -> bool {
        user.selectors.iter().any(|s| s.check(call).is_ok() && s.unrestricted_keys(needs))
    }

    /// Record a refusal (Redis's addACLLogEntry) and count it.
    pub fn log_denial(&self, entry: log::Entry, max_len: usize) {
        let counter = match entry.reason {
            log::Reason::Command => &self.denials.cmd,
            log::Reason::Key => &self.denials.key,
            log::Reason::Channel => &self.denials.channel,
            log::Reason::Auth => &self.denials.auth,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.log.lock().add(entry, max_len);
    }
}

/// Redis's ACLKillPubsubClientsIfNeeded, first half: None when the new channel permissions
/// include the old ones (nobody can lose a subscription), else the new channel list the
/// user's subscriptions must be checked against.
pub fn revoked_channels(new: &User, original: &User) -> Option<Vec<Vec<u8>>> {
    if new.selectors.iter().any(|s| s.all_channels) {
        return None;
    }
    let upcoming: Vec<Vec<u8>> = new.selectors.iter().flat_map(|s| s.channels.iter().cloned()).collect();
    let superset =
        original.selectors.iter().all(|s| !s.all_channels && s.channels.iter().all(|c| upcoming.contains(c)));
    (!superset).then_some(upcoming)
}

/// Whether a subscriber's subscriptions survive a narrowed channel list.
pub fn subscriptions_allowed(upcoming: &[Vec<u8>], channels: &[bytes::Bytes], patterns: &[bytes::Bytes]) -> bool {
    patterns.iter().all(|p| selector::channel_in(upcoming, p, true))
        && channels.iter().all(|c| selector::channel_in(upcoming, c, false))
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests;
