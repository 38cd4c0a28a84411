//! The command table against real Redis 7.0.15, command by command: COMMAND INFO and COMMAND
//! DOCS of every command and subcommand both servers have, and COMMAND GETKEYSANDFLAGS for
//! calls built from each command's documented arguments (with and without the optional ones), in
//! RESP2 and RESP3. The only differences allowed are what Redis 7.2 changed (Ferrous reports
//! 7.2.4), as recorded by the metadata generator; a container's subcommand list is compared as
//! a set of names (Ferrous lists the subcommands it implements). COMMAND DOCS are 7.2.4's as a
//! whole (tests/command_docs_72.rs compares them byte for byte with 7.2.4's command JSON); here
//! the fields 7.2 left as they were are compared with 7.0.15, arguments without 7.2's
//! display_text.

mod common;

use common::{start_real_redis, Raw, Server};
use std::collections::BTreeSet;
use std::net::TcpStream;

/// What Redis 7.2 changed, as the metadata generator recorded it (src/commands/meta/commands.json):
/// the COMMAND INFO (command, field) pairs it took from Valkey 9.1 or 7.2.4's JSON (`report`),
/// the commands that 7.0.15 does not have at all, and per command the COMMAND DOCS fields whose
/// 7.2.4 value is not 7.0.15's (`docs_changed_72`).
struct Changed72 {
    info: Vec<(String, String)>,
    added: Vec<String>,
    docs: Vec<(String, String)>,
}

fn changed_72() -> Changed72 {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/commands/meta/commands.json"))
        .expect("read the command metadata");
    let meta: serde_json::Value = serde_json::from_str(&text).expect("the command metadata parses");
    let (mut info, mut added) = (Vec::new(), Vec::new());
    for line in meta["report"].as_array().expect("a report").iter().filter_map(|l| l.as_str()) {
        if !(line.contains(": 7.2") || line.contains(": whole entry")) {
            continue;
        }
        let (name, rest) = line.split_once(' ').expect("a report line");
        match rest.split_once(':') {
            Some((field, _)) if rest.contains(": 7.2") => info.push((name.to_string(), field.to_string())),
            _ => added.push(name.trim_end_matches(':').to_string()),
        }
    }
    let docs = meta["docs_changed_72"]
        .as_object()
        .expect("docs_changed_72")
        .iter()
        .flat_map(|(name, fields)| {
            fields.as_array().into_iter().flatten().filter_map(|f| Some((name.clone(), f.as_str()?.to_string())))
        })
        .collect();
    Changed72 { info, added, docs }
}

/// The name of a COMMAND INFO entry's element, as the generator's report names fields.
const INFO_FIELDS: [&str; 9] = ["name", "arity", "flags", "first", "last", "step", "acl", "tips", "key_specs"];

/// A parsed RESP3 reply, keeping what byte-for-byte comparison needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<V>),
    Set(Vec<V>),
    Map(Vec<(V, V)>),
    Null,
}

fn parse(buf: &[u8]) -> V {
    let mut pos = 0;
    let v = parse_at(buf, &mut pos);
    assert_eq!(pos, buf.len(), "trailing bytes after a reply");
    v
}

fn parse_at(buf: &[u8], pos: &mut usize) -> V {
    let end = *pos + buf[*pos..].windows(2).position(|w| w == b"\r\n").expect("a complete line");
    let (kind, line) = (buf[*pos], &buf[*pos + 1..end]);
    *pos = end + 2;
    let n = || std::str::from_utf8(line).expect("ascii").parse::<i64>().expect("a number");
    match kind {
        b'+' => V::Simple(line.to_vec()),
        b'-' => V::Error(line.to_vec()),
        b':' => V::Int(n()),
        b'_' => V::Null,
        b'$' if n() < 0 => V::Bulk(None),
        b'$' => {
            let len = n() as usize;
            let data = buf[*pos..*pos + len].to_vec();
            *pos += len + 2;
            V::Bulk(Some(data))
        }
        b'*' | b'~' => {
            let items = (0..n()).map(|_| parse_at(buf, pos)).collect();
            if kind == b'*' {
                V::Array(items)
            } else {
                V::Set(items)
            }
        }
        b'%' => V::Map((0..n()).map(|_| (parse_at(buf, pos), parse_at(buf, pos))).collect()),
        other => panic!("unexpected reply type {}", other as char),
    }
}

fn text(v: &V) -> String {
    match v {
        V::Bulk(Some(b)) | V::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

fn raw3(port: u16) -> Raw {
    let mut raw = Raw::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    raw.cmd(&["HELLO", "3"]);
    raw
}

fn names(v: &V) -> BTreeSet<String> {
    match v {
        V::Array(items) | V::Set(items) => items.iter().map(text).collect(),
        _ => BTreeSet::new(),
    }
}

/// The names of a container's subcommands in its COMMAND INFO entry (element 9).
fn sub_names(entry: &[V]) -> BTreeSet<String> {
    match &entry[9] {
        V::Array(items) | V::Set(items) => items
            .iter()
            .filter_map(|s| match s {
                V::Array(e) => Some(text(&e[0])),
                _ => None,
            })
            .collect(),
        _ => BTreeSet::new(),
    }
}

#[test]
fn command_info_docs_and_keys_match_redis() {
    let Some(redis) = start_real_redis("command_info_docs_and_keys_match_redis") else {
        return;
    };
    let ferrous = Server::start(&[]);
    let (mut r, mut f) = (raw3(redis.port), raw3(ferrous.port));
    let ours = names(&parse(&f.cmd(&["COMMAND", "LIST"])));
    let theirs = names(&parse(&r.cmd(&["COMMAND", "LIST"])));
    let both: Vec<&String> = ours.intersection(&theirs).collect();
    assert!(both.len() > 250, "only {} commands in common", both.len());
    let Changed72 { info: changed, added, docs: docs_changed } = changed_72();
    let is_72 = |name: &str, field: &str| changed.iter().any(|(n, f)| n == name && f == field);
    let docs_72 = |name: &str, field: &str| docs_changed.iter().any(|(n, f)| n == name && f == field);
    let mut mismatches = Vec::new();
    let mut identical = 0;
    for name in &both {
        let (ri, fi) = (parse(&r.cmd(&["COMMAND", "INFO", name])), parse(&f.cmd(&["COMMAND", "INFO", name])));
        let (V::Array(ri), V::Array(fi)) = (ri, fi) else { panic!("COMMAND INFO {name}") };
        let (V::Array(re), V::Array(fe)) = (&ri[0], &fi[0]) else { panic!("COMMAND INFO {name}: no entry") };
        let mut same = true;
        for i in 0..9 {
            if re[i] != fe[i] {
                same = false;
                if !is_72(name, INFO_FIELDS[i]) {
                    mismatches.push(format!("COMMAND INFO {name} [{i}]: redis {:?}, ferrous {:?}", re[i], fe[i]));
                }
            }
        }
        // Subcommands: those Ferrous lists must exist in Redis (or be 7.2's).
        let (rs, mut fs) = (sub_names(re), sub_names(fe));
        fs.retain(|s| !added.contains(s));
        if !fs.is_subset(&rs) {
            mismatches.push(format!("COMMAND INFO {name}: subcommands {fs:?} not within {rs:?}"));
        }
        identical += usize::from(same);
        let (rd, fd) = (parse(&r.cmd(&["COMMAND", "DOCS", name])), parse(&f.cmd(&["COMMAND", "DOCS", name])));
        let (V::Map(rd), V::Map(fd)) = (rd, fd) else { panic!("COMMAND DOCS {name}") };
        let (V::Map(rd), V::Map(fd)) = (&rd[0].1, &fd[0].1) else { panic!("COMMAND DOCS {name}: no entry") };
        // The fields 7.2 left as 7.0 had them; arguments as 7.0 renders them.
        let fields = |m: &Vec<(V, V)>| -> Vec<(String, V)> {
            m.iter()
                .filter(|(k, _)| text(k) != "subcommands" && !docs_72(name, &text(k)))
                .map(|(k, v)| (text(k), if text(k) == "arguments" { without_display_text(v) } else { v.clone() }))
                .collect()
        };
        let (rd, fd) = (fields(rd), fields(fd));
        if rd != fd {
            mismatches.push(format!("COMMAND DOCS {name}: redis {rd:?}, ferrous {fd:?}"));
        }
    }
    eprintln!(
        "COMMAND INFO identical for {identical} of {} commands both have ({} differ as Redis 7.2 changed them)",
        both.len(),
        both.len() - identical
    );
    assert!(mismatches.is_empty(), "{} mismatch(es):\n{}", mismatches.len(), mismatches.join("\n"));
}

/// COMMAND DOCS' arguments without Redis 7.2's display_text (7.0 does not have it), at every depth.
fn without_display_text(v: &V) -> V {
    match v {
        V::Array(args) => V::Array(args.iter().map(without_display_text).collect()),
        V::Map(fields) => V::Map(
            fields
                .iter()
                .filter(|(k, _)| text(k) != "display_text")
                .map(|(k, v)| (k.clone(), if text(k) == "arguments" { without_display_text(v) } else { v.clone() }))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Build a call from a command's documented arguments (Redis's COMMAND DOCS): keys k1, k2...,
/// numbers "1", tokens as they are, the first choice of each `oneof`; optional arguments only
/// with `full`, `multiple` ones twice.
fn build_call(args: &[V], full: bool, out: &mut Vec<String>, keyno: &mut usize) {
    for a in args {
        let V::Map(fields) = a else { continue };
        let get = |k: &str| fields.iter().find(|(n, _)| text(n) == k).map(|(_, v)| v);
        let flags: Vec<String> = match get("flags") {
            Some(V::Set(f)) | Some(V::Array(f)) => f.iter().map(text).collect(),
            _ => Vec::new(),
        };
        if flags.iter().any(|f| f == "optional") && !full {
            continue;
        }
        let times = if flags.iter().any(|f| f == "multiple") && full { 2 } else { 1 };
        for _ in 0..times {
            let kind = get("type").map(text).unwrap_or_default();
            if let Some(token) = get("token") {
                out.push(text(token));
            }
            match kind.as_str() {
                "pure-token" => {}
                "key" => {
                    *keyno += 1;
                    out.push(format!("k{keyno}"));
                }
                "oneof" => {
                    if let Some(V::Array(alts)) = get("arguments") {
                        build_call(&alts[..1], full, out, keyno);
                    }
                }
                "block" => {
                    if let Some(V::Array(inner)) = get("arguments") {
                        build_call(inner, full, out, keyno);
                    }
                }
                _ => out.push("1".into()),
            }
        }
    }
}

#[test]
fn getkeysandflags_matches_redis_for_every_command_with_keys() {
    let Some(redis) = start_real_redis("getkeysandflags_matches_redis_for_every_command_with_keys") else {
        return;
    };
    let ferrous = Server::start(&[]);
    let (mut r3, mut f3) = (raw3(redis.port), raw3(ferrous.port));
    let ours = names(&parse(&f3.cmd(&["COMMAND", "LIST"])));
    let V::Map(docs) = parse(&r3.cmd(&["COMMAND", "DOCS"])) else { panic!("COMMAND DOCS") };
    // Every command and subcommand with its documented arguments.
    let mut all: Vec<(String, Vec<V>)> = Vec::new();
    for (name, doc) in &docs {
        let V::Map(fields) = doc else { continue };
        for (k, v) in fields {
            match (text(k).as_str(), v) {
                ("arguments", V::Array(a)) => all.push((text(name), a.clone())),
                ("subcommands", V::Map(subs)) => {
                    for (sub, sdoc) in subs {
                        let V::Map(sf) = sdoc else { continue };
                        let args = sf.iter().find(|(k, _)| text(k) == "arguments").map(|(_, v)| v.clone());
                        all.push((text(sub), if let Some(V::Array(a)) = args { a } else { Vec::new() }));
                    }
                }
                _ => {}
            }
        }
    }
    let (mut r2, mut f2) = (redis_raw(redis.port), redis_raw(ferrous.port));
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (name, args) in &all {
        // Commands 7.2 changed the keys or arity of are compared with Valkey elsewhere.
        if !ours.contains(name) || matches!(name.as_str(), "zrank" | "zrevrank") {
            continue;
        }
        for full in [false, true] {
            let mut call: Vec<String> = name.split('|').map(String::from).collect();
            build_call(args, full, &mut call, &mut 0);
            // A bare command name: Redis 7.0 refuses it by GETKEYSANDFLAGS's own arity (-4),
            // 7.2 by the target's arity or keys (commands_72.txt compares that with Valkey).
            if call.len() < 2 {
                continue;
            }
            let mut request = vec!["COMMAND".to_string(), "GETKEYSANDFLAGS".to_string()];
            request.extend(call);
            let request: Vec<&str> = request.iter().map(String::as_str).collect();
            for (r, f, proto) in [(&mut r2, &mut f2, 2), (&mut r3, &mut f3, 3)] {
                let (rr, fr) = (r.cmd(&request), f.cmd(&request));
                if rr != fr {
                    // A command without keys answers the same error on both; anything else
                    // must match byte for byte.
                    mismatches.push(format!(
                        "RESP{proto} {}: redis {:?}, ferrous {:?}",
                        request[2..].join(" "),
                        String::from_utf8_lossy(&rr),
                        String::from_utf8_lossy(&fr)
                    ));
                }
            }
            checked += 1;
        }
    }
    eprintln!("COMMAND GETKEYSANDFLAGS compared for {checked} calls");
    assert!(checked > 300, "only {checked} calls");
    assert!(mismatches.is_empty(), "{} mismatch(es):\n{}", mismatches.len(), mismatches.join("\n"));
}

fn redis_raw(port: u16) -> Raw {
    Raw::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
}
