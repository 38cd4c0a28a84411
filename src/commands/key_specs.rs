//! Key specs (Redis 7): where a command's keys are in its arguments and how it uses them.
//! A spec is a begin-search step (a fixed index, or the argument after a keyword) and a
//! find-keys step (a range, or a count read from an argument), with flags (RO/RW/OW/RM and
//! access/update/insert/delete...). [`keys_of`] extracts a call's keys exactly as Redis's
//! getKeysFromCommandWithSpecs does: from the specs when they are complete and their flags
//! fixed, otherwise with the command's own key-finding function (Redis's getkeys_proc, see
//! [`procs`]). Locking, WATCH, tracking, COMMAND GETKEYS[ANDFLAGS] (and later ACL key
//! permissions and cluster slots) all use it.

use bytes::Bytes;
use smallvec::SmallVec;

/// Key-spec flags, in the order Redis prints them.
pub mod kflags {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    pub const NAMES: &[(u32, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

/// A key-spec flag by its COMMAND INFO name.
pub fn flag_by_name(name: &str) -> Option<u32> {
    kflags::NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginSearch {
    /// The first key is at this argument index.
    Index(i32),
    /// The first key follows `keyword`, searched from `startfrom` (from the end if negative).
    Keyword {
        keyword: String,
        startfrom: i32,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys from the first to `lastkey` (relative; negative counts from the end), every
    /// `keystep`; `limit` divides the rest of the arguments when lastkey is -1.
    Range {
        lastkey: i32,
        keystep: i32,
        limit: i32,
    },
    /// The number of keys is the argument `keynumidx` after the first; keys start `firstkey`
    /// after it.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        keystep: i32,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub flags: u32,
    pub notes: Option<String>,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// A key argument of a call: its index in the arguments and the spec flags that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef {
    pub pos: usize,
    pub flags: u32,
}

pub type Keys = SmallVec<[KeyRef; 8]>;

/// A command's own key finder (Redis's getkeys_proc), for specs that are incomplete or whose
/// flags depend on the arguments.
pub type GetKeys = fn(&[Bytes]) -> Keys;

/// The keys of a call (`args[0]` is the command name), as Redis's getKeysFromCommandWithSpecs
/// finds them; `arity` is the command's (negative: at least).
pub fn keys_of(specs: &[KeySpec], proc_: Option<GetKeys>, arity: i32, args: &[Bytes]) -> Keys {
    let has_keyspec = specs.iter().any(|s| s.flags & kflags::NOT_KEY == 0);
    let has_varflags = specs.iter().any(|s| s.flags & kflags::VARIABLE_FLAGS != 0);
    if has_keyspec && !has_varflags {
        if let Some(keys) = from_specs(specs, arity, args, false) {
            return keys;
        }
    }
    match proc_ {
        Some(f) => f(args),
        None => Keys::new(),
    }
}

/// Every argument of a call that may be a key, for locking, WATCH, blocking and tracking: the
/// keys of each spec that is valid for this call (a malformed call still locks the keys it
/// names: the handler reports its error after looking at them), plus the key finder's.
pub fn touched_keys(specs: &[KeySpec], proc_: Option<GetKeys>, arity: i32, args: &[Bytes]) -> Keys {
    let mut keys = from_specs(specs, arity, args, true).unwrap_or_default();
    if let Some(f) = proc_ {
        for k in f(args) {
            if !keys.iter().any(|x| x.pos == k.pos) {
                keys.push(k);
            }
        }
    }
    keys
}

/// Whether a command may have keys at all (Redis's doesCommandHaveKeys).
pub fn may_have_keys(specs: &[KeySpec], proc_: Option<GetKeys>) -> bool {
    proc_.is_some() || specs.iter().any(|s| s.flags & kflags::NOT_KEY == 0)
}

/// Redis's getKeysUsingKeySpecs: None when a spec is invalid or incomplete for this call, unless
/// `partial` (Redis's GET_KEYSPEC_RETURN_PARTIAL: such specs are skipped).
fn from_specs(specs: &[KeySpec], arity: i32, args: &[Bytes], partial: bool) -> Option<Keys> {
    let argc = args.len() as i64;
    let mut keys = Keys::new();
    // A spec that does not fit the call: skip it (partial), or give up.
    macro_rules! invalid {
        () => {{
            if partial {
                continue;
            }
            return None;
        }};
    }
    for spec in specs {
        if spec.flags & kflags::NOT_KEY != 0 {
            continue;
        }
        let first: i64 = match &spec.begin {
            BeginSearch::Index(pos) => *pos as i64,
            BeginSearch::Keyword { keyword, startfrom } => {
                // As Redis: search up to (not including) the last argument, or backwards down
                // to (not including) argument 1.
                let startfrom = *startfrom as i64;
                let (start, end) = if startfrom > 0 { (startfrom, argc - 1) } else { (argc + startfrom, 1) };
                let mut found = 0;
                let mut i = start;
                while i != end && i < argc && i >= 1 {
                    if args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => invalid!(),
        };
        let (first, last, step) = match spec.find {
            FindKeys::Range { lastkey, keystep, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit == 0 {
                    argc + lastkey as i64
                } else {
                    first + ((argc - first) / limit as i64 + lastkey as i64)
                };
                (first, last, keystep as i64)
            }
            FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                let numkeys = if keynumidx as i64 >= argc {
                    None
                } else {
                    args.get((first + keynumidx as i64) as usize).and_then(|a| crate::util::num::parse_i64(a))
                };
                let first = first + firstkey as i64;
                match numkeys.filter(|n| *n >= 0).and_then(|n| first.checked_add(n - 1)) {
                    Some(last) => (first, last, keystep as i64),
                    None => invalid!(),
                }
            }
            FindKeys::Unknown => invalid!(),
        };
        if last >= argc || last < first || first >= argc {
            invalid!();
        }
        let mut i = first;
        while i <= last {
            if i >= argc || i < first {
                // Only commands of variable arity get here with too few arguments; their
                // handler then reports the error.
                if arity < 0 {
                    i += step.max(1);
                    continue;
                }
                invalid!();
            }
            keys.push(KeyRef { pos: i as usize, flags: spec.flags });
            i += step.max(1);
        }
        if spec.flags & kflags::INCOMPLETE != 0 {
            invalid!();
        }
    }
    Some(keys)
}

/// The key finders of the commands whose specs are incomplete or have variable flags
/// (behaving as Redis's functions of the same names in db.c).
pub mod procs {
    use super::{kflags::*, KeyRef, Keys};
    use crate::util::num::atoi;
    use bytes::Bytes;

    fn is(a: &[u8], word: &str) -> bool {
        a.eq_ignore_ascii_case(word.as_bytes())
    }

    /// `[dest] numkeys key ...`: Redis's genericGetKeys (flags unset: the specs hold them).
    fn generic(store: usize, count_at: usize, first: usize, args: &[Bytes]) -> Keys {
        let mut keys = Keys::new();
        let Some(count) = args.get(count_at) else { return keys };
        let num = atoi(count);
        let argc = args.len() as i64;
        if num < 1 || num > argc - first as i64 {
            return keys;
        }
        keys.extend((0..num as usize).map(|i| KeyRef { pos: first + i, flags: 0 }));
        if store > 0 {
            keys.push(KeyRef { pos: store, flags: 0 });
        }
        keys
    }

    /// ZUNION, ZINTER, ZDIFF, ZINTERCARD, SINTERCARD, LMPOP, ZMPOP: `CMD numkeys key ...`.
    pub fn numkeys_at_1(args: &[Bytes]) -> Keys {
        generic(0, 1, 2, args)
    }

    /// EVAL*, FCALL*, BLMPOP, BZMPOP: `CMD x numkeys key ...`.
    pub fn numkeys_at_2(args: &[Bytes]) -> Keys {
        generic(0, 2, 3, args)
    }

    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: `CMD dest numkeys key ...`.
    pub fn store_numkeys(args: &[Bytes]) -> Keys {
        generic(1, 2, 3, args)
    }

    /// SORT_RO: the sort key (BY/GET patterns are not keys).
    pub fn sort_ro(_args: &[Bytes]) -> Keys {
        Keys::from_slice(&[KeyRef { pos: 1, flags: RO | ACCESS }])
    }

    /// SORT: the sort key and the last STORE destination.
    pub fn sort(args: &[Bytes]) -> Keys {
        let mut keys = Keys::from_slice(&[KeyRef { pos: 1, flags: RO | ACCESS }]);
        let mut store = None;
        let mut i = 2;
        while i < args.len() {
            let a = &args[i];
            if is(a, "limit") {
                i += 2;
            } else if is(a, "get") || is(a, "by") {
                i += 1;
            } else if is(a, "store") && i + 1 < args.len() {
                store = Some(i + 1);
            }
            i += 1;
        }
        keys.extend(store.map(|pos| KeyRef { pos, flags: OW | UPDATE }));
        keys
    }

    /// MIGRATE: the key, or the keys after KEYS.
    pub fn migrate(args: &[Bytes]) -> Keys {
        let (mut first, mut num) = (3usize, 1usize);
        if args.len() > 6 {
            let mut i = 6;
            while i < args.len() {
                let a = &args[i];
                if is(a, "keys") {
                    if !args[3].is_empty() {
                        num = 0;
                    } else {
                        first = i + 1;
                        num = args.len() - first;
                    }
                    break;
                }
                if is(a, "auth") {
                    i += 1;
                } else if is(a, "auth2") {
                    i += 2;
                }
                i += 1;
            }
        }
        (0..num)
            .filter(|i| first + i < args.len())
            .map(|i| KeyRef { pos: first + i, flags: RW | ACCESS | DELETE })
            .collect()
    }

    /// GEORADIUS[BYMEMBER]: the key and the last STORE/STOREDIST destination.
    pub fn georadius(args: &[Bytes]) -> Keys {
        let mut keys = Keys::from_slice(&[KeyRef { pos: 1, flags: 0 }]);
        let mut stored = None;
        let mut i = 5;
        while i < args.len() {
            if (is(&args[i], "store") || is(&args[i], "storedist")) && i + 1 < args.len() {
                stored = Some(i + 1);
                i += 1;
            }
            i += 1;
        }
        keys.extend(stored.map(|pos| KeyRef { pos, flags: 0 }));
        keys
    }

    /// XREAD, XREADGROUP: the keys after STREAMS (half of what follows).
    pub fn xread(args: &[Bytes]) -> Keys {
        let mut streams = None;
        let mut i = 1;
        while i < args.len() {
            let a = &args[i];
            if is(a, "block") || is(a, "count") {
                i += 1;
            } else if is(a, "group") {
                i += 2;
            } else if is(a, "noack") {
            } else if is(a, "streams") {
                streams = Some(i);
                break;
            } else {
                break;
            }
            i += 1;
        }
        let Some(at) = streams else { return Keys::new() };
        let num = args.len() - at - 1;
        if num == 0 || !num.is_multiple_of(2) {
            return Keys::new();
        }
        (at + 1..at + 1 + num / 2).map(|pos| KeyRef { pos, flags: 0 }).collect()
    }

    /// SET: RW access when GET is given, otherwise OW update.
    pub fn set(args: &[Bytes]) -> Keys {
        let get = args.iter().skip(3).any(|a| is(a, "get"));
        Keys::from_slice(&[KeyRef { pos: 1, flags: if get { RW | ACCESS | UPDATE } else { OW | UPDATE } }])
    }

    /// BITFIELD: read-only unless a SET or INCRBY (or a syntax error) follows.
    pub fn bitfield(args: &[Bytes]) -> Keys {
        let mut readonly = true;
        let mut i = 2;
        while i < args.len() {
            let rem = args.len() - i - 1;
            let a = &args[i];
            if is(a, "get") && rem >= 2 {
                i += 2;
            } else if (is(a, "set") || is(a, "incrby")) && rem >= 3 {
                readonly = false;
                break;
            } else if is(a, "overflow") && rem >= 1 {
                i += 1;
            } else {
                readonly = false;
                break;
            }
            i += 1;
        }
        let flags = if readonly { RO | ACCESS } else { RW | ACCESS | UPDATE };
        Keys::from_slice(&[KeyRef { pos: 1, flags }])
    }
}

/// The flag names of a key (COMMAND GETKEYSANDFLAGS, COMMAND INFO).
pub fn flag_names(flags: u32) -> impl Iterator<Item = &'static str> {
    kflags::NAMES.iter().filter(move |(f, _)| flags & f != 0).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    fn spec(flags: u32, begin: BeginSearch, find: FindKeys) -> KeySpec {
        KeySpec { flags, notes: None, begin, find }
    }

    fn positions(k: &Keys) -> Vec<usize> {
        k.iter().map(|k| k.pos).collect()
    }

    #[test]
    fn ranges_keywords_and_keynums() {
        use kflags::*;
        // MSET: every other argument from 1.
        let mset = [spec(OW | UPDATE, BeginSearch::Index(1), FindKeys::Range { lastkey: -1, keystep: 2, limit: 0 })];
        assert_eq!(positions(&keys_of(&mset, None, -3, &argv("MSET a 1 b 2"))), vec![1, 3]);
        // ZUNIONSTORE: dest, then numkeys keys.
        let zus = [
            spec(OW | UPDATE, BeginSearch::Index(1), FindKeys::Range { lastkey: 0, keystep: 1, limit: 0 }),
            spec(RO | ACCESS, BeginSearch::Index(2), FindKeys::Keynum { keynumidx: 0, firstkey: 1, keystep: 1 }),
        ];
        assert_eq!(positions(&keys_of(&zus, None, -4, &argv("ZUNIONSTORE d 2 a b WEIGHTS 1 2"))), vec![1, 3, 4]);
        // A bad numkeys makes the specs invalid: no proc, no keys.
        assert!(keys_of(&zus, None, -4, &argv("ZUNIONSTORE d x a b")).is_empty());
        // GEORADIUS-like STORE keyword.
        let store = [spec(
            OW | UPDATE,
            BeginSearch::Keyword { keyword: "STORE".into(), startfrom: 2 },
            FindKeys::Range { lastkey: 0, keystep: 1, limit: 0 },
        )];
        assert_eq!(positions(&keys_of(&store, None, -2, &argv("X k a store dst"))), vec![4]);
        assert!(keys_of(&store, None, -2, &argv("X k a b")).is_empty());
        // Searching backwards from the end (MIGRATE-like KEYS is proc-based; this is the shape).
        let back = [spec(
            RO,
            BeginSearch::Keyword { keyword: "KEYS".into(), startfrom: -2 },
            FindKeys::Range { lastkey: -1, keystep: 1, limit: 0 },
        )];
        assert_eq!(positions(&keys_of(&back, None, -2, &argv("X a KEYS k1 k2"))), vec![3, 4]);
    }

    #[test]
    fn variable_flags_use_the_proc() {
        use kflags::*;
        let set = [spec(
            RW | ACCESS | UPDATE | VARIABLE_FLAGS,
            BeginSearch::Index(1),
            FindKeys::Range { lastkey: 0, keystep: 1, limit: 0 },
        )];
        let k = keys_of(&set, Some(procs::set), -3, &argv("SET k v"));
        assert_eq!(k[0].flags, OW | UPDATE);
        let k = keys_of(&set, Some(procs::set), -3, &argv("SET k v GET"));
        assert_eq!(k[0].flags, RW | ACCESS | UPDATE);
        assert_eq!(positions(&procs::sort(&argv("SORT k BY w GET x STORE d LIMIT 0 1 STORE e"))), vec![1, 12]);
        assert_eq!(positions(&procs::xread(&argv("XREAD COUNT 2 STREAMS a b 0 0"))), vec![4, 5]);
        // KEYS needs an empty key argument; with a key given, the keys are ignored.
        let mut with_keys = argv("MIGRATE h p k 0 5 COPY KEYS a b");
        assert_eq!(positions(&procs::migrate(&with_keys)), Vec::<usize>::new());
        with_keys[3] = Bytes::new();
        assert_eq!(positions(&procs::migrate(&with_keys)), vec![8, 9]);
        assert_eq!(positions(&procs::migrate(&argv("MIGRATE h p k 0 5"))), vec![3]);
    }
}
