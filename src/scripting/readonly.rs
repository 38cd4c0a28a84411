//! Read-only tables: the flag the patched Lua keeps on every table (vendor/lua-src/PATCHES.md).
//! The sandbox's globals, its libraries and everything reachable from them are read-only, as
//! Redis protects them (luaSetTableProtectionRecursively): scripts read, iterate and `rawget`
//! them like any table, and every write (`t.k = v`, `rawset`, `table.insert`, `setmetatable`)
//! raises "Attempt to modify a readonly table".

use mlua::{ffi, IntoLua, Lua, Table};
use std::os::raw::c_int;

extern "C-unwind" {
    fn lua_enablereadonlytable(state: *mut ffi::lua_State, idx: c_int, enabled: c_int);
    fn lua_isreadonlytable(state: *mut ffi::lua_State, idx: c_int) -> c_int;
}

/// Set or clear the flag of the table at `idx`.
///
/// # Safety
/// `idx` is a valid index of a table on `state`'s stack.
pub unsafe fn enable(state: *mut ffi::lua_State, idx: c_int, readonly: bool) {
    lua_enablereadonlytable(state, idx, readonly as c_int);
}

/// `t[key] = value` without metamethods, in a table that may be read-only (its flag is cleared
/// for the write and set again; a string key cannot make the write fail in between).
pub fn raw_set(lua: &Lua, t: &Table, key: &str, value: impl IntoLua) -> mlua::Result<()> {
    // SAFETY: the three values are on the stack (table at -3); rawset takes key and value,
    // leaving the table, which is popped.
    unsafe {
        lua.exec_raw::<()>((t, key, value), |state| {
            let was = lua_isreadonlytable(state, -3);
            lua_enablereadonlytable(state, -3, 0);
            ffi::lua_rawset(state, -3);
            lua_enablereadonlytable(state, -1, was);
            ffi::lua_pop(state, 1);
        })
    }
}

/// Make `t`, every table reachable from it (values, recursively) and their metatables
/// read-only. A table already read-only is not walked again (`_G._G` loops back).
pub fn protect(lua: &Lua, t: &Table) -> mlua::Result<()> {
    // SAFETY: protect_top walks the table on top of the stack with lua_next, keeping the stack
    // balanced; the table is popped at the end.
    unsafe {
        lua.exec_raw::<()>(t, |state| {
            protect_top(state);
            ffi::lua_pop(state, 1);
        })
    }
}

unsafe fn protect_top(state: *mut ffi::lua_State) {
    if lua_isreadonlytable(state, -1) != 0 {
        return;
    }
    lua_enablereadonlytable(state, -1, 1);
    if ffi::lua_checkstack(state, 3) == 0 {
        return;
    }
    ffi::lua_pushnil(state);
    while ffi::lua_next(state, -2) != 0 {
        if ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
            protect_top(state);
        }
        ffi::lua_pop(state, 1);
    }
    if ffi::lua_getmetatable(state, -1) != 0 {
        protect_top(state);
        ffi::lua_pop(state, 1);
    }
}

#[cfg(test)]
mod tests {
    use mlua::{Lua, Table};

    #[test]
    fn protected_tables_read_and_refuse_writes() {
        let lua = Lua::new();
        let t: Table = lua.load("return setmetatable({ a = 1, inner = { b = 2 } }, { __index = {} })").eval().unwrap();
        super::protect(&lua, &t).unwrap();
        lua.globals().set("t", &t).unwrap();
        let n: i64 =
            lua.load("local n = 0 for _ in pairs(t) do n = n + 1 end return n + rawget(t, 'a')").eval().unwrap();
        assert_eq!(n, 3);
        for write in [
            "t.a = 2",
            "t.inner.b = 3",
            "rawset(t, 'c', 1)",
            "table.insert(t, 1)",
            "setmetatable(t, nil)",
            "getmetatable(t).__index.x = 1",
        ] {
            let err = lua.load(write).exec().unwrap_err().to_string();
            assert!(err.contains("Attempt to modify a readonly table"), "{write}: {err}");
        }
        super::raw_set(&lua, &t, "a", 5).unwrap();
        assert_eq!(lua.load("return t.a").eval::<i64>().unwrap(), 5);
        assert!(lua.load("t.a = 6").exec().is_err(), "still read-only after raw_set");
    }
}
