//! Function libraries (Redis 7 functions): `#!lua name=<lib>` sources loaded into their own
//! Lua engine, `redis.register_function` (positional and named-table forms, with flags), the
//! function index FCALL looks names up in, and FUNCTION DUMP / RESTORE payloads in Redis's
//! format (RDB opcode FUNCTION2 + string, RDB version 10, CRC-64), interchangeable with Redis.

use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{compile_error, new_state, Api};
use super::libs::{fail_table, ok, LResult};

/// How long library code may run while loading (Redis's LOAD_TIMEOUT_MS).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);
const NAME_ERROR: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub struct FunctionInfo {
    pub name: String,
    pub desc: Option<Vec<u8>>,
    pub flags: u32,
    /// The function (a registry reference: runs push it with the C API).
    pub func: mlua::RegistryKey,
}

pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: BTreeMap<String, FunctionInfo>,
}

/// A registry's library sources by name, kept in step with it by every change and readable
/// without the registry's lock, which a running function holds (SAVE, BGSAVE and full
/// synchronisations read them). A change updates one entry: loading the 50,000th library
/// costs what loading the first did.
pub type Published = Arc<Mutex<BTreeMap<String, Bytes>>>;

/// The function engine and its libraries.
pub struct Functions {
    /// Declared before `lua`: dropped first (its allocator guard needs the state; `heap.rs`).
    pub api: Api,
    pub lua: Lua,
    pub libraries: BTreeMap<String, Library>,
    /// Function name (lower-case: FCALL names are case-insensitive in Redis 7.0, as its
    /// global function dictionary is) → library name.
    pub index: HashMap<String, String, ahash::RandomState>,
    /// The sources, for readers that cannot take the registry's lock.
    pub published: Published,
    /// The sources' total length (INFO's used_memory_functions).
    pub code_bytes: u64,
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Redis's functionExtractLibMetaData: (engine, name, code from the shebang's newline on).
fn metadata(code: &[u8]) -> Result<(String, String, &[u8]), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = crate::util::split_args::split_args(&code[..end]).unwrap_or_default();
    let Some(first) = parts.first() else {
        return Err("Invalid library metadata".into());
    };
    let engine = crate::util::bytetext::c_string(&first[2..], usize::MAX);
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(String::from_utf8_lossy(&p[5..]).into_owned());
            continue;
        }
        return Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(p)));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    Ok((engine, name, &code[end..]))
}

impl Functions {
    pub fn new() -> mlua::Result<Self> {
        let (lua, api) = new_state(true)?;
        Ok(Functions {
            lua,
            api,
            libraries: BTreeMap::new(),
            index: HashMap::default(),
            published: Published::default(),
            code_bytes: 0,
        })
    }

    pub fn function_count(&self) -> usize {
        self.index.len()
    }

    /// FUNCTION LOAD from a client: the library's name, or Redis's error text. Its code may run
    /// for [`LOAD_TIMEOUT`].
    pub fn load(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        self.load_within(code, replace, Some(LOAD_TIMEOUT))
    }

    /// A library the server must take whatever its code's running time: from an RDB file,
    /// FUNCTION RESTORE, the AOF or a master (Redis 7.2 passes a timeout of 0 there, #12451).
    pub fn load_untimed(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        self.load_within(code, replace, None)
    }

    fn load_within(&mut self, code: &[u8], replace: bool, timeout: Option<Duration>) -> Result<String, String> {
        let (engine, name, body) = metadata(code)?;
        if !valid_name(name.as_bytes()) {
            return Err(NAME_ERROR.into());
        }
        if !engine.eq_ignore_ascii_case("lua") {
            return Err(format!("Engine '{engine}' not found"));
        }
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let functions = self.evaluate(body, timeout)?;
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        for f in functions.keys() {
            if self.index.get(&f.to_ascii_lowercase()).is_some_and(|lib| *lib != name) {
                return Err(format!("Function {f} already exists"));
            }
        }
        self.forget(&name);
        for f in functions.keys() {
            self.index.insert(f.to_ascii_lowercase(), name.clone());
        }
        let code = Bytes::copy_from_slice(code);
        self.code_bytes += code.len() as u64;
        self.published.lock().insert(name.clone(), code.clone());
        self.libraries.insert(name.clone(), Library { name: name.clone(), code, functions });
        Ok(name)
    }

    /// FUNCTION DELETE: whether the library existed.
    pub fn delete(&mut self, name: &str) -> bool {
        let existed = self.forget(name);
        if existed {
            self.published.lock().remove(name);
        }
        existed
    }

    /// Drop a library from the registry (not from what is published: a replacement swaps
    /// its entry there in one step).
    fn forget(&mut self, name: &str) -> bool {
        match self.libraries.remove(name) {
            Some(lib) => {
                for f in lib.functions.keys() {
                    self.index.remove(&f.to_ascii_lowercase());
                }
                self.code_bytes -= lib.code.len() as u64;
                true
            }
            None => false,
        }
    }

    pub fn get(&self, function: &[u8]) -> Option<&FunctionInfo> {
        let name = std::str::from_utf8(function).ok()?;
        let lib = if name.bytes().any(|c| c.is_ascii_uppercase()) {
            self.index.get(&name.to_ascii_lowercase())
        } else {
            self.index.get(name)
        };
        let lib = self.libraries.get(lib?)?;
        lib.functions
            .get(name)
            .or_else(|| lib.functions.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, f)| f))
    }

    /// Compile and run library code with the library API, collecting registered functions.
    fn evaluate(&mut self, body: &[u8], timeout: Option<Duration>) -> Result<BTreeMap<String, FunctionInfo>, String> {
        if let Some(text) = super::engine::refused_chunk(body, "user_function") {
            return Err(format!("Error compiling function: {text}"));
        }
        let func = self
            .lua
            .load(body)
            .set_name(super::engine::USER_FUNCTION)
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.api.env.clone())
            .into_function()
            .map_err(|e| {
                format!(
                    "Error compiling function: {}",
                    compile_error(&self.lua, body, super::engine::USER_FUNCTION, &e)
                )
            })?;
        let registered = std::cell::RefCell::new(BTreeMap::new());
        let api = &self.api;
        let lua_err = |e: mlua::Error| e.to_string();
        super::readonly::raw_set(&self.lua, &api.env_meta, "__index", &api.lib_api).map_err(lua_err)?;
        match timeout {
            Some(timeout) => {
                let deadline = Instant::now() + timeout;
                let _ = self.lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(100_000), move |lua, _| {
                    if Instant::now() < deadline {
                        return Ok(mlua::VmState::Continue);
                    }
                    let _ = lua.set_hook(mlua::HookTriggers::new().every_line(), |_, _| {
                        Err(mlua::Error::runtime("FUNCTION LOAD timeout"))
                    });
                    Err(mlua::Error::runtime("FUNCTION LOAD timeout"))
                });
            }
            None => self.lua.remove_hook(),
        }
        let result = self.lua.scope(|scope| {
            let register = scope.create_function(|lua, a: MultiValue| register(lua, &registered, a))?;
            api.ctx.raw_set("register", register)?;
            let r = api.runp.call::<(bool, Value)>(func);
            api.ctx.raw_set("register", Value::Nil)?;
            r
        });
        super::run::install_hook(&self.lua);
        super::readonly::raw_set(&self.lua, &api.env_meta, "__index", &api.real).map_err(lua_err)?;
        match result {
            Ok((true, _)) => Ok(registered.into_inner()),
            Ok((false, e)) => {
                let msg = match &e {
                    Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                    Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                    Value::Error(e) if e.to_string().contains("FUNCTION LOAD timeout") => {
                        "ERR FUNCTION LOAD timeout".to_string()
                    }
                    _ => "ERR unknown error".to_string(),
                };
                Err(format!("Error registering functions: {msg}"))
            }
            Err(e) => {
                let text = e.to_string();
                let text =
                    if text.contains("FUNCTION LOAD timeout") { "FUNCTION LOAD timeout".to_string() } else { text };
                Err(format!("Error registering functions: ERR {text}"))
            }
        }
    }
}

/// redis.register_function(name, callback) or redis.register_function{function_name=...,
/// callback=..., flags={...}, description=...}.
fn register(lua: &Lua, registered: &std::cell::RefCell<BTreeMap<String, FunctionInfo>>, a: MultiValue) -> LResult {
    if a.is_empty() || a.len() > 2 {
        return fail_table(lua, "wrong number of arguments to redis.register_function");
    }
    let (name, desc, flags, func) = if a.len() == 2 {
        let Some(name) = string_arg(&a[0]) else {
            return fail_table(lua, "first argument to redis.register_function must be a string");
        };
        let Value::Function(f) = &a[1] else {
            return fail_table(lua, "second argument to redis.register_function must be a function");
        };
        (name, None, 0, f.clone())
    } else {
        let Value::Table(t) = &a[0] else {
            return fail_table(
                lua,
                "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
            );
        };
        match named_args(t) {
            Ok(x) => x,
            Err(e) => return fail_table(lua, e),
        }
    };
    if !valid_name(&name) {
        return fail_table(lua, NAME_ERROR);
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let mut reg = registered.borrow_mut();
    if reg.contains_key(&name) {
        return fail_table(lua, "Function already exists in the library");
    }
    let func = lua.create_registry_value(func)?;
    reg.insert(name.clone(), FunctionInfo { name, desc, flags, func });
    ok(lua, ())
}

/// A string argument as luaGetStringSds takes it (strings and numbers).
fn string_arg(v: &Value) -> Option<Vec<u8>> {
    super::libs::arg_str(v)
}

type Named = (Vec<u8>, Option<Vec<u8>>, u32, Function);

fn named_args(t: &Table) -> Result<Named, &'static str> {
    let (mut name, mut desc, mut flags, mut func) = (None, None, 0, None);
    for pair in t.clone().pairs::<Value, Value>() {
        let Ok((k, v)) = pair else { continue };
        let Value::String(k) = k else {
            return Err("named argument key given to redis.register_function is not a string");
        };
        let key = k.to_string_lossy().to_ascii_lowercase();
        match key.as_str() {
            "function_name" => match string_arg(&v) {
                Some(s) => name = Some(s),
                None => return Err("function_name argument given to redis.register_function must be a string"),
            },
            "description" => match string_arg(&v) {
                Some(s) => desc = Some(s),
                None => return Err("description argument given to redis.register_function must be a string"),
            },
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => return Err("callback argument given to redis.register_function must be a function"),
            },
            "flags" => {
                let Value::Table(ft) = v else {
                    return Err(
                        "flags argument to redis.register_function must be a table representing function flags",
                    );
                };
                for i in 1.. {
                    match ft.raw_get::<Value>(i) {
                        Ok(Value::Nil) | Err(_) => break,
                        Ok(Value::String(s)) => match super::flags::by_name(&s.as_bytes()) {
                            Some(f) => flags |= f,
                            None => return Err("unknown flag given"),
                        },
                        Ok(_) => return Err("unknown flag given"),
                    }
                }
            }
            _ => return Err("unknown argument given to redis.register_function"),
        }
    }
    let Some(name) = name else {
        return Err("redis.register_function must get a function name argument");
    };
    let Some(func) = func else {
        return Err("redis.register_function must get a callback argument");
    };
    Ok((name, desc, flags, func))
}

// ---- FUNCTION DUMP / RESTORE payloads ----

// The RDB pieces are the persistence module's: FUNCTION DUMP is the RDB FUNCTION2 opcode,
// the RDB version footer and the same CRC-64 as DUMP.
use crate::persistence::rdb::{write_len, CRC64, OPCODE_FUNCTION2, RDB_VERSION};

/// FUNCTION DUMP's payload for these library sources.
pub fn dump(sources: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in sources {
        out.push(OPCODE_FUNCTION2);
        write_len(&mut out, s.len() as u64);
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Parse a FUNCTION RESTORE payload into library sources, or Redis's error text.
pub fn parse_dump(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if !crate::persistence::dump::verify(payload) {
        return Err("DUMP payload version or checksum are wrong".to_string());
    }
    let data = &payload[..payload.len() - 10];
    let mut r = crate::persistence::reader::Reader::new(data);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let Ok(t) = r.u8() else { return Err("can not read data type".into()) };
        if t != OPCODE_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        match r.string() {
            Ok(s) => out.push(s),
            Err(_) => return Err("failed loading the given functions payload".into()),
        }
    }
    Ok(out)
}

impl Functions {
    /// FUNCTION RESTORE with policy "flush", "append" or "replace".
    pub fn restore(&mut self, sources: Vec<Vec<u8>>, policy: &str) -> Result<(), String> {
        let mut fresh = Functions::new().map_err(|e| e.to_string())?;
        if policy != "flush" {
            let incoming: Vec<String> = sources.iter().filter_map(|s| metadata(s).ok().map(|(_, n, _)| n)).collect();
            for lib in self.libraries.values() {
                if incoming.contains(&lib.name) {
                    if policy == "append" {
                        return Err(format!("Library {} already exists", lib.name));
                    }
                    continue;
                }
                fresh.load_untimed(&lib.code, false)?;
            }
        }
        for s in &sources {
            fresh.load_untimed(s, false).map_err(|e| {
                e.strip_prefix("Library '")
                    .and_then(|r| r.strip_suffix("' already exists"))
                    .map_or(e.clone(), |n| format!("Library {n} already exists"))
            })?;
        }
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_matches_redis_layout() {
        let p = dump(&[b"#!lua name=l\nx"]);
        assert_eq!(p[0], 245);
        assert_eq!(p[1] as usize, 14);
        assert_eq!(parse_dump(&p).unwrap(), vec![b"#!lua name=l\nx".to_vec()]);
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert!(parse_dump(&bad).is_err());
    }

    #[test]
    fn restores_a_real_redis_payload() {
        // FUNCTION DUMP of Redis 7.0.15 (its library string is LZF-compressed).
        let hex = concat!(
            "f5c3406540701f23216c7561206e616d653d6c320a72656469732e72656769737465725f66756e0b6374696f6e",
            "28276632272c20e0000e116b6579732c2061726773292072657475726e200640390863616c6c2827736574202d",
            "4024025b315d80272008052920656e6429f5c3407740811f23216c7561206e616d653d6c310a72656469732e72",
            "656769737465725f66756e056374696f6e7bc008005f60280e276631272c2063616c6c6261636b3dc01c1f2829",
            "2072657475726e203120656e642c20666c6167733d7b276e6f2d777269740c6573277d2c2064657363726970",
            "4056043d2764277d0a0011469dcf1d0a8daa"
        );
        let clean: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        let bytes: Vec<u8> =
            (0..clean.len()).step_by(2).map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap()).collect();
        let libs = parse_dump(&bytes).unwrap();
        assert_eq!(libs.len(), 2);
        assert!(libs[1].starts_with(b"#!lua name=l1\nredis.register_function{function_name='f1'"));
        let mut f = Functions::new().unwrap();
        f.restore(libs, "append").unwrap();
        assert!(f.get(b"f1").is_some() && f.get(b"f2").is_some());
    }

    #[test]
    fn only_a_clients_load_is_timed() {
        // Runs past LOAD_TIMEOUT (about 1 s in a release build; Redis 7.2.4: the same library loads
        // from an RDB file or FUNCTION RESTORE and times out in FUNCTION LOAD).
        let slow = b"#!lua name=slow\nlocal t = 0\nfor i = 1, 400000000 do t = t + i end\n\
                     redis.register_function('slowf', function() return 1 end)";
        let mut f = Functions::new().unwrap();
        assert_eq!(f.load(slow, false).unwrap_err(), "Error registering functions: ERR FUNCTION LOAD timeout");
        assert_eq!(f.load_untimed(slow, false).unwrap(), "slow");
        assert!(f.get(b"slowf").is_some());
    }

    #[test]
    fn published_sources_follow_every_change() {
        let mut f = Functions::new().unwrap();
        let lib = |name: &str, body: &str| format!("#!lua name={name}\nredis.register_function('{name}f', {body})");
        let published = |f: &Functions| {
            let p = f.published.lock();
            (p.iter().map(|(n, c)| (n.clone(), c.to_vec())).collect::<Vec<_>>(), f.code_bytes)
        };
        let (a1, b) = (lib("a", "function() return 1 end"), lib("b", "function() return 2 end"));
        f.load(a1.as_bytes(), false).unwrap();
        f.load(b.as_bytes(), false).unwrap();
        let a2 = lib("a", "function() return 3 end");
        f.load(a2.as_bytes(), true).unwrap();
        let expect = vec![("a".to_string(), a2.clone().into_bytes()), ("b".to_string(), b.clone().into_bytes())];
        assert_eq!(published(&f), (expect, (a2.len() + b.len()) as u64));
        // A failed load changes nothing.
        assert!(f.load(b"#!lua name=c\nlocal x = 1", false).is_err());
        assert!(f.delete("a"));
        assert_eq!(published(&f), (vec![("b".to_string(), b.clone().into_bytes())], b.len() as u64));
        // RESTORE builds a new registry: it publishes its own sources.
        f.restore(vec![a1.clone().into_bytes()], "append").unwrap();
        let expect = vec![("a".to_string(), a1.clone().into_bytes()), ("b".to_string(), b.clone().into_bytes())];
        assert_eq!(published(&f), (expect, (a1.len() + b.len()) as u64));
    }

    #[test]
    fn loads_libraries() {
        let mut f = Functions::new().unwrap();
        let code = b"#!lua name=mylib\nredis.register_function('f1', function(keys, args) return 1 end)";
        assert_eq!(f.load(code, false).unwrap(), "mylib");
        assert_eq!(f.load(code, false).unwrap_err(), "Library 'mylib' already exists");
        assert!(f.get(b"f1").is_some());
        assert_eq!(
            f.load(b"#!lua name=l2\nredis.register_function()", false).unwrap_err(),
            "Error registering functions: ERR wrong number of arguments to redis.register_function"
        );
        assert_eq!(
            f.load(b"#!lua name=l2\nstring.format('x')", false).unwrap_err(),
            "Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'string'"
        );
        assert_eq!(f.load(b"#!lua name=l2\nlocal a = 1", false).unwrap_err(), "No functions registered");
        assert_eq!(
            f.load(b"#!lua name=l2\nx(", false).unwrap_err(),
            "Error compiling function: user_function:2: unexpected symbol near '<eof>'"
        );
        assert_eq!(f.load(b"#!lua name=l1 foo=bar\n", false).unwrap_err(), "Invalid metadata value given: foo=bar");
    }
}
