//! Lua 5.1's pattern functions (`string.find`, `match`, `gmatch`, `gsub`) with a bound on how
//! deep their matcher recurses. Lua 5.1's `match` recurses once per `?`, `*`, `+` or `-` item
//! of a pattern, on the C stack and without a limit: `string.find(s, string.rep('a?', 200000))`
//! overflows Redis 7.2.4's 8 MB stack (a segfault of the whole server), and a few million items
//! overflowed the stack Ferrous runs scripts on. Lua 5.2 bounds the depth ("pattern too
//! complex"); here a pattern with more quantifiers than [`MAX_QUANTIFIERS`] gets that error
//! before the matcher runs, and every other call goes straight to Lua's own C function, in the
//! same call frame (so its argument errors still name the function as the script called it).
//! (A depth counter inside the vendored lstrlib.c would be exact, but it errs only once the
//! recursion is that deep, which needs the stack at every build's frame size: debug builds'
//! frames are several times larger. Counting first needs no stack.)

use mlua::ffi;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most `?`/`*`/`+`/`-` bytes a pattern may hold: each is at most one level of the
/// matcher's recursion (a few dozen bytes of stack each; 32 captures add at most 64 more).
/// More than Redis 7.2 can match on its own stack (about 150,000), far less than the 64 MiB
/// script stack holds.
pub const MAX_QUANTIFIERS: usize = 200_000;

/// Recursion levels a pattern can cost: its quantifier bytes (an escaped one counts too).
fn quantifiers(pattern: &[u8]) -> usize {
    pattern.iter().filter(|&&b| matches!(b, b'?' | b'*' | b'+' | b'-')).count()
}

/// Lua's own C functions, taken from the string library when the first state is made (the
/// same for every state: they are functions of the linked Lua library).
static FIND: AtomicUsize = AtomicUsize::new(0);
static MATCH: AtomicUsize = AtomicUsize::new(0);
static GMATCH: AtomicUsize = AtomicUsize::new(0);
static GSUB: AtomicUsize = AtomicUsize::new(0);

/// Runs Lua's function kept in `slot` on this frame, unless argument 2 is a pattern too deep.
///
/// # Safety
/// Called by the Lua VM as a C function; `slot` holds a lua_CFunction (set by [`install`]).
unsafe fn checked(state: *mut ffi::lua_State, slot: &AtomicUsize, plain_arg: Option<c_int>) -> c_int {
    let plain = plain_arg.is_some_and(|i| ffi::lua_toboolean(state, i) != 0);
    if !plain && ffi::lua_type(state, 2) == ffi::LUA_TSTRING {
        let mut len = 0;
        let p = ffi::lua_tolstring(state, 2, &mut len);
        if len > MAX_QUANTIFIERS && quantifiers(std::slice::from_raw_parts(p.cast::<u8>(), len)) > MAX_QUANTIFIERS {
            return ffi::luaL_error(state, c"pattern too complex".as_ptr());
        }
    }
    // SAFETY: install stored a lua_CFunction's address in the slot before any wrapper existed.
    let original: ffi::lua_CFunction = std::mem::transmute::<usize, ffi::lua_CFunction>(slot.load(Ordering::Relaxed));
    original(state)
}

unsafe extern "C-unwind" fn find(state: *mut ffi::lua_State) -> c_int {
    checked(state, &FIND, Some(4))
}

unsafe extern "C-unwind" fn match_(state: *mut ffi::lua_State) -> c_int {
    checked(state, &MATCH, None)
}

unsafe extern "C-unwind" fn gmatch(state: *mut ffi::lua_State) -> c_int {
    checked(state, &GMATCH, None)
}

unsafe extern "C-unwind" fn gsub(state: *mut ffi::lua_State) -> c_int {
    checked(state, &GSUB, None)
}

/// Replaces the four functions in `string` (and `gfind`, Lua 5.1's alias of `gmatch`, kept the
/// same function object) with their bounded versions.
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    let string: mlua::Table = lua.globals().raw_get("string")?;
    let slots: [(&str, &AtomicUsize, ffi::lua_CFunction); 4] =
        [("find", &FIND, find), ("match", &MATCH, match_), ("gmatch", &GMATCH, gmatch), ("gsub", &GSUB, gsub)];
    for (name, slot, wrapper) in slots {
        let original: mlua::Function = string.raw_get(name)?;
        // SAFETY: lua_tocfunction reads the function pushed just before; the pointer is a
        // lua_CFunction of the Lua library (or null for a Lua function, refused below).
        let address = unsafe {
            lua.exec_raw::<usize>(&original, |state| {
                let f = ffi::lua_tocfunction(state, -1);
                ffi::lua_pop(state, 1);
                ffi::lua_pushinteger(state, f.map_or(0, |f| f as usize) as ffi::lua_Integer);
            })?
        };
        if address == 0 {
            return Err(mlua::Error::runtime(format!("string.{name} is not a C function")));
        }
        slot.store(address, Ordering::Relaxed);
        // SAFETY: the wrappers follow the Lua C API's rules; they run Lua's own function.
        let bounded = unsafe { lua.create_c_function(wrapper)? };
        string.raw_set(name, bounded.clone())?;
        if name == "gmatch" {
            string.raw_set("gfind", bounded)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    fn lua() -> Lua {
        let lua = Lua::new();
        super::install(&lua).unwrap();
        lua
    }

    #[test]
    fn patterns_match_as_before() {
        let lua = lua();
        let got: (i64, i64, String, String, i64) = lua
            .load(
                "local a, b = string.find('hello world', 'o w')
                 local n = 0
                 for w in string.gfind('a b c', '%a') do n = n + 1 end
                 return a, b, string.match('key=val', '(%w+)=') , (string.gsub('aaa', 'a', 'b')), n",
            )
            .eval()
            .unwrap();
        assert_eq!(got, (5, 7, "key".into(), "bbb".into(), 3));
        let same: bool = lua.load("return string.gfind == string.gmatch").eval().unwrap();
        assert!(same);
        let err = lua.load("string.find('x', nil)").exec().unwrap_err().to_string();
        assert!(err.contains("bad argument #2 to 'find' (string expected, got nil)"), "{err}");
    }

    #[test]
    fn a_pattern_too_deep_is_an_error_not_a_crash() {
        let lua = lua();
        let n = super::MAX_QUANTIFIERS + 1;
        for f in ["find", "match", "gmatch", "gsub"] {
            let extra = if f == "gsub" { ", ''" } else { "" };
            let code = format!("return string.{f}(string.rep('a', {n}), string.rep('a?', {n}){extra})");
            let err = lua.load(code).exec().unwrap_err().to_string();
            assert!(err.contains("pattern too complex"), "{f}: {err}");
        }
        // A plain find does not match patterns; as deep a pattern as allowed still matches.
        let plain: i64 = lua
            .load(format!("return (string.find(string.rep('?', {n}), string.rep('?', {n}), 1, true))"))
            .eval()
            .unwrap();
        assert_eq!(plain, 1);
        let ok: i64 = lua.load("return (string.find(string.rep('a', 1000), string.rep('a?', 1000)))").eval().unwrap();
        assert_eq!(ok, 1);
    }
}
