//! The flags a script command declares before it runs — the shebang flags of an EVAL body or
//! of a cached script, a function's registered flags — for the pipeline's checks that come
//! before execution (CLIENT PAUSE WRITE lets `no-writes` scripts through, OOM / NOREPLICAS /
//! READONLY treat them as the command flags they declare, as Redis does).

use bytes::Bytes;

use super::{eval_shebang, Scripting};

/// The declared flags of EVAL / EVALSHA / FCALL (and their _RO forms), or None when unknown
/// (not cached, no such function, or the engine is busy running a script right now).
pub fn declared_flags(s: &Scripting, name: &str, args: &[Bytes]) -> Option<u32> {
    let target = args.get(1)?;
    match name {
        "eval" | "eval_ro" => eval_shebang(target).ok().map(|(f, _)| f),
        "evalsha" | "evalsha_ro" => {
            let guard = s.eval.try_lock()?;
            guard.as_ref()?.by_sha(target).map(|(_, script)| script.flags)
        }
        "fcall" | "fcall_ro" => {
            let guard = s.functions.try_lock()?;
            guard.as_ref()?.get(target).map(|f| f.flags)
        }
        _ => None,
    }
}

/// The command flags a script with a shebang (or a function) stands for, from its declared
/// flags (Redis's scriptFlagsToCmdFlags).
pub struct CommandFlags {
    /// Refused over maxmemory: it did not declare `allow-oom` or `no-writes`.
    pub denyoom: bool,
    /// A write command: it did not declare `no-writes`.
    pub write: bool,
    /// Allowed on a stale replica: it declared `allow-stale`.
    pub stale: bool,
}

/// [`CommandFlags`] of EVAL / EVALSHA / FCALL; None for scripts without a shebang (they keep
/// EVAL's own flags) and when the flags are unknown.
pub fn command_flags(s: &Scripting, name: &str, args: &[Bytes]) -> Option<CommandFlags> {
    use super::flags::{ALLOW_OOM, ALLOW_STALE, EVAL_COMPAT, NO_WRITES};
    let f = declared_flags(s, name, args)?;
    if f & EVAL_COMPAT != 0 {
        return None;
    }
    Some(CommandFlags {
        denyoom: f & (ALLOW_OOM | NO_WRITES) == 0,
        write: f & NO_WRITES == 0,
        stale: f & ALLOW_STALE != 0,
    })
}

/// Whether a script command may write: the _RO forms never do; a script or function that
/// declared `no-writes` does not either.
pub fn may_write(s: &Scripting, name: &str, args: &[Bytes]) -> bool {
    if name.ends_with("_ro") {
        return false;
    }
    match declared_flags(s, name, args) {
        Some(f) => f & super::flags::EVAL_COMPAT != 0 || f & super::flags::NO_WRITES == 0,
        None => true,
    }
}
