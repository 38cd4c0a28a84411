//! A user's rules: on/off, passwords (SHA-256 hashes), payload sanitization flags and
//! selectors (the root one first). [`User::apply`] is Redis's ACLSetUser (one rule), and
//! [`User::describe`] prints the user back as rules (ACL LIST, ACL SAVE, CONFIG REWRITE).

use super::catalog::Catalog;
use super::describe::describe_commands;
use super::selector::{cstr, Selector};
use super::{password, RuleError};

/// User flag bits, in the order ACL LIST / GETUSER print them.
pub const ENABLED: u8 = 1 << 0;
pub const DISABLED: u8 = 1 << 1;
pub const NOPASS: u8 = 1 << 2;
pub const SKIP_SANITIZE: u8 = 1 << 3;
pub const SANITIZE: u8 = 1 << 4;

/// Flag names, in Redis's order.
pub const FLAG_NAMES: &[(u8, &str)] = &[
    (ENABLED, "on"),
    (DISABLED, "off"),
    (NOPASS, "nopass"),
    (SKIP_SANITIZE, "skip-sanitize-payload"),
    (SANITIZE, "sanitize-payload"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub flags: u8,
    /// Password hashes (64 lower-case hex characters each), in the order they were added.
    pub passwords: Vec<Vec<u8>>,
    /// The root selector first, then the `(...)` ones.
    pub selectors: Vec<Selector>,
    /// Set when no selector can ever refuse anything (every command, key and channel of the
    /// root selector): the hot path skips the checks.
    pub unrestricted: bool,
}

impl User {
    /// A new user: disabled, no password, no permission (`all_channels` per
    /// `acl-pubsub-default`), dump payloads sanitized (Redis 7.2's ACLCreateUser sets
    /// `sanitize-payload`, so ACL LIST and GETUSER show it; 7.0 left both flags clear).
    pub fn new(all_channels: bool) -> User {
        User {
            flags: DISABLED | SANITIZE,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, all_channels)],
            unrestricted: false,
        }
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    fn root_mut(&mut self) -> &mut Selector {
        &mut self.selectors[0]
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Recompute the derived fields after a change.
    pub fn refresh(&mut self) {
        self.unrestricted = self.selectors.iter().any(|s| s.all_commands && s.all_keys && s.all_channels);
    }

    /// Apply one rule (Redis's ACLSetUser). `all_channels`: `acl-pubsub-default` for new
    /// selectors and `reset`.
    pub fn apply(&mut self, cat: &Catalog, op: &[u8], all_channels: bool) -> Result<(), RuleError> {
        let r = self.apply_inner(cat, op, all_channels);
        self.refresh();
        r
    }

    fn apply_inner(&mut self, cat: &Catalog, op: &[u8], all_channels: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let word = cstr(op);
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.flags = (self.flags | ENABLED) & !DISABLED;
        } else if is("off") {
            self.flags = (self.flags | DISABLED) & !ENABLED;
        } else if is("skip-sanitize-payload") {
            self.flags = (self.flags | SKIP_SANITIZE) & !SANITIZE;
        } else if is("sanitize-payload") {
            self.flags = (self.flags | SANITIZE) & !SKIP_SANITIZE;
        } else if is("nopass") {
            self.flags |= NOPASS;
            self.passwords.clear();
        } else if is("resetpass") {
            self.flags &= !NOPASS;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                password::hash(&op[1..])
            } else {
                if !password::valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                op[1..].to_vec()
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.flags &= !NOPASS;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                password::hash(&op[1..])
            } else {
                if !password::valid_hash(&op[1..]) {
                    return Err(RuleError::BadHash);
                }
                op[1..].to_vec()
            };
            match self.passwords.iter().position(|p| *p == hash) {
                Some(i) => {
                    self.passwords.remove(i);
                }
                None => return Err(RuleError::NoSuchPassword),
            }
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(false, all_channels);
            // Redis 7.0 splits the inside like a command line; unbalanced quotes give no rule
            // at all (an empty selector), as there.
            let inner = &op[1..op.len() - 1];
            for rule in crate::util::split_args::split_args(inner).unwrap_or_default() {
                s.apply(cat, &rule)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.flags &= !NOPASS;
            self.passwords.clear();
            let root = self.root_mut();
            root.all_keys = false;
            root.patterns.clear();
            root.all_channels = all_channels;
            root.channels.clear();
            self.flags = (self.flags | DISABLED) & !ENABLED;
            self.flags = (self.flags | SANITIZE) & !SKIP_SANITIZE;
            self.selectors.truncate(1);
            self.root_mut().apply(cat, b"-@all")?;
        } else {
            self.root_mut().apply(cat, op)?;
        }
        Ok(())
    }

    /// Apply a SETUSER argument list, all or nothing: the rules are applied to a copy, which
    /// is returned (Redis's ACLStringSetUser). Err is the reply's text.
    pub fn with_rules(&self, cat: &Catalog, rules: &[Vec<u8>], all_channels: bool) -> Result<User, String> {
        let merged = merge_selector_args(rules).map_err(|open| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(cstr(&rules[open]))
            )
        })?;
        let mut u = self.clone();
        for rule in &merged {
            if let Err(e) = u.apply(cat, rule, all_channels) {
                return Err(format!(
                    "Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(cstr(rule)),
                    e.message()
                ));
            }
        }
        Ok(u)
    }

    /// The user as rules (Redis's ACLDescribeUser), without "user <name> ".
    pub fn describe(&self, cat: &Catalog) -> Vec<u8> {
        let mut out = Vec::new();
        for (flag, name) in FLAG_NAMES {
            if self.flags & flag != 0 {
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
            }
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p);
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                describe_selector(cat, s, &mut out);
            } else {
                out.extend_from_slice(b" (");
                describe_selector(cat, s, &mut out);
                out.push(b')');
            }
        }
        out
    }

    /// Whether a password opens this user (Redis's ACLCheckUserCredentials, after the user is
    /// found): enabled, and nopass or one of its hashes equals the password's (compared in
    /// constant time).
    pub fn accepts(&self, pass: &[u8]) -> bool {
        if self.has(DISABLED) {
            return false;
        }
        if self.has(NOPASS) {
            return true;
        }
        let hashed = password::hash(pass);
        // Every stored hash is compared, whatever matched, so the time taken tells nothing.
        self.passwords.iter().fold(false, |ok, p| password::equal(&hashed, p) | ok)
    }
}

/// A selector as rules (Redis's ACLDescribeSelector): keys, channels, commands.
pub fn describe_selector(cat: &Catalog, s: &Selector, out: &mut Vec<u8>) {
    if s.all_keys {
        out.extend_from_slice(b"~* ");
    } else {
        for p in &s.patterns {
            p.describe(out);
            out.push(b' ');
        }
    }
    if s.all_channels {
        out.extend_from_slice(b"&* ");
    } else {
        out.extend_from_slice(b"resetchannels ");
        for c in &s.channels {
            out.push(b'&');
            out.extend_from_slice(c);
            out.push(b' ');
        }
    }
    out.extend_from_slice(&describe_commands(cat, s));
}

/// Join selector definitions spread over several arguments (`(~key` `+get)`) into one
/// (Redis's ACLMergeSelectorArguments). Err: the index of an argument opening a selector that
/// is never closed.
pub fn merge_selector_args(args: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::with_capacity(args.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        let ends = op.last() == Some(&b')');
        // Inside an open selector a `(` opens nothing: it is part of the selector (Redis 7.2;
        // 7.0 started the selector afresh, dropping what came before).
        if open.is_none() && op.first() == Some(&b'(') && !ends {
            open = Some((j, op.clone()));
            continue;
        }
        if let Some((start, mut sel)) = open.take() {
            sel.push(b' ');
            sel.extend_from_slice(cstr(op));
            if ends {
                out.push(sel);
            } else {
                open = Some((start, sel));
            }
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}
