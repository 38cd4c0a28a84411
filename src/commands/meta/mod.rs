//! Command metadata as data: for every Redis command and subcommand, its arity, flags, ACL
//! categories, tips, key specs and documentation, as the oracles report them through COMMAND
//! INFO and COMMAND DOCS: COMMAND INFO is Redis 7.0.15's with the fields Redis 7.2 changed, COMMAND
//! DOCS is Redis 7.2.4's (see `tools/command_meta/generate.py`, which writes `commands.json`);
//! Sentinel mode's SENTINEL command comes from `sentinel.json`
//! (`tools/command_meta/sentinel.py`). The command table joins
//! each handler to its record here by name; COMMAND INFO/DOCS/GETKEYS, key locking, WATCH,
//! tracking, and later ACL and cluster checks all read the same record.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::flags;
use super::key_specs::{BeginSearch, FindKeys, KeySpec};

/// One command's (or subcommand's) metadata.
#[derive(Debug)]
pub struct Meta {
    pub arity: i32,
    /// Redis command flags (`flags::*`), the hidden ones (may_replicate, protected) included.
    pub flags: u64,
    /// COMMAND INFO's legacy (first, last, step) key range.
    pub legacy_range: [i32; 3],
    /// ACL categories, a bit per entry of [`super::ACL_CATEGORIES`].
    pub acl: u32,
    pub tips: Vec<String>,
    pub key_specs: Vec<KeySpec>,
    /// COMMAND DOCS' map for the command, without its `subcommands` (the table adds those it
    /// implements).
    pub docs: Doc,
}

/// A reply tree with its RESP3 types, encoded for the connection's protocol when sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Bulk(String),
    Simple(String),
    Int(i64),
    Null,
    Array(Vec<Doc>),
    Set(Vec<Doc>),
    Map(Vec<(Doc, Doc)>),
}

impl Doc {
    /// Write the tree into a reply.
    pub fn reply(&self, r: &mut crate::protocol::ReplySink) {
        match self {
            Doc::Bulk(s) => r.bulk(s.as_bytes()),
            Doc::Simple(s) => r.simple(s),
            Doc::Int(i) => r.int(*i),
            Doc::Null => r.null(),
            Doc::Array(v) => {
                r.array(v.len());
                v.iter().for_each(|d| d.reply(r));
            }
            Doc::Set(v) => {
                r.set(v.len());
                v.iter().for_each(|d| d.reply(r));
            }
            Doc::Map(v) => {
                r.map(v.len());
                for (k, d) in v {
                    k.reply(r);
                    d.reply(r);
                }
            }
        }
    }

    /// Entries of a map (empty for anything else).
    pub fn entries(&self) -> &[(Doc, Doc)] {
        match self {
            Doc::Map(v) => v,
            _ => &[],
        }
    }

    fn from_json(v: &serde_json::Value) -> Result<Doc, String> {
        use serde_json::Value as J;
        Ok(match v {
            J::String(s) => Doc::Bulk(s.clone()),
            J::Number(n) => Doc::Int(n.as_i64().ok_or("not an integer")?),
            J::Null => Doc::Null,
            J::Array(a) => Doc::Array(a.iter().map(Doc::from_json).collect::<Result<_, _>>()?),
            J::Object(o) if o.len() == 1 => {
                let (tag, inner) = o.iter().next().ok_or("empty object")?;
                match (tag.as_str(), inner) {
                    ("+", J::String(s)) => Doc::Simple(s.clone()),
                    ("~", J::Array(a)) => Doc::Set(a.iter().map(Doc::from_json).collect::<Result<_, _>>()?),
                    ("%", J::Array(pairs)) => Doc::Map(
                        pairs
                            .iter()
                            .map(|p| match p.as_array().map(Vec::as_slice) {
                                Some([k, v]) => Ok((Doc::from_json(k)?, Doc::from_json(v)?)),
                                _ => Err("a map entry is not a pair".to_string()),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(format!("unknown tree tag {tag}")),
                }
            }
            other => return Err(format!("unexpected {other}")),
        })
    }
}

/// Every command's metadata by full name (`get`, `client|list`).
pub fn all() -> &'static HashMap<String, Meta> {
    static META: OnceLock<HashMap<String, Meta>> = OnceLock::new();
    META.get_or_init(|| {
        let mut all = parse(include_str!("commands.json")).unwrap_or_else(|e| panic!("commands.json: {e}"));
        // SENTINEL and its subcommands: only a server in sentinel mode reports them
        // (`tools/command_meta/sentinel.py`).
        all.extend(parse(include_str!("sentinel.json")).unwrap_or_else(|e| panic!("sentinel.json: {e}")));
        all
    })
}

/// The metadata of one command (`parent|sub` for subcommands).
pub fn get(name: &str) -> Option<&'static Meta> {
    all().get(name)
}

fn parse(text: &str) -> Result<HashMap<String, Meta>, String> {
    let root: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = root["commands"].as_array().ok_or("no commands")?;
    let mut out = HashMap::with_capacity(list.len());
    for c in list {
        let name = c["name"].as_str().ok_or("a command without a name")?.to_string();
        let meta = parse_one(c).map_err(|e| format!("{name}: {e}"))?;
        out.insert(name, meta);
    }
    Ok(out)
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str()).collect()).unwrap_or_default()
}

fn int(v: &serde_json::Value) -> Result<i32, String> {
    v.as_i64().map(|n| n as i32).ok_or_else(|| format!("not an integer: {v}"))
}

fn parse_one(c: &serde_json::Value) -> Result<Meta, String> {
    let mut bits = 0u64;
    for name in strings(&c["flags"]).into_iter().chain(strings(&c["hidden_flags"])) {
        bits |= flags::by_name(name).ok_or_else(|| format!("unknown flag {name}"))?;
    }
    let mut acl = 0u32;
    for cat in strings(&c["acl"]) {
        let cat = cat.trim_start_matches('@');
        let i =
            super::ACL_CATEGORIES.iter().position(|c| *c == cat).ok_or_else(|| format!("unknown category {cat}"))?;
        acl |= 1 << i;
    }
    let range = c["legacy_range"].as_array().ok_or("no legacy range")?;
    let legacy_range = [int(&range[0])?, int(&range[1])?, int(&range[2])?];
    let key_specs =
        c["key_specs"].as_array().ok_or("no key specs")?.iter().map(parse_key_spec).collect::<Result<_, _>>()?;
    Ok(Meta {
        arity: int(&c["arity"])?,
        flags: bits,
        legacy_range,
        acl,
        tips: strings(&c["tips"]).into_iter().map(String::from).collect(),
        key_specs,
        docs: Doc::from_json(&c["docs"])?,
    })
}

fn parse_key_spec(k: &serde_json::Value) -> Result<KeySpec, String> {
    let mut bits = 0u32;
    for f in strings(&k["flags"]) {
        bits |= super::key_specs::flag_by_name(f).ok_or_else(|| format!("unknown key spec flag {f}"))?;
    }
    let bs = &k["begin_search"];
    let begin = match bs["type"].as_str() {
        Some("index") => BeginSearch::Index(int(&bs["index"])?),
        Some("keyword") => BeginSearch::Keyword {
            keyword: bs["keyword"].as_str().ok_or("keyword")?.to_string(),
            startfrom: int(&bs["startfrom"])?,
        },
        _ => BeginSearch::Unknown,
    };
    let fk = &k["find_keys"];
    let find = match fk["type"].as_str() {
        Some("range") => {
            FindKeys::Range { lastkey: int(&fk["lastkey"])?, keystep: int(&fk["keystep"])?, limit: int(&fk["limit"])? }
        }
        Some("keynum") => FindKeys::Keynum {
            keynumidx: int(&fk["keynumidx"])?,
            firstkey: int(&fk["firstkey"])?,
            keystep: int(&fk["keystep"])?,
        },
        _ => FindKeys::Unknown,
    };
    Ok(KeySpec { flags: bits, notes: k["notes"].as_str().map(String::from), begin, find })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_data_parses_and_holds_every_redis_command() {
        let all = super::all();
        assert!(all.len() > 350, "{} commands", all.len());
        let set = super::get("set").expect("set");
        assert_eq!(set.arity, -3);
        assert_eq!(set.key_specs.len(), 1);
        assert!(super::get("client|list").is_some());
        assert!(super::get("eval").unwrap().flags & super::flags::MAY_REPLICATE != 0);
    }
}
