//! How each kind of parameter is parsed, validated, shown by CONFIG GET and written back by
//! CONFIG REWRITE, with Redis 7.0's rules and error texts (bool, the numeric kinds with their
//! memory / percent / octal forms, enums and bit-flag enums, strings, and the special
//! parameters: save, bind, client-output-buffer-limit, notify-keyspace-events, replicaof,
//! oom-score-adj-values, latency-tracking-info-percentiles, dir).

use super::rewrite::{memory_text, repr, Rewrite};

/// One kind of parameter over its typed value `T`.
pub trait Codec<T> {
    /// Parse the arguments of a directive (already split for multi-argument parameters).
    fn parse(&self, args: &[String]) -> Result<T, String>;
    /// The CONFIG GET text.
    fn show(&self, v: &T) -> String;
    /// Write the directive's line(s) for CONFIG REWRITE.
    fn rewrite(&self, name: &str, v: &T, default: &T, out: &mut Rewrite);
    /// Whether the directive takes several arguments (a single one is split on spaces).
    fn multi_arg(&self) -> bool {
        false
    }
    /// Parse onto the current value (client-output-buffer-limit keeps the classes not named).
    fn parse_onto(&self, args: &[String], _cur: &T) -> Result<T, String> {
        self.parse(args)
    }
}

/// yes / no.
pub struct Bool;

impl Codec<bool> for Bool {
    fn parse(&self, args: &[String]) -> Result<bool, String> {
        match args.first().map(|a| a.to_ascii_lowercase()).as_deref() {
            Some("yes") => Ok(true),
            Some("no") => Ok(false),
            _ => Err("argument must be 'yes' or 'no'".into()),
        }
    }
    fn show(&self, v: &bool) -> String {
        if *v { "yes" } else { "no" }.into()
    }
    fn rewrite(&self, name: &str, v: &bool, default: &bool, out: &mut Rewrite) {
        out.line(name, format!("{name} {}", self.show(v)), v != default);
    }
}

/// The textual forms a number accepts (Redis's MEMORY_CONFIG, PERCENT_CONFIG, OCTAL_CONFIG).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum NumForm {
    Plain,
    Memory,
    /// A memory amount, or a percentage (stored negated, as Redis does).
    MemoryPercent,
    Octal,
}

/// A number with bounds. `unsigned` selects Redis's unsigned bound check and message.
pub struct Num {
    pub min: i64,
    pub max: i64,
    pub form: NumForm,
    pub unsigned: bool,
}

pub const fn int(min: i64, max: i64) -> Num {
    Num { min, max, form: NumForm::Plain, unsigned: false }
}
pub const fn uint(min: i64, max: i64) -> Num {
    Num { min, max, form: NumForm::Plain, unsigned: true }
}
pub const fn mem(min: i64, max: i64) -> Num {
    Num { min, max, form: NumForm::Memory, unsigned: false }
}
pub const fn umem(min: i64, max: i64) -> Num {
    Num { min, max, form: NumForm::Memory, unsigned: true }
}

pub const INT_MAX: i64 = i32::MAX as i64;
pub const INT_MIN: i64 = i32::MIN as i64;
pub const UINT_MAX: i64 = u32::MAX as i64;
pub const LONG_MAX: i64 = i64::MAX;

/// Redis's memtoull: digits and an optional b/k/kb/m/mb/g/gb unit; no sign.
pub fn parse_memory(s: &str) -> Option<i64> {
    if s.starts_with('-') {
        return None;
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // strtoull of an empty digit string is 0 (Redis accepts "kb" as 0).
    let n: u64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(n.wrapping_mul(mul) as i64)
}

impl Num {
    fn parse_text(&self, s: &str) -> Result<i64, String> {
        if matches!(self.form, NumForm::Memory | NumForm::MemoryPercent) {
            if let Some(n) = parse_memory(s) {
                return Ok(n);
            }
        }
        if self.form == NumForm::MemoryPercent && s.len() > 1 && s.ends_with('%') {
            if let Some(n) = crate::util::num::parse_i64(&s.as_bytes()[..s.len() - 1]).filter(|n| *n >= 0) {
                return Ok(-n);
            }
        }
        if self.form == NumForm::Octal {
            // strtoll(.., 8): optional sign, leading blanks, digits 0-7 up to the end.
            let t = s.trim_start();
            let (neg, d) = match t.as_bytes().first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t),
            };
            if !d.is_empty() && d.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                if let Ok(n) = i64::from_str_radix(d, 8) {
                    return Ok(if neg { -n } else { n });
                }
            }
        }
        if self.form == NumForm::Plain {
            if let Some(n) = crate::util::num::parse_i64(s.as_bytes()) {
                return Ok(n);
            }
        }
        Err(match self.form {
            NumForm::MemoryPercent => "argument must be a memory or percent value",
            NumForm::Memory => "argument must be a memory value",
            NumForm::Octal => "argument couldn't be parsed as an octal number",
            NumForm::Plain => "argument couldn't be parsed into an integer",
        }
        .into())
    }

    fn check(&self, n: i64) -> Result<(), String> {
        if self.unsigned {
            let (u, lo, hi) = (n as u64, self.min as u64, self.max as u64);
            if u < lo || u > hi {
                return Err(if self.form == NumForm::Octal {
                    format!("argument must be between {lo:o} and {hi:o} inclusive")
                } else {
                    format!("argument must be between {lo} and {hi} inclusive")
                });
            }
        } else if self.form == NumForm::MemoryPercent && n < 0 {
            if n < self.min {
                return Err(format!("percentage argument must be less or equal to {}", -self.min));
            }
        } else if n < self.min || n > self.max {
            return Err(format!("argument must be between {} and {} inclusive", self.min, self.max));
        }
        Ok(())
    }
}

impl Codec<i64> for Num {
    fn parse(&self, args: &[String]) -> Result<i64, String> {
        let n = self.parse_text(args.first().map(String::as_str).unwrap_or(""))?;
        self.check(n)?;
        Ok(n)
    }
    fn show(&self, v: &i64) -> String {
        match self.form {
            NumForm::MemoryPercent if *v < 0 => format!("{}%", -v),
            NumForm::Memory | NumForm::MemoryPercent => (*v as u64).to_string(),
            NumForm::Octal => format!("{:o}", v),
            NumForm::Plain => v.to_string(),
        }
    }
    fn rewrite(&self, name: &str, v: &i64, default: &i64, out: &mut Rewrite) {
        let text = match self.form {
            NumForm::MemoryPercent if *v < 0 => format!("{}%", -v),
            NumForm::Memory | NumForm::MemoryPercent => memory_text(*v),
            _ => self.show(v),
        };
        out.line(name, format!("{name} {text}"), v != default);
    }
}

/// One of a fixed set of names (case-insensitive); `bitflags` enums take several names
/// (shutdown-on-sigterm).
pub struct Enum {
    pub names: &'static [(&'static str, u32)],
    pub bitflags: bool,
}

pub const fn choice(names: &'static [(&'static str, u32)]) -> Enum {
    Enum { names, bitflags: false }
}

impl Enum {
    /// Name of a value (Redis's configEnumGetName).
    pub fn name_of(&self, v: u32) -> String {
        if let Some((n, _)) = self.names.iter().find(|(_, x)| *x == v) {
            return n.to_string();
        }
        if self.bitflags {
            let mut left = v;
            let mut names = Vec::new();
            for (n, x) in self.names {
                if *x != 0 && *x == left & *x {
                    names.push(*n);
                    left &= !*x;
                }
            }
            if !names.is_empty() && left == 0 {
                return names.join(" ");
            }
        }
        "unknown".into()
    }
}

impl Codec<u32> for Enum {
    fn parse(&self, args: &[String]) -> Result<u32, String> {
        let fail = || {
            format!(
                "argument(s) must be one of the following: {}",
                self.names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        };
        if args.is_empty() || (!self.bitflags && args.len() != 1) {
            return Err(fail());
        }
        let mut v = 0;
        for a in args {
            let matched: Vec<u32> =
                self.names.iter().filter(|(n, _)| n.eq_ignore_ascii_case(a)).map(|(_, x)| *x).collect();
            if matched.is_empty() {
                return Err(fail());
            }
            v |= matched.iter().fold(0, |acc, x| acc | x);
        }
        Ok(v)
    }
    fn show(&self, v: &u32) -> String {
        self.name_of(*v)
    }
    fn rewrite(&self, name: &str, v: &u32, default: &u32, out: &mut Rewrite) {
        out.line(name, format!("{name} {}", self.name_of(*v)), v != default);
    }
    fn multi_arg(&self) -> bool {
        self.bitflags
    }
}

/// Checks a string parameter's value (Err: Redis's text).
pub type Validator = fn(&str) -> Result<(), &'static str>;

/// A string, optionally validated. `null_default`: the default is Redis's NULL (CONFIG REWRITE
/// then always writes a set value, and skips an empty one).
pub struct Str {
    pub validate: Option<Validator>,
    pub null_default: bool,
}

pub const STR: Str = Str { validate: None, null_default: false };
/// EMPTY_STRING_IS_NULL strings: empty means unset.
pub const NSTR: Str = Str { validate: None, null_default: true };

impl Codec<String> for Str {
    fn parse(&self, args: &[String]) -> Result<String, String> {
        let v = args.first().cloned().unwrap_or_default();
        if let Some(f) = self.validate {
            f(&v).map_err(String::from)?;
        }
        Ok(v)
    }
    fn show(&self, v: &String) -> String {
        v.clone()
    }
    fn rewrite(&self, name: &str, v: &String, default: &String, out: &mut Rewrite) {
        if self.null_default && v.is_empty() {
            out.processed(name);
            return;
        }
        let force = self.null_default || v != default;
        out.line(name, format!("{name} {}", repr(v.as_bytes())), force);
    }
}

pub fn valid_dbfilename(v: &str) -> Result<(), &'static str> {
    if v.contains('/') {
        Err("dbfilename can't be a path, just a filename")
    } else {
        Ok(())
    }
}

pub fn valid_appendfilename(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        Err("appendfilename can't be empty")
    } else if v.contains('/') {
        Err("appendfilename can't be a path, just a filename")
    } else {
        Ok(())
    }
}

pub fn valid_appenddirname(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        Err("appenddirname can't be empty")
    } else if v.contains('/') {
        Err("appenddirname can't be a path, just a dirname")
    } else {
        Ok(())
    }
}

pub fn valid_hostname(v: &str) -> Result<(), &'static str> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters");
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

/// `proc-title-template`: Redis's validateProcTitleTemplate (the template expanded with an
/// empty title must be valid and not empty).
pub fn valid_proc_title(v: &str) -> Result<(), &'static str> {
    match expand_proc_title(v, &TitleVars::default()) {
        Some(t) if !t.is_empty() => Ok(()),
        _ => Err("template format is invalid or contains unknown variables"),
    }
}

/// The values `proc-title-template`'s variables stand for.
#[derive(Default)]
pub struct TitleVars<'a> {
    /// The executable as started (argv[0]).
    pub title: &'a str,
    /// The first `bind` address.
    pub bind: Option<&'a str>,
    pub port: i64,
    pub tls_port: i64,
    pub unixsocket: &'a str,
    pub cluster: bool,
    pub sentinel: bool,
    pub config_file: Option<&'a str>,
}

/// Expand a `proc-title-template` as Redis's expandProcTitleTemplate (trimmed of spaces);
/// None when it names an unknown variable or a brace is unbalanced.
pub fn expand_proc_title(template: &str, v: &TitleVars) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return None;
        }
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}')?;
        let value = match &rest[open + 1..close] {
            "title" => v.title.to_string(),
            "listen-addr" if v.port != 0 || v.tls_port != 0 => {
                format!("{}:{}", v.bind.unwrap_or("*"), if v.port != 0 { v.port } else { v.tls_port })
            }
            "listen-addr" => format!("unixsocket:{}", v.unixsocket),
            "server-mode" => if v.cluster {
                "[cluster]"
            } else if v.sentinel {
                "[sentinel]"
            } else {
                ""
            }
            .to_string(),
            "config-file" => v.config_file.unwrap_or("-").to_string(),
            "port" => v.port.to_string(),
            "tls-port" => v.tls_port.to_string(),
            "unixsocket" => v.unixsocket.to_string(),
            _ => return None,
        };
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out.trim_matches(' ').to_string())
}

/// `save <seconds> <changes> ...` ("" for none).
pub struct Save;

impl Codec<Vec<(i64, i64)>> for Save {
    fn parse(&self, args: &[String]) -> Result<Vec<(i64, i64)>, String> {
        let args: &[String] = if args.len() == 1 && args[0].is_empty() { &[] } else { args };
        if !args.len().is_multiple_of(2) {
            return Err("Invalid save parameters".into());
        }
        let mut out = Vec::new();
        for pair in args.chunks(2) {
            let secs = strtoll_whole(&pair[0]).filter(|v| *v >= 1);
            let changes = strtoll_whole(&pair[1]).filter(|v| *v >= 0);
            match (secs, changes) {
                (Some(s), Some(c)) => out.push((s, c as i32 as i64)),
                _ => return Err("Invalid save parameters".into()),
            }
        }
        Ok(out)
    }
    fn show(&self, v: &Vec<(i64, i64)>) -> String {
        v.iter().map(|(s, c)| format!("{s} {c}")).collect::<Vec<_>>().join(" ")
    }
    fn rewrite(&self, name: &str, v: &Vec<(i64, i64)>, _default: &Vec<(i64, i64)>, out: &mut Rewrite) {
        // A Sentinel saves no data: Redis writes no save line in sentinel mode, and drops any
        // the file had.
        if out.sentinel_mode {
            out.processed(name);
            return;
        }
        if v.is_empty() {
            out.line(name, "save \"\"".into(), true);
        }
        for (s, c) in v {
            // The count is a C int, as Redis keeps it: past i32 it wraps (`save 900 3000000000`
            // is -1294967296, which the loader refuses); written as the unsigned digits of the
            // same 32 bits, it loads back to the same count.
            out.line(name, format!("save {s} {}", *c as i32 as u32), true);
        }
        out.processed(name);
    }
    fn multi_arg(&self) -> bool {
        true
    }
}

/// strtoll(s, &end, 10) with the whole string consumed (leading blanks and a sign allowed).
fn strtoll_whole(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
        // strtoll of "" consumes nothing: eptr[0] is '\0', so Redis takes it as 0.
        return if s.is_empty() { Some(0) } else { None };
    }
    let n: i64 = d.parse().unwrap_or(i64::MAX);
    Some(if neg { -n } else { n })
}

/// `bind <addr> ...`.
pub struct Bind;

impl Codec<Vec<String>> for Bind {
    fn parse(&self, args: &[String]) -> Result<Vec<String>, String> {
        if args.len() > 16 {
            return Err("Too many bind addresses specified.".into());
        }
        if args.len() == 1 && args[0].is_empty() {
            return Ok(Vec::new());
        }
        Ok(args.to_vec())
    }
    fn show(&self, v: &Vec<String>) -> String {
        v.join(" ")
    }
    fn rewrite(&self, name: &str, v: &Vec<String>, _default: &Vec<String>, out: &mut Rewrite) {
        if v.len() == 2 && v[0] == "*" && v[1] == "-::*" {
            out.processed(name);
            return;
        }
        // Plain addresses as Redis writes them; one that would not read back as itself (empty,
        // spaces, quotes) quoted, where Redis's plain join writes a file that loads otherwise.
        let plain = |a: &String| !a.is_empty() && a.bytes().all(|c| c.is_ascii_graphic() && !b"\"'\\".contains(&c));
        let quoted: Vec<String> = v.iter().map(|a| if plain(a) { a.clone() } else { repr(a.as_bytes()) }).collect();
        let addrs = if v.is_empty() { "\"\"".to_string() } else { quoted.join(" ") };
        out.line(name, format!("{name} {addrs}"), true);
    }
    fn multi_arg(&self) -> bool {
        true
    }
}

/// Output buffer limits of one client class: hard bytes, soft bytes, soft seconds.
pub type ObufClass = (u64, u64, i64);
/// `client-output-buffer-limit`: normal, replica, pubsub.
pub type ObufLimits = [ObufClass; 3];
pub const OBUF_DEFAULTS: ObufLimits = [(0, 0, 0), (256 << 20, 64 << 20, 60), (32 << 20, 8 << 20, 60)];
const OBUF_NAMES: [&str; 3] = ["normal", "slave", "pubsub"];

pub struct Obuf;

impl Obuf {
    /// Apply `<class> <hard> <soft> <seconds>` groups to `base` (CONFIG SET may name some
    /// classes only).
    pub fn apply_groups(args: &[String], mut base: ObufLimits) -> Result<ObufLimits, String> {
        if !args.len().is_multiple_of(4) || args.is_empty() {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        for g in args.chunks(4) {
            let class = match g[0].to_ascii_lowercase().as_str() {
                "normal" => 0,
                "slave" | "replica" => 1,
                "pubsub" => 2,
                _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
            };
            let (hard, soft) = (parse_memory(&g[1]), parse_memory(&g[2]));
            let secs = strtoll_whole(&g[3]);
            match (hard, soft, secs) {
                (Some(h), Some(s), Some(t)) if t >= 0 => base[class] = (h as u64, s as u64, t),
                _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
            }
        }
        Ok(base)
    }
}

impl Codec<ObufLimits> for Obuf {
    fn parse(&self, args: &[String]) -> Result<ObufLimits, String> {
        Obuf::apply_groups(args, OBUF_DEFAULTS)
    }
    fn parse_onto(&self, args: &[String], cur: &ObufLimits) -> Result<ObufLimits, String> {
        Obuf::apply_groups(args, *cur)
    }
    fn show(&self, v: &ObufLimits) -> String {
        v.iter().zip(OBUF_NAMES).map(|((h, s, t), n)| format!("{n} {h} {s} {t}")).collect::<Vec<_>>().join(" ")
    }
    fn rewrite(&self, name: &str, v: &ObufLimits, _default: &ObufLimits, out: &mut Rewrite) {
        for (i, (h, s, t)) in v.iter().enumerate() {
            let class = if i == 1 { "replica" } else { OBUF_NAMES[i] };
            let line = format!("{name} {class} {} {} {t}", obuf_bytes_text(*h), obuf_bytes_text(*s));
            out.line(name, line, (*h, *s, *t) != OBUF_DEFAULTS[i]);
        }
    }
    fn multi_arg(&self) -> bool {
        true
    }
}

/// A limit in the file's memory notation; one past i64 (strtoull takes up to 2^64-1; Redis
/// rewrites it as a negative number its own loader refuses) as its plain digits.
fn obuf_bytes_text(bytes: u64) -> String {
    match i64::try_from(bytes) {
        Ok(b) => memory_text(b),
        Err(_) => bytes.to_string(),
    }
}

/// `notify-keyspace-events`: the flag set.
pub struct Events;

impl Codec<u32> for Events {
    fn parse(&self, args: &[String]) -> Result<u32, String> {
        if args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        crate::keyspace::notify::parse_flags(&args[0])
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
    }
    fn show(&self, v: &u32) -> String {
        crate::keyspace::notify::flags_to_string(*v)
    }
    fn rewrite(&self, name: &str, v: &u32, _default: &u32, out: &mut Rewrite) {
        out.line(name, format!("{name} {}", repr(self.show(v).as_bytes())), *v != 0);
    }
}

/// `replicaof <host> <port>` (`no one` for none).
pub struct ReplicaOf;

impl Codec<Option<(String, u16)>> for ReplicaOf {
    fn parse(&self, args: &[String]) -> Result<Option<(String, u16)>, String> {
        if args.len() != 2 {
            return Err("wrong number of arguments".into());
        }
        if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
            return Ok(None);
        }
        match strtoll_whole(&args[1]).filter(|p| (0..=65535).contains(p) && !args[1].is_empty()) {
            Some(p) => Ok(Some((args[0].clone(), p as u16))),
            None => Err("Invalid master port".into()),
        }
    }
    fn show(&self, v: &Option<(String, u16)>) -> String {
        v.as_ref().map(|(h, p)| format!("{h} {p}")).unwrap_or_default()
    }
    fn rewrite(&self, name: &str, v: &Option<(String, u16)>, _d: &Option<(String, u16)>, out: &mut Rewrite) {
        match v {
            Some((h, p)) => {
                out.line(name, format!("{name} {h} {p}"), true);
            }
            None => out.processed(name),
        }
    }
    fn multi_arg(&self) -> bool {
        true
    }
}

/// `oom-score-adj-values <master> <replica> <bgchild>`.
pub struct OomValues;

impl Codec<[i64; 3]> for OomValues {
    fn parse(&self, args: &[String]) -> Result<[i64; 3], String> {
        if args.len() != 3 {
            return Err("wrong number of arguments".into());
        }
        let mut v = [0; 3];
        for (i, a) in args.iter().enumerate() {
            match strtoll_whole(a).filter(|n| (-2000..=2000).contains(n)) {
                Some(n) => v[i] = n,
                None => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
            }
        }
        Ok(v)
    }
    fn show(&self, v: &[i64; 3]) -> String {
        format!("{} {} {}", v[0], v[1], v[2])
    }
    fn rewrite(&self, name: &str, v: &[i64; 3], default: &[i64; 3], out: &mut Rewrite) {
        out.line(name, format!("{name} {}", self.show(v)), v != default);
    }
    fn multi_arg(&self) -> bool {
        true
    }
}

/// `latency-tracking-info-percentiles <p> ...` (each in [0, 100]).
pub struct Percentiles;

/// `%f` then trailing zeros (and a trailing dot) removed, as Redis's trimDoubleString.
pub fn trim_double(v: f64) -> String {
    let s = format!("{v:.6}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

impl Codec<Vec<f64>> for Percentiles {
    fn parse(&self, args: &[String]) -> Result<Vec<f64>, String> {
        if args.len() == 1 && args[0].is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for a in args {
            let Some(p) = crate::util::num::parse_f64(a.as_bytes()) else {
                return Err("Invalid latency-tracking-info-percentiles parameters".into());
            };
            if !(0.0..=100.0).contains(&p) {
                return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
            }
            out.push(p);
        }
        Ok(out)
    }
    fn show(&self, v: &Vec<f64>) -> String {
        v.iter().map(|p| trim_double(*p)).collect::<Vec<_>>().join(" ")
    }
    fn rewrite(&self, name: &str, v: &Vec<f64>, _d: &Vec<f64>, out: &mut Rewrite) {
        let vals = if v.is_empty() { "\"\"".to_string() } else { self.show(v) };
        out.line(name, format!("{name} {vals}"), true);
    }
    fn multi_arg(&self) -> bool {
        true
    }
}

/// `dir`: the working directory, as an absolute path. Setting it changes directory (at start-up
/// at once, like Redis's chdir; CONFIG SET through the apply step).
pub struct Dir;

impl Codec<String> for Dir {
    fn parse(&self, args: &[String]) -> Result<String, String> {
        if args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        match std::fs::canonicalize(&args[0]) {
            Ok(p) if p.is_dir() => Ok(p.display().to_string()),
            Ok(_) => Err("Not a directory".into()),
            Err(e) => Err(strerror(&e)),
        }
    }
    fn show(&self, v: &String) -> String {
        v.clone()
    }
    fn rewrite(&self, name: &str, v: &String, _d: &String, out: &mut Rewrite) {
        out.line(name, format!("{name} {}", repr(v.as_bytes())), true);
    }
}

/// The C library's text for an I/O error (without Rust's " (os error N)").
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn numbers_as_redis() {
        let m = mem(0, LONG_MAX);
        assert_eq!(m.parse(&a(&["1mb"])), Ok(1 << 20));
        assert_eq!(m.parse(&a(&["-1"])).unwrap_err(), "argument must be a memory value");
        let p = Num { min: -100, max: LONG_MAX, form: NumForm::MemoryPercent, unsigned: false };
        assert_eq!(p.parse(&a(&["10%"])), Ok(-10));
        assert_eq!(p.show(&-10), "10%");
        assert_eq!(p.parse(&a(&["200%"])).unwrap_err(), "percentage argument must be less or equal to 100");
        let o = Num { min: 0, max: 0o777, form: NumForm::Octal, unsigned: true };
        assert_eq!(o.parse(&a(&["700"])), Ok(0o700));
        assert_eq!(o.parse(&a(&["1000"])).unwrap_err(), "argument must be between 0 and 777 inclusive");
        assert_eq!(int(0, 10).parse(&a(&["011"])).unwrap_err(), "argument couldn't be parsed into an integer");
        assert_eq!(
            uint(1, UINT_MAX).parse(&a(&["-1"])).unwrap_err(),
            "argument must be between 1 and 4294967295 inclusive"
        );
    }

    #[test]
    fn specials() {
        assert_eq!(Save.parse(&a(&[""])), Ok(vec![]));
        assert_eq!(Save.parse(&a(&["0", "1"])).unwrap_err(), "Invalid save parameters");
        // A count past i32 wraps as Redis's int does, and is rewritten as digits that load back
        // to it (fuzz target config_file: it was written as -1, which the loader refuses).
        let wrapped = Save.parse(&a(&["900", "1333333333333333333333"])).unwrap();
        assert_eq!(wrapped, vec![(900, -1)]);
        let mut out = Rewrite::from_text("", |_| None);
        Save.rewrite("save", &wrapped, &vec![], &mut out);
        let text = out.finish();
        assert!(text.contains("save 900 4294967295\n"), "{text}");
        assert_eq!(Save.parse(&a(&["900", "4294967295"])), Ok(wrapped));
        let l = Obuf::apply_groups(&a(&["pubsub", "1mb", "2mb", "3"]), OBUF_DEFAULTS).unwrap();
        assert_eq!(l[2], (1 << 20, 2 << 20, 3));
        // A limit past i64 (strtoull's range) is rewritten as digits that load back (fuzz
        // target config_file: it was written as -1, which the loader refuses).
        let big = Obuf::apply_groups(&a(&["normal", "18446744073709551615", "0", "0"]), OBUF_DEFAULTS).unwrap();
        let mut out = Rewrite::from_text("", |_| None);
        Obuf.rewrite("client-output-buffer-limit", &big, &OBUF_DEFAULTS, &mut out);
        let text = out.finish();
        assert!(text.contains("client-output-buffer-limit normal 18446744073709551615 0 0\n"), "{text}");
        assert_eq!(obuf_bytes_text(1 << 30), "1gb");
        assert_eq!(Percentiles.show(&vec![50.0, 99.9]), "50 99.9");
        let e = Enum { names: &[("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)], bitflags: true };
        assert_eq!(e.parse(&a(&["nosave", "now"])), Ok(6));
        assert_eq!(e.show(&6), "nosave now");
    }
}
