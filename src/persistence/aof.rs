//! The append-only file formats of Redis 7.0: the manifest of a multi-part AOF directory
//! ([`Manifest`]: `file <name> seq <n> type <b|h|i>` lines) with Redis's file naming, and the
//! command stream of AOF files ([`parse_commands`]: RESP multibulks, `#` annotation lines),
//! with Redis's rules for a torn tail (a truncated last command, or a MULTI without its EXEC,
//! is "truncated"; anything else malformed is a format error).

use bytes::Bytes;

use crate::util::num::atoi;

/// The kind of a file listed in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Base,
    Incr,
    History,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::Incr => 'i',
            FileKind::History => 'h',
        }
    }
}

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofInfo {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

/// The manifest: at most one base file, the history files (to delete) and the incr files, in
/// order. Sequence numbers only grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofInfo>,
    pub history: Vec<AofInfo>,
    pub incrs: Vec<AofInfo>,
    pub base_seq: u64,
    pub incr_seq: u64,
}

/// `<appendfilename>.manifest`.
pub fn manifest_name(fname: &str) -> String {
    format!("{fname}.manifest")
}

/// The temporary name the manifest is written under before its rename.
pub fn temp_manifest_name(fname: &str) -> String {
    format!("temp-{fname}.manifest")
}

/// Whether a file name must be quoted in the manifest (Redis's sdsneedsrepr).
fn needs_repr(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\\' | b'"') || !(0x21..0x7f).contains(&b))
}

/// Quote like Redis's sdscatrepr.
fn repr(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

impl Manifest {
    /// Parse a manifest file, with Redis's checks and error texts.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut maxseq = 0;
        let mut lines = 0;
        // Read as Redis's fgets with a 1024-byte buffer: a piece without its newline is a line
        // too long (or a last line not ended).
        const MAX_LINE: usize = 1024;
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest.iter().take(MAX_LINE).position(|&b| b == b'\n').map_or(rest.len().min(MAX_LINE), |i| i + 1);
            let (raw, tail) = rest.split_at(end);
            rest = tail;
            lines += 1;
            if raw.first() == Some(&b'#') {
                continue;
            }
            if raw.last() != Some(&b'\n') {
                return Err("The AOF manifest file contains too long line".into());
            }
            let line = String::from_utf8_lossy(raw);
            let line = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            let bad = || format!("Invalid AOF manifest file format (line {lines}: '{line}')");
            let argv = crate::util::split_args::split_args(line.as_bytes()).ok_or_else(bad)?;
            if line.is_empty() || argv.len() < 6 || argv.len() % 2 != 0 {
                return Err(bad());
            }
            let (mut name, mut seq, mut kind) = (None, 0u64, None);
            for kv in argv.chunks(2) {
                let key = String::from_utf8_lossy(&kv[0]).to_ascii_lowercase();
                let val = String::from_utf8_lossy(&kv[1]).into_owned();
                match key.as_str() {
                    "file" => {
                        if val.contains('/') {
                            return Err("File can't be a path, just a filename".into());
                        }
                        name = Some(val);
                    }
                    "seq" => seq = val.parse().unwrap_or(0),
                    "type" => kind = val.chars().next(),
                    _ => {}
                }
            }
            let (Some(name), true, Some(kind)) = (name, seq > 0, kind) else {
                return Err(bad());
            };
            match kind {
                'b' => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base_seq = seq;
                    m.base = Some(AofInfo { name, seq, kind: FileKind::Base });
                }
                'h' => m.history.push(AofInfo { name, seq, kind: FileKind::History }),
                'i' => {
                    if seq <= maxseq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    maxseq = seq;
                    m.incr_seq = seq;
                    m.incrs.push(AofInfo { name, seq, kind: FileKind::Incr });
                }
                _ => return Err("Unknown AOF file type".into()),
            }
        }
        if lines == 0 {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest's text: base, history, then incr files.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for ai in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let name = if needs_repr(&ai.name) { repr(&ai.name) } else { ai.name.clone() };
            out.push_str(&format!("file {} seq {} type {}\n", name, ai.seq, ai.kind.letter()));
        }
        out
    }

    /// Start a new base file (its name is returned); the current one becomes history, listed
    /// first (Redis lists the newest history files first).
    pub fn new_base(&mut self, fname: &str, rdb: bool) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = FileKind::History;
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = format!("{fname}.{}.base.{}", self.base_seq, if rdb { "rdb" } else { "aof" });
        self.base = Some(AofInfo { name: name.clone(), seq: self.base_seq, kind: FileKind::Base });
        name
    }

    /// Start a new incr file (appended to the list); its name is returned.
    pub fn new_incr(&mut self, fname: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{fname}.{}.incr.aof", self.incr_seq);
        self.incrs.push(AofInfo { name: name.clone(), seq: self.incr_seq, kind: FileKind::Incr });
        name
    }

    /// After a rewrite: the incr files covered by the new base become history, ahead of the
    /// older history files and in their order (as Redis's markRewrittenIncrAofAsHistory lists
    /// them). With `keep_last` (the AOF is on) the last one, written since the rewrite began,
    /// stays.
    pub fn incrs_to_history(&mut self, keep_last: bool) {
        let keep = if keep_last { self.incrs.pop() } else { None };
        let older = std::mem::take(&mut self.history);
        self.history = self.incrs.drain(..).map(|ai| AofInfo { kind: FileKind::History, ..ai }).collect();
        self.history.extend(older);
        self.incrs.extend(keep);
    }

    /// The files to load, in order: the base, then the incr files.
    pub fn files(&self) -> impl Iterator<Item = &AofInfo> {
        self.base.iter().chain(&self.incrs)
    }
}

/// How the command stream of a file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every command complete.
    Clean,
    /// The last command is torn (or a MULTI lacks its EXEC): the commands before `valid_up_to`
    /// are good and everything from there on must be dropped.
    Truncated { valid_up_to: usize, multi: bool },
    /// Malformed content (not a torn tail): the file can't be loaded.
    BadFormat { offset: usize },
}

/// The commands of an AOF file (from `start`, past an RDB preamble) and how the file ended.
#[derive(Debug)]
pub struct Commands {
    pub commands: Vec<Vec<Bytes>>,
    pub ending: Ending,
}

/// Longest line Redis reads for a count or a length (AOF_ANNOTATION_LINE_MAX_LEN).
const LINE_MAX: usize = 1024;

/// Read a line (without its CRLF) at `pos`: None at the end of the data.
fn line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = &data[pos..];
    let window = &rest[..rest.len().min(LINE_MAX)];
    let nl = window.iter().position(|&b| b == b'\n')?;
    let l = &rest[..nl];
    Some((l.strip_suffix(b"\r").unwrap_or(l), pos + nl + 1))
}

/// Parse the commands of `data` from `start`. MULTI ... EXEC blocks are kept as they are (the
/// replay runs them); a MULTI left open at the end is reported as truncated before the MULTI.
pub fn parse_commands(data: &[u8], start: usize) -> Commands {
    let mut commands = Vec::new();
    let mut pos = start;
    let mut valid_up_to = start;
    let mut multi_at: Option<(usize, usize)> = None; // (offset, index in commands)
                                                     // A tear inside a transaction drops the whole transaction (never half of it): back to
                                                     // before its MULTI.
    let torn = |mut commands: Vec<Vec<Bytes>>, valid_up_to, multi_at: Option<(usize, usize)>| match multi_at {
        Some((offset, index)) => {
            commands.truncate(index);
            Commands { commands, ending: Ending::Truncated { valid_up_to: offset, multi: true } }
        }
        None => Commands { commands, ending: Ending::Truncated { valid_up_to, multi: false } },
    };
    while pos < data.len() {
        let Some((l, next)) = line(data, pos) else {
            // No line end: a torn count line, or garbage longer than any count line.
            if data.len() - pos >= LINE_MAX {
                return Commands { commands, ending: Ending::BadFormat { offset: pos } };
            }
            return torn(commands, valid_up_to, multi_at);
        };
        if l.first() == Some(&b'#') {
            pos = next;
            valid_up_to = pos;
            continue;
        }
        if l.first() != Some(&b'*') {
            return Commands { commands, ending: Ending::BadFormat { offset: pos } };
        }
        let argc = atoi(&l[1..]);
        if argc < 1 {
            return Commands { commands, ending: Ending::BadFormat { offset: pos } };
        }
        pos = next;
        let mut argv = Vec::with_capacity((argc as usize).min(1024));
        for _ in 0..argc {
            let Some((l, next)) = line(data, pos) else {
                return torn(commands, valid_up_to, multi_at);
            };
            if l.first() != Some(&b'$') {
                return Commands { commands, ending: Ending::BadFormat { offset: pos } };
            }
            let len = atoi(&l[1..]).max(0) as usize;
            pos = next;
            if data.len() - pos < len.saturating_add(2) {
                return torn(commands, valid_up_to, multi_at);
            }
            argv.push(Bytes::copy_from_slice(&data[pos..pos + len]));
            pos += len + 2;
        }
        let name = &argv[0];
        if name.eq_ignore_ascii_case(b"multi") {
            multi_at = Some((valid_up_to, commands.len()));
        } else if name.eq_ignore_ascii_case(b"exec") {
            multi_at = None;
        }
        commands.push(argv);
        valid_up_to = pos;
    }
    match multi_at {
        Some((offset, index)) => {
            commands.truncate(index);
            Commands { commands, ending: Ending::Truncated { valid_up_to: offset, multi: true } }
        }
        None => Commands { commands, ending: Ending::Clean },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_rotation() {
        let text = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let mut m = Manifest::parse(text).unwrap();
        assert_eq!(m.to_text().as_bytes(), text);
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
        assert_eq!(m.new_base("appendonly.aof", true), "appendonly.aof.2.base.rdb");
        m.incrs_to_history(true);
        assert_eq!(
            m.to_text(),
            "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\n\
             file appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        // A second rewrite with the history kept (aof-disable-auto-gc): newest history first,
        // as Redis 7.2 writes it.
        m.new_incr("appendonly.aof");
        m.new_base("appendonly.aof", true);
        m.incrs_to_history(true);
        let names: Vec<_> = m.history.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "appendonly.aof.2.incr.aof",
                "appendonly.aof.2.base.rdb",
                "appendonly.aof.1.incr.aof",
                "appendonly.aof.1.base.rdb"
            ]
        );
        // With the AOF off every incr file is history.
        m.incrs_to_history(false);
        assert!(m.incrs.is_empty());
        assert_eq!(m.history[0].name, "appendonly.aof.3.incr.aof");
        let quoted = Manifest {
            base: Some(AofInfo { name: "a b".into(), seq: 1, kind: FileKind::Base }),
            ..Manifest::default()
        };
        assert_eq!(Manifest::parse(quoted.to_text().as_bytes()).unwrap(), Manifest { base_seq: 1, ..quoted });
    }

    #[test]
    fn manifest_errors() {
        assert!(Manifest::parse(b"").unwrap_err().contains("empty"));
        assert!(Manifest::parse(b"file a seq 1\n").is_err());
        assert!(Manifest::parse(b"file a seq 2 type i\nfile b seq 1 type i\n").unwrap_err().contains("monotonic"));
        assert!(Manifest::parse(b"file a/b seq 1 type b\n").unwrap_err().contains("path"));
        assert!(Manifest::parse(b"file a seq 1 type x\n").unwrap_err().contains("Unknown"));
        assert!(Manifest::parse(b"# comment\nfile a seq 1 type b\n").is_ok());
        // Redis reads lines of at most 1024 bytes: longer ones, and a last line without its
        // newline, are refused with its text.
        let long = format!("{}\n", "file a seq 1 type b ".repeat(60));
        assert_eq!(Manifest::parse(long.as_bytes()).unwrap_err(), "The AOF manifest file contains too long line");
        assert_eq!(
            Manifest::parse(b"file a seq 1 type b").unwrap_err(),
            "The AOF manifest file contains too long line"
        );
    }

    #[test]
    fn commands_torn_tail_and_open_multi() {
        let good = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:123\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let c = parse_commands(good, 0);
        assert_eq!((c.commands.len(), c.ending.clone()), (2, Ending::Clean));
        for cut in 1..good.len() {
            let c = parse_commands(&good[..cut], 0);
            assert!(matches!(c.ending, Ending::Truncated { .. } | Ending::Clean), "cut {cut}: {:?}", c.ending);
        }
        let c = parse_commands(&good[..good.len() - 3], 0);
        assert_eq!(c.ending, Ending::Truncated { valid_up_to: 23 + 9, multi: false });
        let open = [&good[..], b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"].concat();
        let c = parse_commands(&open, 0);
        assert_eq!((c.commands.len(), c.ending), (2, Ending::Truncated { valid_up_to: good.len(), multi: true }));
        let bad = [&good[..], b"+OK\r\n", &good[..]].concat();
        assert_eq!(parse_commands(&bad, 0).ending, Ending::BadFormat { offset: good.len() });
    }
}
