//! The commands ACL rules talk about: every command and subcommand with its ACL id (a bit in a
//! selector's command bitmap), full name, categories and place in the command tree. The
//! command layer builds it once from the command table (`commands::acl::catalog`); ACLs always
//! use the original names, whatever `rename-command` did (as Redis's `orig_commands`).

use std::collections::HashMap;

/// Number of bits of a selector's command bitmap (Redis's USER_COMMAND_BITS_COUNT). The last
/// bit is never a command's: `+@all` sets it, so a user built from `+@all` can be told from
/// one that only allows every command that exists today.
pub const COMMAND_BITS: usize = 1024;
/// The reserved "future commands" bit.
pub const FUTURE_BIT: usize = COMMAND_BITS - 1;

/// ACL categories in Redis's order (a category's bit is its index).
pub const CATEGORIES: &[&str] = &[
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

/// A category's bit by name, case-insensitively (Redis's ACLGetCommandCategoryFlagByName).
pub fn category(name: &[u8]) -> Option<u32> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name)).map(|i| 1u32 << i)
}

/// What kind of channels a command names (Redis's commands_with_channels table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    None,
    /// PUBLISH / SPUBLISH: the channel at argument 1.
    Publish,
    /// SUBSCRIBE / SSUBSCRIBE: every argument is a channel.
    Subscribe,
    /// PSUBSCRIBE: every argument is a pattern (compared literally with the ACL patterns).
    SubscribePattern,
}

/// One command or subcommand.
#[derive(Clone, Debug)]
pub struct CmdInfo {
    pub id: usize,
    /// `name` or `parent|sub`, lower case.
    pub full_name: String,
    /// Category bits (see [`CATEGORIES`]).
    pub categories: u32,
    /// The container's id, for a subcommand.
    pub parent: Option<usize>,
    /// The subcommands' ids, for a container (sorted by name).
    pub subs: Vec<usize>,
    /// Runs without authentication (AUTH, HELLO): never refused by command rules.
    pub no_auth: bool,
    pub channels: Channels,
}

/// Every command, by id and by name.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Indexed by id.
    pub cmds: Vec<CmdInfo>,
    /// Top-level commands' ids, sorted by name (the order rules are described in).
    pub top: Vec<usize>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// Build from (full name, categories, no_auth) of every command and subcommand. Ids are
    /// given in name order.
    pub fn new(entries: impl IntoIterator<Item = (String, u32, bool)>) -> Catalog {
        let mut entries: Vec<(String, u32, bool)> =
            entries.into_iter().map(|(n, c, a)| (n.to_ascii_lowercase(), c, a)).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        assert!(entries.len() < FUTURE_BIT, "too many commands for the ACL bitmap");
        let mut cat = Catalog::default();
        for (id, (name, categories, no_auth)) in entries.into_iter().enumerate() {
            let channels = match name.as_str() {
                "publish" | "spublish" => Channels::Publish,
                "subscribe" | "ssubscribe" => Channels::Subscribe,
                "psubscribe" => Channels::SubscribePattern,
                _ => Channels::None,
            };
            cat.by_name.insert(name.clone(), id);
            cat.cmds.push(CmdInfo {
                id,
                full_name: name,
                categories,
                parent: None,
                subs: Vec::new(),
                no_auth,
                channels,
            });
        }
        for id in 0..cat.cmds.len() {
            let name = cat.cmds[id].full_name.clone();
            match name.split_once('|') {
                Some((parent, _)) => {
                    if let Some(&p) = cat.by_name.get(parent) {
                        cat.cmds[id].parent = Some(p);
                        cat.cmds[p].subs.push(id);
                    }
                }
                None => cat.top.push(id),
            }
        }
        cat
    }

    /// A command by name (`name` or `container|sub`, case-insensitive; Redis's
    /// ACLLookupCommand): None for an unknown name, a subcommand of a command without any, or
    /// more than two parts.
    pub fn lookup(&self, name: &[u8]) -> Option<&CmdInfo> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        let mut parts = name.split('|');
        let first = parts.next()?;
        let top = &self.cmds[*self.by_name.get(first)?];
        match (parts.next(), parts.next()) {
            (None, _) => Some(top),
            (Some(sub), None) => {
                if top.subs.is_empty() || sub.is_empty() {
                    return None;
                }
                self.by_name.get(&format!("{first}|{sub}")).map(|&i| &self.cmds[i])
            }
            _ => None,
        }
    }

    pub fn get(&self, id: usize) -> &CmdInfo {
        &self.cmds[id]
    }

    /// Every command and subcommand in description order: each top-level command followed by
    /// its subcommands.
    pub fn walk(&self) -> impl Iterator<Item = &CmdInfo> + '_ {
        self.top.iter().flat_map(move |&t| {
            std::iter::once(&self.cmds[t]).chain(self.cmds[t].subs.iter().map(move |&s| &self.cmds[s]))
        })
    }
}

/// A small catalog for unit tests.
#[cfg(test)]
pub(crate) fn sample() -> Catalog {
    let r = |n: &str| category(n.as_bytes()).unwrap();
    Catalog::new(vec![
        ("get".to_string(), r("read") | r("string") | r("fast"), false),
        ("set".to_string(), r("write") | r("string") | r("slow"), false),
        ("config".to_string(), r("slow"), false),
        ("config|get".to_string(), r("admin") | r("slow") | r("dangerous"), false),
        ("config|set".to_string(), r("admin") | r("slow") | r("dangerous"), false),
        ("auth".to_string(), r("fast") | r("connection"), true),
        ("select".to_string(), r("fast") | r("connection"), false),
        ("publish".to_string(), r("pubsub") | r("fast"), false),
        ("psubscribe".to_string(), r("pubsub") | r("slow"), false),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_redis() {
        let c = sample();
        assert_eq!(c.lookup(b"GET").unwrap().full_name, "get");
        assert_eq!(c.lookup(b"config|GET").unwrap().full_name, "config|get");
        assert!(c.lookup(b"config|nosuch").is_none());
        assert!(c.lookup(b"get|x").is_none());
        assert!(c.lookup(b"config|get|x").is_none());
        assert!(c.lookup(b"").is_none());
        let walk: Vec<&str> = c.walk().map(|i| i.full_name.as_str()).collect();
        assert_eq!(
            walk,
            ["auth", "config", "config|get", "config|set", "get", "psubscribe", "publish", "select", "set"]
        );
        assert_eq!(category(b"SET"), Some(1 << 3));
        assert_eq!(category(b"nosuch"), None);
    }
}
