-- Ferrous's Lua prelude: Redis's script sandbox, built on Lua 5.1 with Redis's read-only tables
-- (vendor/lua-src/PATCHES.md).
--
-- The globals, the libraries, `redis` and everything reachable from them are made read-only at
-- the end (R.protect, Redis's luaSetTableProtectionRecursively): scripts read and iterate them
-- like any table, and every write raises "Attempt to modify a readonly table". Rust-implemented
-- functions never raise: they return `ok, ...` and the trampoline raises at the caller's level
-- (luaL_error's position), so errors stay plain Lua strings and tables, as Redis's are.
local R, ctx, engine = ...
local real = _G
local error, type, tostring, select = error, type, tostring, select
local raw_pcall, raw_xpcall, raw_setmetatable, raw_rawset = pcall, xpcall, setmetatable, rawset
local raw_loadstring, raw_load, raw_setfenv = loadstring, load, setfenv
local dbg = debug
local INTERNAL = '=ferrous'

-- A C trampoline around f (see trampoline.rs): f returns `ok, ...`; on `false, err` the
-- trampoline raises err at the caller's level.
local wrap = R.trampoline

local function wrap_all(t)
  local out = {}
  for k, v in pairs(t) do
    if type(v) == 'function' then
      out[k] = wrap(v)
    else
      out[k] = v
    end
  end
  return out
end

-- redis.call / redis.pcall: C functions (call.rs) that reach the running script themselves.
local call = R.call
local pcall_cmd = R.pcall

-- A function of the running script (set once by Rust; it reaches the running script itself).
-- Outside a run: Redis's error, as a table for redis.* functions, as a positioned string for
-- math.*.
local function in_run(name, what)
  return wrap(function(...)
    local f = ctx[name]
    if not ctx.running or not f then
      if what then
        return false, what .. ' can only be called inside a script invocation'
      end
      return false, { err = 'ERR redis.' .. name .. ' can only be called inside a script invocation' }
    end
    return f(...)
  end)
end

local redis = wrap_all(R.redis)
redis.call = call
redis.pcall = pcall_cmd
redis.setresp = in_run('setresp')
redis.set_repl = in_run('set_repl')
-- EVAL scripts only: the debugger's calls and the pre-7.0 replication switch are not part of
-- the function engine's `redis` (nor is the error handler one of its globals), as in Redis.
if engine ~= 'functions' then
  redis.replicate_commands = function() return true end
  redis.breakpoint = R.breakpoint
  redis.debug = R.debug
end
redis.acl_check_cmd = R.acl_check_cmd

-- pcall as Redis's luaRedisPcall: an error table with an `err` string gives that string.
local function fix_pcall(ok, ...)
  if ok then
    return ok, ...
  end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then
      return false, m
    end
  end
  return false, e
end
local function safe_pcall(...)
  if select('#', ...) == 0 then
    -- luaRedisPcall calls what sits where the function would be: its result placeholder.
    return false, 'attempt to call a boolean value'
  end
  return fix_pcall(raw_pcall(...))
end

-- The error handler of every script run: the error as a table with its source and line (the
-- first frame that is the script's own code).
local function handler(err)
  if ctx.killed then
    err = { err = 'ERR Script killed by user with SCRIPT KILL...' }
  end
  local level = 2
  local i
  while true do
    i = dbg.getinfo(level, 'nSl')
    if not i then
      break
    end
    if i.what ~= 'C' and i.what ~= 'tail' and i.source ~= INTERNAL then
      break
    end
    level = level + 1
  end
  if type(err) ~= 'table' then
    err = { err = 'ERR ' .. tostring(err) }
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- Script runs: KEYS and ARGV are globals of EVAL scripts, arguments of functions.
local function finish(...)
  ctx.running = false
  return ...
end

local function run0(f, keys, args)
  R.set_global('KEYS', keys)
  R.set_global('ARGV', args)
  ctx.killed = false
  ctx.running = true
  return finish(raw_xpcall(f, handler))
end

-- xpcall passes no arguments in Lua 5.1: the function and its arguments wait in upvalues
-- (no closure per call).
local pending_f, pending_keys, pending_args
local function call_pending()
  local f, keys, args = pending_f, pending_keys, pending_args
  pending_f, pending_keys, pending_args = nil, nil, nil
  return f(keys, args)
end

local function run2(f, keys, args)
  ctx.killed = false
  ctx.running = true
  pending_f, pending_keys, pending_args = f, keys, args
  return finish(raw_xpcall(call_pending, handler))
end

-- The environment scripts see. EVAL scripts: the globals themselves, as Redis runs them.
-- Functions: an empty table reading the globals through its metatable, whose __index FUNCTION
-- LOAD points at the library API while a library loads (as Redis's function engine does).
local env, env_meta = real, {}
if engine == 'functions' then
  env_meta = { __index = real }
  env = raw_setmetatable({}, env_meta)
end

-- The id luaO_chunkid gives a chunk named `name` in messages: taken from the error of a
-- one-character chunk that fails to compile under that name.
local function chunk_id(name)
  local _, e = raw_loadstring('=', name)
  return e and e:match('^(.*):1: unexpected symbol near') or '?'
end

-- Compiled code takes the script environment. A chunk starting with ESC (precompiled) fails in
-- the text parser, which the patched Lua always runs, as Redis's does.
local function load_text(s, name)
  local f, e = raw_loadstring(s, name)
  if f then
    raw_setfenv(f, env)
  end
  return f, e
end

local function load_fn(fn, name)
  local f, e = raw_load(fn, name)
  if f then
    raw_setfenv(f, env)
  end
  return f, e
end

math.random = in_run('random', 'math.random')
math.randomseed = in_run('randomseed', 'math.randomseed')

for _, name in ipairs({ 'print', 'dofile', 'loadfile', 'require', 'module', 'package', 'newproxy', 'setfenv',
  'getfenv', 'debug', 'os', 'io' }) do
  raw_rawset(real, name, nil)
end

real.pcall = safe_pcall

-- The type an argument error names ("no value" past the last argument).
local function arg_type(n, ...)
  if select('#', ...) < n then
    return 'no value'
  end
  return type((select(n, ...)))
end

-- loadstring and load as Lua 5.1's C functions: argument errors at the caller's position,
-- one result on success, and a reader that gives back something other than a string fails
-- the load with the caller's position (generic_reader's luaL_error).
local function is_text(v)
  return type(v) == 'string' or type(v) == 'number'
end

-- Chunks over R.max_chunk bytes never reach Lua 5.1's parser, whose long-bracket level counter
-- overflows near 2^31 (see MAX_CHUNK_BYTES in engine.rs).
local max_chunk = R.max_chunk

local function too_large(name)
  return chunk_id(name) .. ': chunk has too many bytes'
end

-- load_aux: the function alone, or nil and the message.
local function loaded(f, e)
  if f then
    return true, f
  end
  return true, nil, e
end

real.loadstring = wrap(function(...)
  local s, name = ...
  if not is_text(s) then
    return false, "bad argument #1 to 'loadstring' (string expected, got " .. arg_type(1, ...) .. ')'
  end
  if name ~= nil and not is_text(name) then
    return false, "bad argument #2 to 'loadstring' (string expected, got " .. type(name) .. ')'
  end
  if type(s) == 'string' and #s > max_chunk then
    return true, nil, too_large(name or s)
  end
  return loaded(load_text(s, name))
end)

real.load = wrap(function(...)
  local fn, name = ...
  if name ~= nil and not is_text(name) then
    return false, "bad argument #2 to 'load' (string expected, got " .. type(name) .. ')'
  end
  if type(fn) ~= 'function' then
    return false, "bad argument #1 to 'load' (function expected, got " .. arg_type(1, ...) .. ')'
  end
  -- A piece from the script's reader, as generic_reader takes it: nil ends the chunk, text is
  -- the piece, anything else is its luaL_error, raised inside the parser (so the error handler
  -- of the run sees it, as in Redis) at the position of load's caller (level 7: past this
  -- function, the reader, Lua's load, load_fn, the wrapper below and the trampoline).
  local function next_piece()
    local piece = fn()
    if piece ~= nil and not is_text(piece) then
      local at = dbg.getinfo(7, 'Sl')
      local where = at and at.currentline > 0 and (at.short_src .. ':' .. at.currentline .. ': ') or ''
      error(where .. 'reader function must return a string', 0)
    end
    return piece and tostring(piece)
  end
  local total = 0
  local function reader()
    if total > max_chunk then
      return nil
    end
    local piece = next_piece()
    if piece then
      total = total + #piece
      if total > max_chunk then
        return nil
      end
    end
    return piece
  end
  local f, e = load_fn(reader, name or '=(load)')
  if total > max_chunk then
    return true, nil, too_large(name or '=(load)')
  end
  return loaded(f, e)
end)

-- xpcall: Lua 5.1's argument check (mlua's own xpcall words it differently).
real.xpcall = wrap(function(...)
  if select('#', ...) < 2 then
    return false, "bad argument #2 to 'xpcall' (value expected)"
  end
  return true, raw_xpcall(...)
end)

real.cjson = wrap_all(R.cjson)
real.cmsgpack = wrap_all(R.cmsgpack)
real.bit = wrap_all(R.bit)
real.struct = wrap_all(R.struct)
real.redis = redis
if engine ~= 'functions' then
  real.__redis__err__handler = handler
end

-- Reading a missing global is an error (Redis's luaSetErrorMetatable). Its __index is a C
-- function there, so the error is positioned at the reader even when a script tail-calls it:
-- trampolined here.
local missing_global = wrap(function(_, k)
  return false, "Script attempted to access nonexistent global variable '" .. tostring(k) .. "'"
end)
raw_setmetatable(real, { __index = missing_global })

-- The FUNCTION LOAD environment: only `redis` with the library API.
local lib_api = {}
if engine == 'functions' then
  local lib_redis = wrap_all(R.library)
  lib_redis.register_function = wrap(function(...)
    local f = ctx.register
    if not f then
      return false, { err = 'ERR redis.register_function can only be called on FUNCTION LOAD command' }
    end
    return f(...)
  end)
  raw_setmetatable(lib_redis, { __index = missing_global })
  lib_api.redis = lib_redis
  raw_setmetatable(lib_api, { __index = missing_global })
end

local function runp(f)
  return raw_pcall(f)
end

-- Everything scripts reach is read-only from here on; the string metatable too (Redis 7.2.11,
-- CVE-2025-46818: a script changing it ran code in the next script's context).
R.protect(real)
R.protect(getmetatable(''))
if engine == 'functions' then
  R.protect(env)
  R.protect(lib_api)
end

return {
  env = env, env_meta = env_meta, real = real, run0 = run0, run2 = run2, runp = runp, lib_api = lib_api,
  handler = handler,
}
