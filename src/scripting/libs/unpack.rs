//! Lua 5.1's `unpack` without its integer overflow (CVE-2025-46817, fixed in Redis 7.2.11): a
//! range as wide as `unpack(t, -2^31, 2^31 - 1)` overflowed the element count, the check that
//! guards the stack was optimised away and the state wrote past its stack (a segfault of the
//! whole server). The count is computed as Lua 5.2 (and Redis's fix) does, unsigned.

use mlua::ffi;
use std::os::raw::c_int;

/// `unpack(list [, i [, j]])`: `list[i], ..., list[j]` (`i` 1 and `j` `#list` by default).
///
/// # Safety
/// Called by the Lua VM as a C function: no value with a destructor is alive in this frame when
/// the Lua API raises (luaL_checktype, luaL_error).
pub unsafe extern "C-unwind" fn unpack(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    // luaL_optint / luaL_checkint: the lua_Integer cast to int, as the C macros do.
    let first = ffi::luaL_optinteger(state, 2, 1) as c_int;
    let last = if ffi::lua_isnoneornil(state, 3) != 0 {
        ffi::lua_objlen(state, 1) as c_int
    } else {
        ffi::luaL_checkinteger(state, 3) as c_int
    };
    if first > last {
        return 0;
    }
    // Elements minus one, which fits a u32 for any two ints.
    let span = (last as i64 - first as i64) as u64;
    if span >= c_int::MAX as u64 || ffi::lua_checkstack(state, span as c_int + 1) == 0 {
        return ffi::luaL_error(state, c"too many results to unpack".as_ptr());
    }
    for k in first..=last {
        ffi::lua_rawgeti(state, 1, k.into());
    }
    span as c_int + 1
}

#[cfg(test)]
mod tests {
    use mlua::{Lua, MultiValue, Value};

    fn run(code: &str) -> Result<Vec<i64>, String> {
        let lua = Lua::new();
        // SAFETY: a C function that follows the Lua C API's rules.
        let f = unsafe { lua.create_c_function(super::unpack) }.unwrap();
        lua.globals().set("unpack", f).unwrap();
        let out: MultiValue = lua.load(code).eval().map_err(|e| e.to_string())?;
        Ok(out
            .into_iter()
            .map(|v| match v {
                Value::Integer(n) => n,
                Value::Number(x) => x as i64,
                Value::Nil => 0,
                other => panic!("unexpected {other:?}"),
            })
            .collect())
    }

    #[test]
    fn unpacks_as_lua_5_1() {
        assert_eq!(run("return unpack({1, 2, 3})"), Ok(vec![1, 2, 3]));
        assert_eq!(run("return unpack({1, 2, 3}, 2)"), Ok(vec![2, 3]));
        assert_eq!(run("return unpack({1, 2, 3}, 2, 4)"), Ok(vec![2, 3, 0]));
        assert_eq!(run("return unpack({1, 2, 3}, 3, 1)"), Ok(vec![]));
        assert_eq!(run("return unpack({}, 2147483647, 2147483647)"), Ok(vec![0]));
        assert!(run("return unpack(nil)").unwrap_err().contains("table expected"));
    }

    #[test]
    fn a_range_too_wide_is_an_error_not_a_crash() {
        for range in ["-2147483648, 2147483647", "-2, 2147483647", "1, 2147483647", "-2147483648, 0"] {
            let err = run(&format!("return unpack({{1, 2, 3}}, {range})")).unwrap_err();
            assert!(err.contains("too many results to unpack"), "{range}: {err}");
        }
    }
}
