//! Server configuration. Every parameter is one row of the table in [`table`], from which the
//! typed [`Config`] struct and the [`PARAMS`] descriptors are generated; [`kinds`] holds the
//! parsing/validation rules per kind of parameter, [`rewrite`] CONFIG REWRITE. This module
//! reads config files and `--option value` arguments (redis-server's syntax, `include`,
//! `rename-command`, Redis's error texts) and implements CONFIG GET/SET semantics over the live
//! configuration ([`LiveConfig`]: a snapshot hot paths read without a lock).

pub mod kinds;
pub mod rewrite;
pub mod table;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

pub use kinds::parse_memory;
pub use table::{Config, Param, PARAMS};
use table::{DENY_LOADING, HIDDEN, IMMUTABLE, NA, PROTECTED};

use crate::util::glob::glob_match;
use crate::util::split_args::split_args;

/// Look a parameter up by name or alias, case-insensitively.
pub fn find_param(name: &str) -> Option<&'static Param> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, p) in PARAMS.iter().enumerate() {
            m.insert(p.name.to_string(), i);
            if let Some(a) = p.alias {
                m.insert(a.to_string(), i);
            }
        }
        m
    });
    index.get(&name.to_ascii_lowercase()).map(|&i| &PARAMS[i])
}

impl Config {
    /// `hz` as the server runs it (Redis clamps it to 1..=500).
    pub fn hz_clamped(&self) -> u64 {
        self.hz.clamp(1, 500) as u64
    }

    /// `requirepass`, None when unset.
    pub fn password(&self) -> Option<&str> {
        Some(self.requirepass.as_str()).filter(|p| !p.is_empty())
    }

    /// `maxmemory-policy` by name.
    pub fn maxmemory_policy_name(&self) -> &'static str {
        name_of(&table::POLICIES, self.maxmemory_policy)
    }

    /// `appendfsync` by name (always, everysec, no).
    pub fn appendfsync_name(&self) -> &'static str {
        name_of(&table::FSYNC, self.appendfsync)
    }

    /// `enable-debug-command` by name (no, yes, local).
    pub fn enable_debug_name(&self) -> &'static str {
        ["no", "yes", "local"][self.enable_debug_command.min(2) as usize]
    }

    /// The value CONFIG GET shows for a parameter (by name or alias).
    pub fn get(&self, name: &str) -> Option<String> {
        find_param(name).map(|p| (p.get)(self))
    }
}

fn name_of(e: &kinds::Enum, v: u32) -> &'static str {
    e.names.iter().find(|(_, x)| *x == v).map(|(n, _)| *n).unwrap_or("unknown")
}

/// What start-up parsing produced besides the values.
#[derive(Debug, Default)]
pub struct Startup {
    pub config: Config,
    /// The config file, as an absolute path.
    pub file: Option<String>,
    /// One line per directive that is accepted but not applied (logged once the log is open).
    pub notices: Vec<String>,
    /// `rename-command <from> <to>` directives, in order.
    pub renames: Vec<(String, String)>,
    /// `user <name> <rules...>` directives, in order (validated and applied by the ACL layer).
    pub users: Vec<UserDirective>,
    /// Sentinel mode: `sentinel ...` directives are accepted (and queued here).
    pub sentinel_mode: bool,
    /// `sentinel <words...>` directives, in order (applied by the Sentinel once all is read):
    /// the words after `sentinel`, with the line they were read from.
    pub sentinel: Vec<UserDirective>,
}

/// A `user` directive and where it was read (for the fatal error naming its line).
#[derive(Debug, Clone)]
pub struct UserDirective {
    /// The words, `user` first.
    pub words: Vec<Vec<u8>>,
    pub line: usize,
    pub text: String,
}

impl UserDirective {
    /// Redis's fatal configuration error for this line.
    pub fn fatal(&self, err: &str) -> String {
        format!(
            "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
            crate::REDIS_VERSION,
            self.line,
            self.text,
            err
        )
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults()
    }
}

/// Reading one config text.
struct Loader<'a> {
    st: &'a mut Startup,
    save_seen: bool,
    depth: usize,
    /// The line being read (number, text), for directives applied later.
    current: (usize, String),
}

const DEPRECATED: &[&str] = &["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"];

impl Loader<'_> {
    fn load_text(&mut self, text: &str) -> Result<(), String> {
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |err: &str| {
                format!(
                    "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
                    crate::REDIS_VERSION,
                    n + 1,
                    line,
                    err
                )
            };
            let Some(words) = split_args(line.as_bytes()) else {
                return Err(fail("Unbalanced quotes in configuration line"));
            };
            if words.is_empty() {
                continue;
            }
            if words[0].eq_ignore_ascii_case(b"user") && words.len() >= 2 {
                self.st.users.push(UserDirective { words, line: n + 1, text: line.to_string() });
                continue;
            }
            let words: Vec<String> = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
            self.current = (n + 1, line.to_string());
            self.directive(&words).map_err(|e| if e.starts_with('\n') { e } else { fail(&e) })?;
        }
        Ok(())
    }

    fn directive(&mut self, words: &[String]) -> Result<(), String> {
        let name = words[0].to_ascii_lowercase();
        let args = &words[1..];
        if let Some(p) = find_param(&name) {
            if !(p.multi_arg)() && args.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            let split: Vec<String>;
            let args: &[String] = if (p.multi_arg)() && args.len() == 1 && !args[0].is_empty() {
                split = split_args(args[0].as_bytes())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|w| String::from_utf8_lossy(&w).into_owned())
                    .collect();
                &split
            } else {
                args
            };
            let cfg = &mut self.st.config;
            if p.name == "save" {
                // Save lines add up within a file; the first one (or `save ""`) replaces the
                // defaults.
                let before = cfg.save.clone();
                (p.set)(cfg, args)?;
                let reset = !self.save_seen || (args.len() == 1 && args[0].is_empty());
                if !reset {
                    let mut all = before;
                    all.extend(cfg.save.iter().copied());
                    cfg.save = all;
                }
                self.save_seen = true;
            } else {
                (p.set)(cfg, args)?;
            }
            if p.has(NA) && !(p.is_default)(cfg, &Config::defaults()) {
                let note = not_applied_notice(p.name);
                if !self.st.notices.contains(&note) {
                    self.st.notices.push(note);
                }
            }
            return Ok(());
        }
        if DEPRECATED.contains(&name.as_str()) && words.len() == 2 {
            return Ok(());
        }
        match name.as_str() {
            "include" if words.len() == 2 => self.include(&words[1]),
            "rename-command" if words.len() == 3 => {
                self.st.renames.push((words[1].clone(), words[2].clone()));
                Ok(())
            }
            "loadmodule" if words.len() >= 2 => Err("Ferrous cannot load Redis modules (loadmodule)".into()),
            "sentinel" => {
                if words.len() == 1 {
                    Ok(())
                } else if !self.st.sentinel_mode {
                    Err("sentinel directive while not in sentinel mode".into())
                } else {
                    let (line, text) = self.current.clone();
                    let words = words[1..].iter().map(|w| w.as_bytes().to_vec()).collect();
                    self.st.sentinel.push(UserDirective { words, line, text });
                    Ok(())
                }
            }
            n if n.contains('.') => {
                if words.len() < 2 {
                    Err("Module config specified without value".into())
                } else {
                    Err(format!("Module configuration '{n}' given, but Ferrous cannot load modules"))
                }
            }
            _ => Err("Bad directive or wrong number of arguments".into()),
        }
    }

    /// `include <path>` (a glob pattern may match no file at all).
    fn include(&mut self, path: &str) -> Result<(), String> {
        if self.depth > 16 {
            return Err("Too many nested include directives".into());
        }
        let files: Vec<String> = if path.contains(['*', '?', '[']) {
            let (dir, pat) = match path.rfind('/') {
                Some(i) => (&path[..i.max(1)], &path[i + 1..]),
                None => (".", path),
            };
            let mut found: Vec<String> = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| glob_match(pat.as_bytes(), e.file_name().as_encoded_bytes(), false))
                        .map(|e| e.path().display().to_string())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            found
        } else {
            vec![path.to_string()]
        };
        for f in files {
            let body = std::fs::read_to_string(&f)
                .map_err(|e| format!("\nFatal error, can't open config file '{f}': {}", kinds::strerror(&e)))?;
            self.depth += 1;
            let r = self.load_text(&body);
            self.depth -= 1;
            r?;
        }
        Ok(())
    }
}

fn not_applied_notice(name: &str) -> String {
    format!("Ferrous accepts '{name}' but does not apply it (the feature does not exist yet)")
}

/// Parse the command line: `[config-file | -] [--option value ...]`, like redis-server. The
/// options become config lines loaded after the file (and standard input with `-`).
pub fn from_args(args: &[String]) -> Result<Startup, String> {
    from_args_mode(args, false)
}

/// [`from_args`] in sentinel mode or not: Sentinel's defaults (port 26379, protected mode off)
/// and its `sentinel` directives.
pub fn from_args_mode(args: &[String], sentinel_mode: bool) -> Result<Startup, String> {
    let mut st = Startup { config: Config::defaults(), sentinel_mode, ..Default::default() };
    if sentinel_mode {
        st.config.port = 26379;
        st.config.protected_mode = false;
    }
    let mut j = 0;
    let mut text = String::new();
    if let Some(first) = args.first() {
        if !first.starts_with('-') {
            let abs = std::path::absolute(first).map(|p| p.display().to_string()).unwrap_or(first.clone());
            let body = std::fs::read_to_string(first)
                .map_err(|e| format!("Fatal error, can't open config file '{abs}': {}", kinds::strerror(&e)))?;
            st.file = Some(abs);
            text.push_str(&body);
            j = 1;
        }
    }
    let mut options = String::new();
    let mut from_stdin = false;
    let mut handled_last = true;
    while j < args.len() {
        let a = &args[j];
        if a == "-" && (j == 0 || j == args.len() - 1) {
            from_stdin = true;
        } else if handled_last && a.starts_with("--") {
            if !options.is_empty() {
                options.push('\n');
            }
            options.push_str(&a[2..]);
            options.push(' ');
            let words = split_args(a.as_bytes()).map(|w| w.len()).unwrap_or(1);
            if words == 1 {
                handled_last = false;
                let next_is_opt = args.get(j + 1).is_some_and(|n| n.starts_with("--"));
                if a.eq_ignore_ascii_case("--save") && (next_is_opt || j == args.len() - 1) {
                    options.push_str("\"\"");
                    handled_last = true;
                }
            } else {
                handled_last = true;
            }
        } else {
            options.push_str(&rewrite::repr(a.as_bytes()));
            options.push(' ');
            handled_last = true;
        }
        j += 1;
    }
    if from_stdin {
        let mut input = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).map_err(|e| e.to_string())?;
        text.push_str(&input);
    }
    if !options.is_empty() {
        text.push('\n');
        text.push_str(&options);
    }
    Loader { st: &mut st, save_seen: false, depth: 0, current: (0, String::new()) }.load_text(&text)?;
    if !st.config.logfile.is_empty() {
        if let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(&st.config.logfile) {
            return Err(format!(
                "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\nCan't open the log file: {}",
                crate::REDIS_VERSION,
                kinds::strerror(&e)
            ));
        }
    }
    Ok(st)
}

/// Load redis.conf-style text over the defaults (tests, tools).
pub fn from_text(text: &str) -> Result<Startup, String> {
    let mut st = Startup { config: Config::defaults(), ..Default::default() };
    Loader { st: &mut st, save_seen: false, depth: 0, current: (0, String::new()) }.load_text(text)?;
    Ok(st)
}

/// CONFIG GET: every (name, value) whose name (or alias) matches one of the patterns. A name
/// without glob characters is looked up directly (hidden parameters too) and echoed as given.
pub fn get_matching(cfg: &Config, patterns: &[&[u8]]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut names_seen: Vec<String> = Vec::new();
    for pat in patterns {
        if pat.iter().any(|c| b"[*?".contains(c)) {
            for p in PARAMS {
                if p.has(HIDDEN) {
                    continue;
                }
                for name in std::iter::once(p.name).chain(p.alias) {
                    if names_seen.iter().any(|n| n == name) || !glob_match(pat, name.as_bytes(), true) {
                        continue;
                    }
                    names_seen.push(name.to_string());
                    out.push((name.to_string(), (p.get)(cfg)));
                }
            }
            continue;
        }
        let name = String::from_utf8_lossy(pat).into_owned();
        if names_seen.contains(&name) {
            continue;
        }
        if let Some(p) = find_param(&name) {
            if p.alias.is_some_and(|a| a.eq_ignore_ascii_case(&name)) || p.name.eq_ignore_ascii_case(&name) {
                names_seen.push(name.clone());
                out.push((name, (p.get)(cfg)));
            }
        }
    }
    out
}

/// How CONFIG SET is being run.
pub struct SetContext {
    /// The server is loading data (DENY_LOADING parameters are refused).
    pub loading: bool,
    /// `enable-protected-configs` allows this client to change protected parameters.
    pub protected_allowed: bool,
}

/// The live configuration. Readers take a snapshot (`load()`: no lock, no allocation); CONFIG
/// SET builds a new [`Config`], applies it, and swaps it in (or rolls back).
pub struct LiveConfig {
    current: ArcSwap<Config>,
    writer: Mutex<()>,
    /// The config file the server was started with (absolute path).
    pub file: Option<String>,
}

impl LiveConfig {
    pub fn new(config: Config, file: Option<String>) -> LiveConfig {
        LiveConfig { current: ArcSwap::from_pointee(config), writer: Mutex::new(()), file }
    }

    /// The current values.
    pub fn load(&self) -> arc_swap::Guard<Arc<Config>> {
        self.current.load()
    }

    /// An owned snapshot.
    pub fn snapshot(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Change values outside CONFIG SET (REPLICAOF, CONFIG SET's apply steps).
    pub fn update(&self, f: impl FnOnce(&mut Config)) {
        let _w = self.writer.lock();
        let mut next = (**self.current.load()).clone();
        f(&mut next);
        self.current.store(Arc::new(next));
    }

    /// CONFIG SET of `pairs`, all or nothing, with Redis's checks and error texts. The new
    /// values are stored, then `apply(old, new)` makes them take effect; if it fails (naming
    /// the parameter), the old values are restored and applied again. `log(warning, line)`
    /// receives the log lines (rollbacks, notices for parameters not applied).
    pub fn set(
        &self,
        pairs: &[(String, String)],
        ctx: &SetContext,
        apply: impl Fn(&Config, &Config) -> Result<(), (String, String)>,
        log: &dyn Fn(bool, &str),
    ) -> Result<(), String> {
        let _w = self.writer.lock();
        let old = self.current.load_full();
        let mut params: Vec<&'static Param> = Vec::new();
        let mut error: Option<(String, String)> = None;
        let mut unknown: Option<String> = None;
        let mut deny_loading = false;
        for (name, _) in pairs {
            let Some(p) = find_param(name) else {
                unknown.get_or_insert_with(|| name.clone());
                continue;
            };
            if unknown.is_some() || error.is_some() || deny_loading {
                continue;
            }
            if p.has(IMMUTABLE) || (p.has(PROTECTED) && !ctx.protected_allowed) {
                let why = if p.has(IMMUTABLE) { "can't set immutable config" } else { "can't set protected config" };
                error = Some((name.clone(), why.into()));
                continue;
            }
            if ctx.loading && p.has(DENY_LOADING) {
                deny_loading = true;
                continue;
            }
            if params.iter().any(|q| std::ptr::eq(*q, p)) {
                error = Some((name.clone(), "duplicate parameter".into()));
            }
            params.push(p);
        }
        if deny_loading {
            return Err("-LOADING Redis is loading the dataset in memory".into());
        }
        if let Some(name) = unknown {
            return Err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'"));
        }
        if let Some((name, why)) = error {
            return Err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}"));
        }
        let mut next = (*old).clone();
        for (p, (_, value)) in params.iter().zip(pairs) {
            let args: Vec<String> =
                if (p.multi_arg)() { value.split(' ').map(String::from).collect() } else { vec![value.clone()] };
            if let Err(why) = (p.set)(&mut next, &args) {
                return Err(format!("CONFIG SET failed (possibly related to argument '{}') - {why}", p.name));
            }
        }
        self.current.store(Arc::new(next.clone()));
        if let Err((name, why)) = apply(&old, &next) {
            log(true, &format!(
                "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
            ));
            self.current.store(old.clone());
            if let Err((_, e)) = apply(&next, &old) {
                log(true, &format!("Failed applying restored failed CONFIG SET command: {e}"));
            }
            return Err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}"));
        }
        let defaults = Config::defaults();
        for p in &params {
            if p.has(NA) && !(p.is_default)(&next, &defaults) {
                log(false, &not_applied_notice(p.name));
            }
        }
        Ok(())
    }
}

/// CONFIG REWRITE's new text for the file at `path` (`renames`: rename-command lines kept).
pub fn rewrite_text(cfg: &Config, old_text: &str, force_all: bool) -> String {
    rewrite_text_with_users(cfg, old_text, force_all, None)
}

/// [`rewrite_text`] writing the ACL users as `user` lines (`users`: None when they live in an
/// ACL file, whose `user` lines are then dropped from the configuration, as Redis does).
pub fn rewrite_text_with_users(cfg: &Config, old_text: &str, force_all: bool, users: Option<&[String]>) -> String {
    rewrite_text_with(cfg, old_text, force_all, users, None)
}

/// [`rewrite_text_with_users`] for a Sentinel: its own options (`save` is not kept, as in
/// Redis's sentinel mode), then `sentinel` rewriting Sentinel's state lines.
pub fn rewrite_text_with(
    cfg: &Config,
    old_text: &str,
    force_all: bool,
    users: Option<&[String]>,
    sentinel: Option<&dyn Fn(&mut rewrite::Rewrite)>,
) -> String {
    let canonical = |n: &str| -> Option<String> {
        match find_param(n) {
            Some(p) => Some(p.name.to_string()),
            None if matches!(n, "include" | "rename-command" | "user" | "loadmodule" | "sentinel") => {
                Some(n.to_string())
            }
            None => None,
        }
    };
    let mut st = rewrite::Rewrite::from_text(old_text, canonical);
    st.force_all = force_all;
    st.sentinel_mode = sentinel.is_some();
    let defaults = Config::defaults();
    for p in PARAMS {
        (p.rewrite)(cfg, &defaults, &mut st);
    }
    for line in users.unwrap_or_default() {
        st.line("user", line.clone(), true);
    }
    st.processed("user");
    if let Some(sentinel) = sentinel {
        sentinel(&mut st);
    }
    st.finish()
}

/// CONFIG REWRITE: rewrite the config file (written to a temporary file, fsynced, renamed),
/// with the ACL users' `user` lines (see [`rewrite_text_with_users`]).
pub fn rewrite_file(cfg: &Config, path: &str, force_all: bool, users: Option<&[String]>) -> std::io::Result<()> {
    rewrite_file_with(cfg, path, force_all, users, None)
}

/// [`rewrite_file`], for a Sentinel when `sentinel` rewrites its state lines (see
/// [`rewrite_text_with`]).
pub fn rewrite_file_with(
    cfg: &Config,
    path: &str,
    force_all: bool,
    users: Option<&[String]>,
    sentinel: Option<&dyn Fn(&mut rewrite::Rewrite)>,
) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let text = rewrite_text_with(cfg, &old, force_all, users, sentinel);
    let tmp = format!("{path}.tmp-{}", std::process::id());
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A Sentinel's rewrite writes no `save` line and drops the file's (Redis's
    /// rewriteConfigSaveOption in sentinel mode); a server's writes its save points.
    #[test]
    fn a_sentinel_rewrite_keeps_no_save_line() {
        let cfg = Config::defaults();
        let old = "port 26380\nsave 900 1\nsentinel monitor m 127.0.0.1 6379 1\n";
        let text = rewrite_text_with(&cfg, old, false, None, Some(&|_: &mut rewrite::Rewrite| {}));
        assert!(!text.lines().any(|l| l.starts_with("save")), "{text}");
        assert!(text.starts_with("port 6379\n\nsentinel monitor m 127.0.0.1 6379 1\n"), "{text}");
        let text = rewrite_text_with(&cfg, old, false, None, None);
        for line in ["save 3600 1\n", "save 300 100\n", "save 60 10000\n"] {
            assert!(text.contains(line), "{text}");
        }
    }

    /// Parameters the server acts on are not reported as accepted but not applied: the cluster
    /// bus over TLS and its announced port (cluster/bus.rs, cluster/state.rs), the process
    /// title (server/proc_title.rs), the source address of outgoing links (util/net.rs).
    #[test]
    fn applied_parameters_get_no_not_applied_notice() {
        let st = from_args(&args(&[
            "--tls-cluster",
            "yes",
            "--cluster-announce-tls-port",
            "16380",
            "--set-proc-title",
            "no",
            "--proc-title-template",
            "{title} {port}",
            "--bind-source-addr",
            "127.0.0.1",
        ]))
        .unwrap();
        assert!(st.notices.is_empty(), "{:?}", st.notices);
        let st = from_args(&args(&["--activedefrag", "yes"])).unwrap();
        assert_eq!(st.notices, [not_applied_notice("activedefrag")]);
    }

    #[test]
    fn defaults_and_command_line() {
        let c = from_args(&args(&["--port", "7000", "--save", "", "--maxmemory", "1mb"])).unwrap().config;
        assert_eq!(c.port, 7000);
        assert!(c.save.is_empty());
        assert_eq!(c.maxmemory, 1 << 20);
        assert_eq!(c.databases, 16);
        let c = from_args(&args(&["--save", "60", "1", "300", "10"])).unwrap().config;
        assert_eq!(c.get("save").unwrap(), "60 1 300 10");
        let c = from_args(&args(&["--save", "--port", "7001"])).unwrap().config;
        assert!(c.save.is_empty());
        assert_eq!(c.port, 7001);
        let c = from_text("save 900 1\nsave 300 10\n").unwrap().config;
        assert_eq!(c.save, vec![(900, 1), (300, 10)]);
    }

    #[test]
    fn a_rewritten_bind_loads_back_the_same_addresses() {
        // Plain addresses are written as Redis writes them; an empty one is quoted (Redis's
        // plain join would write a line that loads one address fewer).
        for bind in ["bind 127.0.0.1 -::1", "bind 127.0.0.1 ''"] {
            let before = from_text(bind).unwrap().config;
            let text = rewrite_text(&before, "", true);
            assert_eq!(from_text(&text).unwrap().config.bind, before.bind, "{text}");
        }
        let text = rewrite_text(&from_text("bind 127.0.0.1 -::1").unwrap().config, "", true);
        assert!(text.contains("\nbind 127.0.0.1 -::1\n"), "{text}");
    }

    #[test]
    fn bad_options_name_the_line() {
        let err = from_args(&args(&["--port", "7000", "--nosuch", "1"])).unwrap_err();
        assert!(err.contains("at line 3"), "{err}");
        assert!(err.contains("'nosuch \"1\"'"), "{err}");
        assert!(err.contains("Bad directive"), "{err}");
        let err = from_args(&args(&["--port", "notanumber"])).unwrap_err();
        assert!(err.contains("argument couldn't be parsed into an integer"), "{err}");
        let err = from_text("port 1 2\n").unwrap_err();
        assert!(err.contains("wrong number of arguments"), "{err}");
    }

    #[test]
    fn aliases_and_hidden() {
        let c = from_text("slaveof 127.0.0.1 6380\nslave-read-only no\nkey-load-delay 10\n").unwrap().config;
        assert_eq!(c.replicaof, Some(("127.0.0.1".into(), 6380)));
        assert!(!c.replica_read_only);
        let got = get_matching(&c, &[b"key-load-*"]);
        assert!(got.is_empty(), "hidden configs need an exact name");
        assert_eq!(get_matching(&c, &[b"key-load-delay"]), vec![("key-load-delay".into(), "10".into())]);
        assert_eq!(get_matching(&c, &[b"slaveof"]), vec![("slaveof".into(), "127.0.0.1 6380".into())]);
    }

    #[test]
    fn config_set_is_atomic() {
        let live = LiveConfig::new(Config::defaults(), None);
        let ctx = SetContext { loading: false, protected_allowed: false };
        let ok = |_: &Config, _: &Config| Ok(());
        let nolog = |_: bool, _: &str| {};
        assert_eq!(
            live.set(&[("nosuch".into(), "1".into())], &ctx, ok, &nolog).unwrap_err(),
            "Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        assert_eq!(
            live.set(&[("maxmemory-policy".into(), "bad".into())], &ctx, ok, &nolog).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
        );
        assert!(live
            .set(&[("timeout".into(), "5".into()), ("maxmemory".into(), "x".into())], &ctx, ok, &nolog)
            .is_err());
        assert_eq!(live.load().timeout, 0, "a failed multi-set applies nothing");
        // A failing apply step rolls everything back.
        let fail =
            |_: &Config, new: &Config| if new.timeout == 7 { Err(("timeout".into(), "nope".into())) } else { Ok(()) };
        let err =
            live.set(&[("hz".into(), "20".into()), ("timeout".into(), "7".into())], &ctx, fail, &nolog).unwrap_err();
        assert_eq!(err, "CONFIG SET failed (possibly related to argument 'timeout') - nope");
        assert_eq!(live.load().hz, 10);
        live.set(&[("lua-time-limit".into(), "100".into())], &ctx, ok, &nolog).unwrap();
        assert_eq!(live.load().busy_reply_threshold, 100);
        assert!(live
            .set(&[("dir".into(), "/".into())], &ctx, ok, &nolog)
            .unwrap_err()
            .contains("can't set protected config"));
        assert_eq!(
            get_matching(&live.load(), &[b"maxmemory-p*"]),
            vec![("maxmemory-policy".to_string(), "noeviction".to_string())]
        );
    }

    #[test]
    fn every_param_round_trips() {
        let c = Config::defaults();
        for p in PARAMS {
            let shown = (p.get)(&c);
            let mut d = Config::defaults();
            let args: Vec<String> = if (p.multi_arg)() && !shown.is_empty() {
                shown.split(' ').map(String::from).collect()
            } else {
                vec![shown.clone()]
            };
            if matches!(p.name, "latency-tracking-info-percentiles" | "bind" | "replicaof") {
                continue;
            }
            (p.set)(&mut d, &args).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!((p.get)(&d), shown, "{}", p.name);
        }
    }
}
