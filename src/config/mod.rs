//! Server configuration: the redis.conf directives Ferrous implements, their defaults, parsing
//! of config files and `--option value` arguments (same syntax and error style as Redis), and
//! the CONFIG GET/SET view of them. Every parameter is one row of [`PARAMS`].

use crate::util::glob::glob_match;
use crate::util::split_args::split_args;

/// How a parameter's value is validated and shown.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count accepting suffixes (1k, 1kb, 1mb, 1gb...); CONFIG GET shows plain bytes.
    Memory {
        min: i64,
        max: i64,
    },
    Str,
    Enum(&'static [&'static str]),
    /// Free-form string validated by a dedicated function.
    Special(fn(&str) -> Result<String, String>),
}

pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub immutable: bool,
}

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param { name, alias: None, kind, default, immutable: false }
}

const fn fixed(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param { name, alias: None, kind, default, immutable: true }
}

const fn aliased(name: &'static str, alias: &'static str, kind: Kind, default: &'static str) -> Param {
    Param { name, alias: Some(alias), kind, default, immutable: false }
}

const INT: Kind = Kind::Int { min: 0, max: i32::MAX as i64 };
const LL: Kind = Kind::Int { min: 0, max: i64::MAX };
const YESNO: Kind = Kind::Bool;
const MEM: Kind = Kind::Memory { min: 0, max: i64::MAX };
/// `nothing` (Redis 7.2) silences every message.
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const PROTECTED: &[&str] = &["no", "yes", "local"];
const FSYNC: &[&str] = &["always", "everysec", "no"];

fn valid_save(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if !parts.len().is_multiple_of(2)
        || parts.iter().any(|p| p.parse::<i64>().is_ok_and(|n| n < 0) || p.parse::<i64>().is_err())
    {
        return Err("Invalid save parameters".into());
    }
    Ok(parts.join(" "))
}

/// appendfilename / appenddirname: a plain file name (Redis's pathIsBaseName).
fn valid_aof_name(v: &str) -> Result<String, String> {
    if v.is_empty() || v.contains('/') || v.contains('\\') {
        return Err("appendfilename can't be a path, just a filename".into());
    }
    Ok(v.to_string())
}

fn valid_daemonize(v: &str) -> Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        "no" => Ok("no".into()),
        "yes" => Err("daemonize yes is not supported: run ferrous-server under a supervisor".into()),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn valid_events(v: &str) -> Result<String, String> {
    use crate::keyspace::notify::{flags_to_string, parse_flags};
    parse_flags(v).map(flags_to_string).ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
}

/// `client-output-buffer-limit <class> <hard> <soft> <seconds> [...]`: CONFIG SET may give some
/// classes only; they replace the current values of those classes.
fn valid_obuf_limits(v: &str) -> Result<String, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes: Vec<(String, [String; 3])> = vec![
        ("normal".into(), ["0".into(), "0".into(), "0".into()]),
        ("slave".into(), ["268435456".into(), "67108864".into(), "60".into()]),
        ("pubsub".into(), ["33554432".into(), "8388608".into(), "60".into()]),
    ];
    for chunk in words.chunks(4) {
        let class = match chunk[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let hard = parse_memory(chunk[1]);
        let soft = parse_memory(chunk[2]);
        let secs = chunk[3].parse::<i64>().ok();
        match (hard, soft, secs) {
            (Some(h), Some(s), Some(t)) if h >= 0 && s >= 0 && t >= 0 => {
                classes[class].1 = [h.to_string(), s.to_string(), t.to_string()];
            }
            _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
        }
    }
    Ok(classes.iter().map(|(c, v)| format!("{c} {} {} {}", v[0], v[1], v[2])).collect::<Vec<_>>().join(" "))
}

/// `maxmemory-clients`: a memory amount, or a percentage of maxmemory (`10%`, at most 100%),
/// kept as given (CONFIG GET shows `10%`), as Redis's PERCENT_CONFIG.
fn valid_maxmemory_clients(v: &str) -> Result<String, String> {
    if let Some(pct) = v.strip_suffix('%') {
        return match pct.parse::<i64>() {
            Ok(n) if (0..=100).contains(&n) => Ok(format!("{n}%")),
            _ => Err("argument must be a memory or percent value".into()),
        };
    }
    match parse_memory(v) {
        Some(n) if n >= 0 => Ok(n.to_string()),
        _ => Err("argument must be a memory or percent value".into()),
    }
}

/// `dir`: an existing directory, kept as its absolute path (Redis chdirs into it, and CONFIG
/// GET dir shows the absolute path).
fn valid_dir(v: &str) -> Result<String, String> {
    match std::fs::canonicalize(v) {
        Ok(p) if p.is_dir() => Ok(p.display().to_string()),
        Ok(_) => Err("Not a directory".into()),
        Err(_) => Err("No such file or directory".into()),
    }
}

fn valid_dbfilename(v: &str) -> Result<String, String> {
    if v.contains('/') {
        Err("dbfilename can't be a path, just a filename".into())
    } else {
        Ok(v.to_string())
    }
}

/// Every implemented parameter. Parameters accepted for later features (data-type encodings,
/// persistence, scripting) are validated and stored so that configs and CONFIG SET work.
pub static PARAMS: &[Param] = &[
    fixed("port", Kind::Int { min: 0, max: 65535 }, "6379"),
    fixed("bind", Kind::Str, "127.0.0.1"),
    fixed("tcp-backlog", INT, "511"),
    fixed("databases", Kind::Int { min: 1, max: i32::MAX as i64 }, "16"),
    fixed("daemonize", Kind::Special(valid_daemonize), "no"),
    fixed("logfile", Kind::Str, ""),
    fixed("pidfile", Kind::Str, ""),
    fixed("enable-debug-command", Kind::Enum(PROTECTED), "no"),
    fixed("enable-protected-configs", Kind::Enum(PROTECTED), "no"),
    fixed("io-threads", Kind::Int { min: 1, max: 128 }, "1"),
    // Ferrous-specific: threads executing commands (0 = one per CPU core, less one).
    fixed("worker-threads", Kind::Int { min: 0, max: 1024 }, "0"),
    p("dir", Kind::Special(valid_dir), ""),
    p("timeout", INT, "0"),
    p("tcp-keepalive", INT, "300"),
    p("maxclients", Kind::Int { min: 1, max: u32::MAX as i64 }, "10000"),
    p("loglevel", Kind::Enum(LOGLEVELS), "notice"),
    p("requirepass", Kind::Str, ""),
    p("protected-mode", YESNO, "yes"),
    p("hz", Kind::Int { min: 0, max: i32::MAX as i64 }, "10"),
    p("dynamic-hz", YESNO, "yes"),
    p("proto-max-bulk-len", Kind::Memory { min: 1024 * 1024, max: i64::MAX }, "536870912"),
    p("client-query-buffer-limit", Kind::Memory { min: 1024 * 1024, max: i64::MAX }, "1073741824"),
    p("maxmemory", MEM, "0"),
    p("maxmemory-policy", Kind::Enum(POLICIES), "noeviction"),
    p("maxmemory-samples", Kind::Int { min: 1, max: 64 }, "5"),
    p("maxmemory-clients", Kind::Special(valid_maxmemory_clients), "0"),
    p("maxmemory-eviction-tenacity", Kind::Int { min: 0, max: 100 }, "10"),
    p("lfu-log-factor", INT, "10"),
    p("lfu-decay-time", INT, "1"),
    p("active-expire-effort", Kind::Int { min: 1, max: 10 }, "1"),
    p("activerehashing", YESNO, "yes"),
    p("lazyfree-lazy-eviction", YESNO, "no"),
    p("lazyfree-lazy-expire", YESNO, "no"),
    p("lazyfree-lazy-server-del", YESNO, "no"),
    p("lazyfree-lazy-user-del", YESNO, "no"),
    p("lazyfree-lazy-user-flush", YESNO, "no"),
    p("save", Kind::Special(valid_save), "3600 1 300 100 60 10000"),
    p("dbfilename", Kind::Special(valid_dbfilename), "dump.rdb"),
    p("rdbcompression", YESNO, "yes"),
    p("rdbchecksum", YESNO, "yes"),
    // Redis 7.2: the LC_COLLATE locale of SORT ... ALPHA and Lua's string comparisons ("" = the
    // environment's). Ferrous compares bytes, which is what the C/POSIX locale does.
    p("locale-collate", Kind::Str, ""),
    // Ferrous's own: the RDB version SAVE/BGSAVE/DUMP/replication write. 10 (Redis 7.0's, the
    // default) keeps files loadable by Redis 7.0 and later; 11 is Redis 7.2's (listpack sets as
    // RDB type 20); 12 is Redis 7.4's.
    p("rdb-version", Kind::Int { min: 10, max: 12 }, "10"),
    p("stop-writes-on-bgsave-error", YESNO, "yes"),
    p("replica-ignore-disk-write-errors", YESNO, "no"),
    p("appendonly", YESNO, "no"),
    p("appendfsync", Kind::Enum(FSYNC), "everysec"),
    fixed("appendfilename", Kind::Special(valid_aof_name), "appendonly.aof"),
    fixed("appenddirname", Kind::Special(valid_aof_name), "appendonlydir"),
    p("no-appendfsync-on-rewrite", YESNO, "no"),
    p("auto-aof-rewrite-percentage", INT, "100"),
    p("auto-aof-rewrite-min-size", MEM, "67108864"),
    p("aof-use-rdb-preamble", YESNO, "yes"),
    p("aof-load-truncated", YESNO, "yes"),
    p("aof-timestamp-enabled", YESNO, "no"),
    p("aof-rewrite-incremental-fsync", YESNO, "yes"),
    p("notify-keyspace-events", Kind::Special(valid_events), ""),
    p("slowlog-log-slower-than", Kind::Int { min: -1, max: i64::MAX }, "10000"),
    p("slowlog-max-len", LL, "128"),
    p("latency-monitor-threshold", LL, "0"),
    p("latency-tracking", YESNO, "yes"),
    aliased("busy-reply-threshold", "lua-time-limit", LL, "5000"),
    aliased("replica-read-only", "slave-read-only", YESNO, "yes"),
    aliased("replica-serve-stale-data", "slave-serve-stale-data", YESNO, "yes"),
    p("masterauth", Kind::Str, ""),
    p("repl-ping-replica-period", Kind::Int { min: 1, max: i32::MAX as i64 }, "10"),
    p("repl-timeout", Kind::Int { min: 1, max: i32::MAX as i64 }, "60"),
    p("repl-backlog-size", MEM, "1048576"),
    aliased(
        "list-max-listpack-size",
        "list-max-ziplist-size",
        Kind::Int { min: i32::MIN as i64, max: i32::MAX as i64 },
        "-2",
    ),
    p("list-compress-depth", INT, "0"),
    aliased("hash-max-listpack-entries", "hash-max-ziplist-entries", LL, "512"),
    aliased("hash-max-listpack-value", "hash-max-ziplist-value", LL, "64"),
    p("set-max-intset-entries", LL, "512"),
    p("set-max-listpack-entries", LL, "128"),
    p("set-max-listpack-value", LL, "64"),
    aliased("zset-max-listpack-entries", "zset-max-ziplist-entries", LL, "128"),
    aliased("zset-max-listpack-value", "zset-max-ziplist-value", LL, "64"),
    p("stream-node-max-bytes", MEM, "4096"),
    p("stream-node-max-entries", LL, "100"),
    p("hll-sparse-max-bytes", MEM, "3000"),
    p("tracking-table-max-keys", LL, "1000000"),
    aliased("min-replicas-to-write", "min-slaves-to-write", INT, "0"),
    aliased("min-replicas-max-lag", "min-slaves-max-lag", INT, "10"),
    p(
        "client-output-buffer-limit",
        Kind::Special(valid_obuf_limits),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
];

fn find_param(name: &str) -> Option<usize> {
    PARAMS
        .iter()
        .position(|p| p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parse a memory amount like Redis's memtoull: digits with an optional k/kb/m/mb/g/gb suffix.
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: i64 = num.parse().ok()?;
    n.checked_mul(mul)
}

/// Validate `value` for `param` and return its canonical form (as CONFIG GET shows it).
fn normalize(param: &Param, value: &str) -> Result<String, String> {
    match param.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            let n: i64 = value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if n < min || n > max {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            Ok(n.to_string())
        }
        Kind::Memory { min, max } => {
            let n = parse_memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
            if n < min || n > max {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            Ok(n.to_string())
        }
        Kind::Str => Ok(value.to_string()),
        Kind::Enum(allowed) => {
            let v = value.to_ascii_lowercase();
            if allowed.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(format!("argument(s) must be one of the following: {}", allowed.join(", ")))
            }
        }
        Kind::Special(f) => f(value),
    }
}

/// Typed copies of the values the hot paths read, rebuilt after every change.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub port: u16,
    pub bind: Vec<String>,
    pub databases: usize,
    pub timeout_secs: u64,
    pub tcp_keepalive: u64,
    pub maxclients: usize,
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: i64,
    pub query_buffer_limit: usize,
    pub hz: u64,
    pub loglevel: usize,
    pub logfile: String,
    pub pidfile: String,
    pub enable_debug: String,
    pub maxmemory_policy: String,
    /// Compact-encoding thresholds of the collection types.
    pub list_max_listpack_size: i64,
    pub list_compress_depth: i64,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

/// The whole configuration: one canonical string per parameter, plus the typed [`Settings`].
#[derive(Clone, Debug)]
pub struct Config {
    values: Vec<String>,
    pub settings: Settings,
    /// The config file the server was started with, if any.
    pub file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: PARAMS.iter().map(|p| p.default.to_string()).collect(),
            settings: Settings::default(),
            file: None,
        };
        let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        let i = find_param("dir").expect("dir param");
        c.values[i] = dir;
        c.rebuild();
        c
    }
}

impl Config {
    pub fn get(&self, name: &str) -> Option<&str> {
        find_param(name).map(|i| self.values[i].as_str())
    }

    fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn rebuild(&mut self) {
        let s = Settings {
            port: self.int("port") as u16,
            bind: self.get("bind").unwrap_or("").split_whitespace().map(String::from).collect(),
            databases: self.int("databases") as usize,
            timeout_secs: self.int("timeout") as u64,
            tcp_keepalive: self.int("tcp-keepalive") as u64,
            maxclients: self.int("maxclients") as usize,
            requirepass: self.get("requirepass").filter(|p| !p.is_empty()).map(String::from),
            proto_max_bulk_len: self.int("proto-max-bulk-len"),
            query_buffer_limit: self.int("client-query-buffer-limit") as usize,
            hz: self.int("hz").clamp(1, 500) as u64,
            loglevel: LOGLEVELS.iter().position(|l| Some(*l) == self.get("loglevel")).unwrap_or(2),
            logfile: self.get("logfile").unwrap_or("").to_string(),
            pidfile: self.get("pidfile").unwrap_or("").to_string(),
            enable_debug: self.get("enable-debug-command").unwrap_or("no").to_string(),
            maxmemory_policy: self.get("maxmemory-policy").unwrap_or("noeviction").to_string(),
            list_max_listpack_size: self.int("list-max-listpack-size"),
            list_compress_depth: self.int("list-compress-depth"),
            hash_max_listpack_entries: self.int("hash-max-listpack-entries") as usize,
            hash_max_listpack_value: self.int("hash-max-listpack-value") as usize,
            set_max_intset_entries: self.int("set-max-intset-entries") as usize,
            set_max_listpack_entries: self.int("set-max-listpack-entries") as usize,
            set_max_listpack_value: self.int("set-max-listpack-value") as usize,
            zset_max_listpack_entries: self.int("zset-max-listpack-entries") as usize,
            zset_max_listpack_value: self.int("zset-max-listpack-value") as usize,
        };
        crate::types::list_shape::set_max_listpack_size(s.list_max_listpack_size);
        self.settings = s;
    }

    /// Set one parameter at start-up (immutable ones allowed).
    fn set_startup(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        let Some(i) = find_param(name) else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        let value = if matches!(PARAMS[i].name, "save" | "bind" | "client-output-buffer-limit") {
            args.join(" ")
        } else if args.len() == 1 {
            args[0].clone()
        } else {
            return Err("wrong number of arguments".into());
        };
        self.values[i] = normalize(&PARAMS[i], &value)?;
        self.rebuild();
        Ok(())
    }

    /// Load a configuration from redis.conf-style text. Errors name the line like Redis does.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |err: &str| {
                format!(
                    "\n*** FATAL CONFIG FILE ERROR (Ferrous {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
                    crate::VERSION,
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
            let words: Vec<String> = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
            if words.len() < 2 {
                return Err(fail("wrong number of arguments"));
            }
            self.set_startup(&words[0], &words[1..]).map_err(|e| fail(&e))?;
        }
        Ok(())
    }

    /// Parse the command line: `[config-file] [--option value ...]`, like redis-server. The
    /// options are turned into config-file lines and loaded after the file.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut rest = args;
        let mut text = String::new();
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                let body = std::fs::read_to_string(first)
                    .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
                cfg.file = Some(first.clone());
                text.push_str(&body);
                text.push('\n');
                rest = &rest[1..];
            }
        }
        let mut i = 0;
        let mut line = String::new();
        while i < rest.len() {
            let a = &rest[i];
            if let Some(opt) = a.strip_prefix("--") {
                if !line.is_empty() {
                    text.push_str(&line);
                    text.push('\n');
                }
                line = opt.to_string();
            } else {
                if line.is_empty() {
                    return Err(format!("Invalid argument '{a}': options must start with --"));
                }
                line.push(' ');
                line.push_str(&quote(a));
            }
            i += 1;
        }
        if !line.is_empty() {
            text.push_str(&line);
            text.push('\n');
        }
        cfg.load_text(&text)?;
        Ok(cfg)
    }

    /// CONFIG GET: every (name, value) pair whose name (or alias) matches one of the patterns.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        // A name without glob characters is looked up directly and echoed as the client wrote it.
        for pat in patterns {
            if pat.iter().any(|c| b"[*?".contains(c)) {
                continue;
            }
            let name = String::from_utf8_lossy(pat).into_owned();
            if let Some(i) = find_param(&name) {
                if !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    out.push((name, self.values[i].clone()));
                }
            }
        }
        for (i, p) in PARAMS.iter().enumerate() {
            for name in std::iter::once(p.name).chain(p.alias) {
                if patterns
                    .iter()
                    .any(|pat| pat.iter().any(|c| b"[*?".contains(c)) && glob_match(pat, name.as_bytes(), true))
                    && !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    out.push((name.to_string(), self.values[i].clone()));
                }
            }
        }
        out
    }

    /// CONFIG SET of several pairs, atomically: all are validated before any is applied.
    /// Errors are Redis's exact texts.
    pub fn set_many(&mut self, pairs: &[(String, String)]) -> Result<(), String> {
        let mut staged = self.values.clone();
        let mut seen = Vec::new();
        for (name, value) in pairs {
            let Some(i) = find_param(name) else {
                return Err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'"));
            };
            let param = &PARAMS[i];
            let fail = |e: &str| format!("CONFIG SET failed (possibly related to argument '{name}') - {e}");
            if param.immutable {
                return Err(fail("can't set immutable config"));
            }
            if seen.contains(&i) {
                return Err(fail("duplicate parameter"));
            }
            seen.push(i);
            staged[i] = normalize(param, value).map_err(|e| fail(&e))?;
        }
        self.values = staged;
        self.rebuild();
        Ok(())
    }
}

/// Quote an argument so split_args gives it back unchanged.
fn quote(a: &str) -> String {
    let mut s = String::from("\"");
    for c in a.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl Config {
    /// CONFIG REWRITE: rewrite the config file so it reflects the current values. Lines of
    /// known parameters are replaced in place; changed parameters missing from the file are
    /// appended; everything else (comments, unknown lines) is kept. Written atomically.
    pub fn rewrite_file(&self, path: &str) -> std::io::Result<()> {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let mut written = vec![false; PARAMS.len()];
        let mut out = String::new();
        for line in old.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            match find_param(name).filter(|_| !line.trim_start().starts_with('#')) {
                Some(i) if !written[i] => {
                    written[i] = true;
                    out.push_str(&format!("{} {}\n", PARAMS[i].name, quote(&self.values[i])));
                }
                Some(_) => {}
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        for (i, p) in PARAMS.iter().enumerate() {
            if !written[i] && self.values[i] != p.default && p.name != "dir" {
                out.push_str(&format!("{} {}\n", p.name, quote(&self.values[i])));
            }
        }
        let tmp = format!("{path}.tmp-{}", std::process::id());
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(out.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_command_line() {
        let c = Config::from_args(&args(&["--port", "7000", "--save", "", "--maxmemory", "1mb"])).unwrap();
        assert_eq!(c.settings.port, 7000);
        assert_eq!(c.get("save"), Some(""));
        assert_eq!(c.get("maxmemory"), Some("1048576"));
        assert_eq!(c.settings.databases, 16);
        let c = Config::from_args(&args(&["--save", "60", "1", "300", "10"])).unwrap();
        assert_eq!(c.get("save"), Some("60 1 300 10"));
    }

    #[test]
    fn bad_options_name_the_line() {
        let err = Config::from_args(&args(&["--port", "7000", "--nosuch", "1"])).unwrap_err();
        assert!(err.contains("at line 2"), "{err}");
        assert!(err.contains("'nosuch \"1\"'"), "{err}");
        assert!(err.contains("Bad directive"), "{err}");
        let err = Config::from_args(&args(&["--port", "notanumber"])).unwrap_err();
        assert!(err.contains("argument couldn't be parsed into an integer"), "{err}");
    }

    #[test]
    fn config_set_errors_are_redis_texts() {
        let mut c = Config::default();
        assert_eq!(
            c.set_many(&[("nosuch".into(), "1".into())]).unwrap_err(),
            "Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        assert_eq!(
            c.set_many(&[("maxmemory-policy".into(), "bad".into())]).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
        );
        assert!(c.set_many(&[("timeout".into(), "5".into()), ("port".into(), "1".into())]).is_err());
        assert_eq!(c.get("timeout"), Some("0"), "a failed multi-set applies nothing");
        c.set_many(&[("lua-time-limit".into(), "100".into())]).unwrap();
        assert_eq!(c.get("busy-reply-threshold"), Some("100"));
        let got = c.get_matching(&[b"maxmemory-p*"]);
        assert_eq!(got, vec![("maxmemory-policy".to_string(), "noeviction".to_string())]);
    }
}
