//! Which commands exist in sentinel mode: Redis 7.2 builds its table from the commands flagged
//! SENTINEL (they exist in both modes) or ONLY_SENTINEL (only in sentinel mode) in
//! `src/commands/*.json`; these lists are those flags, by full name.

/// Commands and subcommands flagged SENTINEL or ONLY_SENTINEL in Redis 7.2.4.
const ALLOWED: &[&str] = &[
    "acl",
    "acl|cat",
    "acl|deluser",
    "acl|dryrun",
    "acl|genpass",
    "acl|getuser",
    "acl|help",
    "acl|list",
    "acl|load",
    "acl|log",
    "acl|save",
    "acl|setuser",
    "acl|users",
    "acl|whoami",
    "auth",
    "client",
    "client|caching",
    "client|getname",
    "client|getredir",
    "client|help",
    "client|id",
    "client|info",
    "client|kill",
    "client|list",
    "client|no-evict",
    "client|pause",
    "client|reply",
    "client|setinfo",
    "client|setname",
    "client|tracking",
    "client|trackinginfo",
    "client|unblock",
    "client|unpause",
    "command",
    "command|count",
    "command|docs",
    "command|getkeys",
    "command|getkeysandflags",
    "command|help",
    "command|info",
    "command|list",
    "hello",
    "info",
    "ping",
    "psubscribe",
    "publish",
    "punsubscribe",
    "role",
    "shutdown",
    "subscribe",
    "unsubscribe",
];

/// Whether a command (or `parent|sub`) exists in sentinel mode.
pub fn allowed(full_name: &str) -> bool {
    ALLOWED.contains(&full_name) || only_sentinel(full_name)
}

/// Whether a command exists only in sentinel mode (SENTINEL and its subcommands).
pub fn only_sentinel(full_name: &str) -> bool {
    full_name == "sentinel" || full_name.starts_with("sentinel|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_command_set() {
        assert!(allowed("ping") && allowed("client|setinfo") && allowed("sentinel|masters"));
        assert!(!allowed("save") && !allowed("blpop") && !allowed("replicaof") && !allowed("client|no-touch"));
        assert!(only_sentinel("sentinel") && !only_sentinel("ping"));
    }
}
