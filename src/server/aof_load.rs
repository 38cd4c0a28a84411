//! Loading the AOF: at start-up with `appendonly yes` (instead of the RDB file) and for DEBUG
//! LOADAOF. The manifest's base file (an RDB file, possibly followed by commands, or commands
//! only) and incr files are read and parsed completely first — a malformed file, a missing
//! file, an unknown command or a torn file that is not the last one stop everything before the
//! dataset is touched — then installed and replayed through the normal command handlers on one
//! all-shards view, without propagating anything. A torn last command (or a MULTI without its
//! EXEC) at the end of the last file is dropped and the file truncated when `aof-load-truncated`
//! is yes, with Redis's warnings; otherwise loading fails. An old-style single AOF in `dir` is
//! moved into the AOF directory as its base, as Redis 7 does.

use bytes::Bytes;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::aof::{self, paths};
use super::staged_load;
use super::{log, Server};
use crate::commands::pipeline::{call_locked, resolve, Caller, Command};
use crate::keyspace::{Db, Keyspace};
use crate::persistence::aof::{manifest_name, parse_commands, Ending, Manifest};
use crate::persistence::rdb_load::{self, LoadOptions, Loaded};
use crate::persistence::rdb_value::Limits;
use crate::persistence::rdb_window::Window;
use crate::protocol::ReplySink;
use crate::session::{Client, ClientHandle};

/// One parsed file: its RDB part (if any) and its commands.
struct Part {
    rdb: Option<Rdb>,
    /// The function libraries of the RDB preamble (loaded before its keys, as Redis does).
    functions: Vec<Vec<u8>>,
    commands: Vec<Vec<Bytes>>,
}

/// An RDB preamble: the base file's is loaded apart (see `staged_load`) and swapped in, any
/// other is collected and inserted.
enum Rdb {
    Staged(Box<Keyspace>),
    Loaded(Loaded),
}

/// Read the manifest in the AOF directory (an empty one if there is none). With `upgrade`, an
/// old-style `dir/appendfilename` becomes the base of a new manifest first.
pub fn read_manifest(server: &Server, upgrade: bool) -> Result<Manifest, String> {
    let (dir, fname) = paths(server);
    let path = dir.join(manifest_name(&fname));
    let mut m = match fs::read(&path) {
        Ok(text) => Manifest::parse(&text).map_err(|e| format!("*** FATAL AOF MANIFEST FILE ERROR *** {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(format!("can't open the AOF manifest file {}: {e}", path.display())),
    };
    let old = dir.parent().unwrap_or(Path::new(".")).join(&fname);
    let only_old_base =
        m.incrs.is_empty() && m.base.as_ref().is_some_and(|b| b.name == fname && !dir.join(&fname).exists());
    if upgrade && old.is_file() && (m.base.is_none() && m.incrs.is_empty() || only_old_base) {
        fs::create_dir_all(&dir).map_err(|e| format!("Can't open or create append-only dir {}: {e}", dir.display()))?;
        m = Manifest::default();
        m.base = Some(crate::persistence::aof::AofInfo {
            name: fname.clone(),
            seq: 1,
            kind: crate::persistence::aof::FileKind::Base,
        });
        m.base_seq = 1;
        aof::persist_manifest(&dir, &fname, &m).map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
        fs::rename(&old, dir.join(&fname))
            .map_err(|e| format!("Error trying to move the old AOF file {fname} into dir {}: {e}", dir.display()))?;
        log::notice(&format!(
            "Successfully migrated an old-style AOF file ({fname}) into the AOF directory ({}).",
            dir.display()
        ));
    }
    Ok(m)
}

/// The command a replayed argv runs, resolved by the pipeline as the AOF loader (lookup and
/// arity; no admission checks).
fn command_of(argv: &[Bytes]) -> Option<&'static Command> {
    resolve(argv, Caller::AofLoad).ok()
}

/// Read and parse every file of the manifest. Torn tails are truncated (on disk too) only
/// once every file has been read without any other problem.
fn read_all(server: &Server, manifest: &Manifest) -> Result<Vec<Part>, String> {
    let (dir, _) = paths(server);
    let truncate_ok = server.config.load().aof_load_truncated;
    let opts = load_options(server);
    let files: Vec<_> = manifest.files().collect();
    let mut parts = Vec::new();
    let mut truncate_at = None;
    for (i, info) in files.iter().enumerate() {
        let name = &info.name;
        let path = dir.join(name);
        let last = i + 1 == files.len();
        let open_err =
            |e: std::io::Error| format!("Fatal error: can't open the append log file {name} for reading: {e}");
        let (part, torn) = if i == 0 {
            // The base file: an RDB preamble is streamed into a dataset of its own.
            read_base(server, &path, name, &opts, last, truncate_ok).map_err(|e| e.unwrap_or_else(open_err))?
        } else {
            let data = Bytes::from(fs::read(&path).map_err(open_err)?);
            parse_file(&data, name, &opts, last, truncate_ok)?
        };
        if let Some(at) = torn {
            truncate_at = Some((path.clone(), name.clone(), at));
        }
        parts.push(part);
    }
    if let Some((path, name, at)) = truncate_at {
        log::warning(&format!("!!! Warning: short read while loading the AOF file {name}!!!"));
        log::warning(&format!("!!! Truncating the AOF {name} at offset {at} !!!"));
        let truncated = fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(at as u64));
        match truncated {
            Ok(()) => log::warning(&format!("AOF {name} loaded anyway because aof-load-truncated is enabled")),
            Err(e) => return Err(format!("Error truncating the AOF file {name}: {e}")),
        }
    }
    Ok(parts)
}

fn load_options(server: &Server) -> LoadOptions {
    LoadOptions {
        databases: server.keyspace.databases(),
        limits: Limits::from_config(&server.config.load()),
        // Keys of an RDB preamble are loaded even if expired, as Redis does.
        now_ms: i64::MIN,
    }
}

/// Read the base file at `path`: an RDB preamble (if it starts with one) streamed into a
/// staging keyspace, then its commands. An error opening or reading it comes back as `Err(Err)`.
fn read_base(
    server: &Server,
    path: &Path,
    name: &str,
    opts: &LoadOptions,
    last: bool,
    truncate_ok: bool,
) -> Result<(Part, Option<usize>), Result<String, std::io::Error>> {
    let mut file = fs::File::open(path).map_err(Err)?;
    let mut head = [0u8; 5];
    let n = read_up_to(&mut file, &mut head).map_err(Err)?;
    if &head[..n] != b"REDIS" {
        let mut data = head[..n].to_vec();
        file.read_to_end(&mut data).map_err(Err)?;
        return parse_file(&Bytes::from(data), name, opts, last, truncate_ok).map_err(Ok);
    }
    let mut w = Window::new(std::io::Cursor::new(head).chain(file));
    let mut staged = staged_load::stage(server, &mut w, opts)
        .map_err(|e| Ok(format!("Error reading the RDB base file {name}, AOF loading aborted: {e}")))?;
    let used = w.offset();
    let rest = Bytes::from(w.into_rest().map_err(Err)?);
    let functions = std::mem::take(&mut staged.loaded.functions);
    let mut part = Part { rdb: Some(Rdb::Staged(Box::new(staged.keyspace))), functions, commands: Vec::new() };
    let torn = parse_commands_of(&mut part, &rest, used, name, last, truncate_ok).map_err(Ok)?;
    Ok((part, torn))
}

/// Read until `buf` is full or the file ends; returns the bytes read.
fn read_up_to(file: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// Parse one file's bytes: an RDB preamble (if it starts with one) and commands. A torn tail
/// is accepted only in the `last` file with `truncate_ok`, and its offset returned.
fn parse_file(
    data: &Bytes,
    name: &str,
    opts: &LoadOptions,
    last: bool,
    truncate_ok: bool,
) -> Result<(Part, Option<usize>), String> {
    let mut part = Part { rdb: None, functions: Vec::new(), commands: Vec::new() };
    let mut start = 0;
    if data.starts_with(b"REDIS") {
        let (mut loaded, used) = rdb_load::parse_prefix(data, opts)
            .map_err(|e| format!("Error reading the RDB base file {name}, AOF loading aborted: {e}"))?;
        part.functions = std::mem::take(&mut loaded.functions);
        part.rdb = Some(Rdb::Loaded(loaded));
        start = used;
    }
    let torn = parse_commands_of(&mut part, &data.slice(start..), start, name, last, truncate_ok)?;
    Ok((part, torn))
}

/// Parse the commands of a file, `data` being its bytes from offset `base` on, into `part`.
/// A torn tail is accepted only in the `last` file with `truncate_ok`, and its offset in the
/// file returned.
fn parse_commands_of(
    part: &mut Part,
    data: &Bytes,
    base: usize,
    name: &str,
    last: bool,
    truncate_ok: bool,
) -> Result<Option<usize>, String> {
    let parsed = parse_commands(data, 0);
    let mut torn = None;
    match parsed.ending {
        Ending::Clean => {}
        Ending::BadFormat { offset } => {
            let offset = base + offset;
            return Err(format!(
                "Bad file format reading the append only file {name} (offset {offset}): make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
            ));
        }
        Ending::Truncated { valid_up_to, multi } => {
            if multi {
                log::warning(&format!("Revert incomplete MULTI/EXEC transaction in AOF file {name}"));
            }
            if !last {
                return Err(format!("Fatal error: the truncated file {name} is not the last file"));
            }
            if !truncate_ok {
                return Err(format!(
                    "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
                ));
            }
            torn = Some(base + valid_up_to);
        }
    }
    for argv in &parsed.commands {
        if command_of(argv).is_none() && !is(argv, b"multi") && !is(argv, b"exec") {
            return Err(format!(
                "Unknown command '{}' reading the append only file {name}",
                String::from_utf8_lossy(&argv[0])
            ));
        }
    }
    part.commands = parsed.commands;
    Ok(torn)
}

/// Load one AOF file given as bytes (an RDB preamble and/or commands, a torn tail dropped as
/// with `aof-load-truncated yes`) into the server's dataset, exactly as start-up loads each
/// file: parsed completely first, then replayed through the command handlers. For the fuzz
/// target and tests; returns the number of commands replayed.
pub fn load_bytes(server: &Server, data: Bytes) -> Result<u64, String> {
    let (part, _) = parse_file(&data, "input", &load_options(server), true, true)?;
    let mut db = server.keyspace.lock_all(0);
    install(server, &mut db, vec![part])
}

fn is(argv: &[Bytes], name: &[u8]) -> bool {
    argv[0].eq_ignore_ascii_case(name)
}

/// Install the parsed files through `db` (every shard locked, the dataset empty): RDB parts
/// are inserted, commands run through their handlers (MULTI/EXEC markers are skipped: the whole
/// load is atomic already). Nothing is propagated. Returns the number of commands replayed.
fn install(server: &Server, db: &mut Db, parts: Vec<Part>) -> Result<u64, String> {
    let mark = db.effects_len();
    let handle = ClientHandle::new(0, "aof".into(), String::new(), -1);
    let mut client = Client::new(handle, true);
    client.loading_aof = true;
    let mut sink = ReplySink::discarding(crate::protocol::Proto::Resp2);
    let mut n = 0;
    let result = (|| {
        for part in parts {
            server
                .scripting
                .load_library_sources(&part.functions, false)
                .map_err(|e| format!("Failed loading library, {e}"))?;
            match part.rdb {
                // The base file's, into the empty dataset.
                Some(Rdb::Staged(ks)) => drop(db.adopt(*ks)),
                Some(Rdb::Loaded(loaded)) => {
                    rdb_load::install(db, loaded, false)?;
                }
                None => {}
            }
            for argv in part.commands {
                if is(&argv, b"multi") || is(&argv, b"exec") {
                    continue;
                }
                let Some(cmd) = command_of(&argv) else { continue };
                let outcome = call_locked(server, &mut client, cmd, &argv, &mut sink, db, None);
                // The keys it made ready are told when the load's view is dropped.
                db.defer_ready(outcome.ready);
                sink.clear();
                sink.errors.clear();
                n += 1;
            }
        }
        Ok(n)
    })();
    db.truncate_effects(mark);
    db.begin_command(0);
    db.index = 0;
    if result.is_err() {
        drop(db.flush(true));
    }
    result
}

/// Load the AOF at start-up when `appendonly` is yes, then open it for appending. Returns
/// false when AOF is off (the RDB file is loaded instead).
pub fn load_at_startup(server: &Arc<Server>) -> Result<bool, String> {
    if !server.config.load().appendonly {
        return Ok(false);
    }
    let manifest = read_manifest(server, true)?;
    if manifest.files().next().is_some() {
        // Clients are served (-LOADING) while files load, not while an empty base is written.
        server.listeners.open();
        let start = Instant::now();
        let parts = read_all(server, &manifest)?;
        let mut db = server.keyspace.lock_all(0);
        let n = install(server, &mut db, parts)?;
        drop(db);
        server.keyspace.stats.dirty.store(0, Ordering::Relaxed);
        log::notice(&format!(
            "DB loaded from append only file: {:.3} seconds ({n} commands replayed)",
            start.elapsed().as_secs_f64()
        ));
    }
    aof::open_at_startup(server, manifest)?;
    Ok(true)
}

/// DEBUG LOADAOF, through the command's all-shards view: fsync the AOF, empty the dataset and
/// load the AOF back. The files are checked before anything is emptied.
pub fn debug_loadaof(server: &Server, db: &mut Db) -> Result<(), String> {
    if server.aof.on.load(Ordering::Acquire) {
        aof::sync(server);
    }
    aof::gc_history(server);
    let manifest = read_manifest(server, false)?;
    let parts = read_all(server, &manifest)?;
    // Other clients get -LOADING meanwhile, as from Redis's loading loop: on other workers at
    // once, on this one while a slow script of the AOF steps aside (see `scripting::fiber`).
    let _loading = super::Loading::start(server);
    let mark = db.effects_len();
    drop(db.flush(true));
    db.truncate_effects(mark);
    install(server, db, parts)?;
    // What was loaded is no change since the last save (Redis sets server.dirty to 0): neither
    // the counter so far nor this view's own changes count.
    db.saved_now();
    server.keyspace.stats.dirty.store(0, Ordering::Relaxed);
    log::notice("Append Only File loaded by DEBUG LOADAOF");
    Ok(())
}
