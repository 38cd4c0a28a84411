//! The one C function of the sandbox. Redis implements `redis.call`, cjson, bit... as C
//! functions, and that matters for error positions: a script's `return redis.call(...)` tail
//! call keeps the script's frame when the callee is a C function, but loses it when the callee
//! is a Lua function. So every library function is exposed through this C trampoline: it calls
//! its upvalue (a Rust or prelude function returning `ok, ...`), and on `false, err` raises
//! `err` as Redis would — a string gets luaL_error's "source:line: " position of the caller
//! (unless a third result, true, says the Lua core raised it, without one), an error table is
//! raised as it is; a light userdata first means the results are in the table that follows
//! (their count next), spread onto the stack here (see `libs::ok_spread`).

use mlua::ffi;
use mlua::{Function, Lua};
use std::os::raw::c_int;

/// Wrap `inner` in a trampoline C closure.
pub fn make(lua: &Lua, inner: Function) -> mlua::Result<Function> {
    // SAFETY: the callback only pushes a C closure over the argument already on the stack
    // (exec_raw has reserved the stack space and runs it protected).
    unsafe {
        lua.exec_raw::<Function>(inner, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// SAFETY (for the Lua VM calling it): only Lua API calls on the given state; no Rust value
/// with a destructor is alive when `lua_error` long-jumps out of this frame.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
    let nres = ffi::lua_gettop(state);
    if nres >= 1 && ffi::lua_toboolean(state, 1) == 0 {
        let positioned = nres < 3 || ffi::lua_toboolean(state, 3) == 0;
        ffi::lua_settop(state, 2);
        if positioned && ffi::lua_type(state, 2) == ffi::LUA_TSTRING {
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, 2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state);
    }
    if nres >= 3 && ffi::lua_type(state, 1) == ffi::LUA_TLIGHTUSERDATA {
        let n = ffi::lua_tointeger(state, 3) as c_int;
        ffi::lua_settop(state, 2);
        ffi::lua_remove(state, 1);
        if ffi::lua_checkstack(state, n) == 0 {
            ffi::lua_pushstring(state, c"stack overflow (too many results)".as_ptr());
            ffi::lua_error(state);
        }
        for i in 1..=n {
            ffi::lua_rawgeti(state, 1, i as _);
        }
        ffi::lua_remove(state, 1);
        return n;
    }
    ffi::lua_remove(state, 1);
    nres - 1
}
