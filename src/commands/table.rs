//! The command table: every family's specs gathered in one registry, looked up by name
//! (case-insensitively), with per-command statistics for INFO commandstats.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::CommandSpec;

/// Per-command counters (INFO commandstats).
#[derive(Default)]
pub struct CmdStats {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

impl CmdStats {
    pub fn reset(&self) {
        for c in [&self.calls, &self.usec, &self.rejected, &self.failed] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A command as registered: its spec, its full name (`parent|sub` for subcommands), stats and
/// subcommands.
pub struct Command {
    pub spec: &'static CommandSpec,
    pub full_name: String,
    pub stats: CmdStats,
    pub subcommands: HashMap<String, Command>,
    pub parent: Option<&'static CommandSpec>,
}

impl Command {
    fn new(spec: &'static CommandSpec, parent: Option<&'static CommandSpec>) -> Self {
        let full_name = match parent {
            Some(p) => format!("{}|{}", p.name, spec.name),
            None => spec.name.to_string(),
        };
        Command {
            spec,
            full_name,
            stats: CmdStats::default(),
            subcommands: spec.subcommands.iter().map(|s| (s.name.to_string(), Command::new(s, Some(spec)))).collect(),
            parent,
        }
    }

    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// Look a subcommand up by name, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&Command> {
        let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        self.subcommands.get(&lower)
    }
}

pub struct CommandTable {
    commands: HashMap<String, Command, ahash::RandomState>,
}

impl CommandTable {
    fn build() -> Self {
        let families: &[&'static [CommandSpec]] = &[
            super::strings::COMMANDS,
            super::bitmaps::COMMANDS,
            super::keys::COMMANDS,
            super::lists::COMMANDS,
            super::hashes::COMMANDS,
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
            super::streams::COMMANDS,
        ];
        let mut commands = HashMap::default();
        for fam in families {
            for spec in fam.iter() {
                let prev = commands.insert(spec.name.to_string(), Command::new(spec, None));
                assert!(prev.is_none(), "command {} registered twice", spec.name);
            }
        }
        CommandTable { commands }
    }

    /// Look a command up by its name, case-insensitively, without allocating for short names.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 32];
        if name.len() <= buf.len() {
            for (d, s) in buf.iter_mut().zip(name) {
                *d = s.to_ascii_lowercase();
            }
            let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
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

/// The process-wide command table.
pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(CommandTable::build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_well_formed() {
        let t = table();
        assert!(t.lookup(b"GeT").is_some());
        assert!(t.lookup(b"nosuchcommand").is_none());
        for c in t.iter() {
            let s = c.spec;
            assert_eq!(s.name, s.name.to_ascii_lowercase());
            assert!(s.arity != 0, "{} has arity 0", s.name);
            // A command with keys names their positions consistently.
            if s.first_key > 0 {
                assert!(s.step > 0, "{}", s.name);
                assert!(s.last_key != 0, "{}", s.name);
            }
            assert!(
                !(s.has_flag(crate::commands::flags::WRITE) && s.has_flag(crate::commands::flags::READONLY)),
                "{} is both write and readonly",
                s.name
            );
            for sub in c.subcommands.values() {
                assert!(sub.full_name.contains('|'));
            }
        }
    }

    #[test]
    fn key_indices_follow_specs() {
        let t = table();
        let mset = t.lookup(b"mset").unwrap().spec;
        assert_eq!(mset.key_indices(5).collect::<Vec<_>>(), vec![1, 3]);
        let del = t.lookup(b"del").unwrap().spec;
        assert_eq!(del.key_indices(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let ping = t.lookup(b"ping").unwrap().spec;
        assert_eq!(ping.key_indices(2).count(), 0);
    }
}
