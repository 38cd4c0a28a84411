//! `ferrous-server [config-file | -] [--option value ...]`: start the server, like redis-server
//! (in sentinel mode with `--sentinel` or when run under a name containing `redis-sentinel`).

use ferrous::config;
use ferrous::server::{self, log, Server};

/// mimalloc, with every allocation counted for `used_memory` / `maxmemory`.
#[global_allocator]
static GLOBAL: ferrous::metrics::memory::Counting<mimalloc::MiMalloc> =
    ferrous::metrics::memory::Counting(mimalloc::MiMalloc);

fn usage() -> ! {
    eprintln!(
        "Usage: ./ferrous-server [/path/to/redis.conf] [options] [-]\n       ./ferrous-server - (read config from stdin)\n       ./ferrous-server -v or --version\n       ./ferrous-server -h or --help\n       ./ferrous-server --test-memory <megabytes>\n\nExamples:\n       ./ferrous-server (run the server with default conf)\n       echo 'maxmemory 128mb' | ./ferrous-server -\n       ./ferrous-server /etc/redis/6379.conf\n       ./ferrous-server --port 7777\n       ./ferrous-server --port 7777 --replicaof 127.0.0.1 8888\n       ./ferrous-server /etc/myredis.conf --loglevel verbose -\n       ./ferrous-server /etc/myredis.conf --loglevel verbose\n       ./ferrous-server /etc/sentinel.conf --sentinel\n"
    );
    std::process::exit(1);
}

fn main() {
    // A stand-in for a save's fork child (see `save_child`) only waits, then exits.
    server::save_child::run_if_child();
    let argv0 = std::env::args().next().unwrap_or_else(|| "ferrous-server".into());
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Sentinel mode, as Redis decides it: the executable's name, or --sentinel anywhere.
    let exec_name =
        std::path::Path::new(&argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let sentinel_mode = exec_name.contains("redis-sentinel") || args.iter().any(|a| a == "--sentinel");
    args.retain(|a| a != "--sentinel");
    match args.first().map(String::as_str) {
        Some("-v" | "--version") => {
            println!(
                "Redis server v={} sha=00000000:0 malloc=mimalloc bits=64 build=0 (Ferrous {})",
                ferrous::REDIS_VERSION,
                ferrous::VERSION
            );
            return;
        }
        Some("-h" | "--help") => usage(),
        Some("--test-memory") => {
            // Redis's memtest is a stand-alone RAM test; Ferrous does not carry one.
            eprintln!(
                "--test-memory is not supported by Ferrous: use a dedicated memory tester (memtester, memtest86+)."
            );
            std::process::exit(1);
        }
        Some("--check-system") => std::process::exit(0),
        _ => {}
    }
    let startup = match config::from_args_mode(&args, sentinel_mode) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // Sentinel's own directives apply once the whole configuration is read, from `dir` (where
    // Redis is by then: relative script paths start there), before anything is logged.
    let sentinel_state = if sentinel_mode {
        ferrous::commands::table::set_sentinel_mode();
        log::set_sentinel_role();
        let back = std::env::current_dir().ok();
        if !startup.config.dir.is_empty() {
            let _ = std::env::set_current_dir(&startup.config.dir);
        }
        let loaded = ferrous::sentinel::config::load(&startup.sentinel);
        if let Some(b) = back {
            let _ = std::env::set_current_dir(b);
        }
        match loaded {
            Ok(st) => Some(st),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let cfg = &startup.config;
    // Redis's order: supervision first (systemd hears "Redis is loading..."), then daemonize
    // unless supervised.
    let supervision = server::process::supervise(cfg);
    if cfg.daemonize && !supervision.supervised() {
        if let Err(e) = server::process::daemonize(&cfg.logfile) {
            eprintln!("Can't daemonize: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = log::configure(cfg.loglevel as usize, &cfg.logfile) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    supervision.log();
    log::notice("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo");
    log::notice(&format!(
        "Redis version={}, bits=64, commit=00000000, modified=0, pid={}, just started (Ferrous {})",
        ferrous::REDIS_VERSION,
        std::process::id(),
        ferrous::VERSION
    ));
    if args.is_empty() {
        log::warning(&format!(
            "Warning: no config file specified, using the default config. In order to specify a config file use {argv0} /path/to/redis.conf"
        ));
    } else {
        log::notice("Configuration loaded");
    }
    if sentinel_mode {
        match &startup.file {
            None => {
                log::warning("Sentinel needs config file on disk to save state. Exiting...");
                std::process::exit(1);
            }
            Some(f) if !ferrous::sentinel::config::writable(f) => {
                log::warning(&format!(
                    "Sentinel config file {f} is not writable: {}. Exiting...",
                    std::io::Error::last_os_error()
                ));
                std::process::exit(1);
            }
            Some(_) => {}
        }
    }
    if cfg.crash_log_enabled {
        server::process::install_crash_handlers();
    }
    server::process::disable_thp(cfg);
    for n in &startup.notices {
        log::notice(n);
    }
    if let Err(e) = ferrous::commands::table::apply_renames(&startup.renames) {
        log::warning(&e);
        std::process::exit(1);
    }
    // `user` directives are checked once the command table (with its renames) exists.
    let user_words: Vec<Vec<Vec<u8>>> = startup.users.iter().map(|u| u.words.clone()).collect();
    if let Err((i, msg)) = ferrous::commands::acl::check_config_users(&user_words) {
        eprintln!("{}", startup.users[i].fatal(&msg));
        std::process::exit(1);
    }
    if !cfg.dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&cfg.dir) {
            log::warning(&format!("Can't chdir to '{}': {e}", cfg.dir));
            std::process::exit(1);
        }
    }
    // This runtime only accepts connections and runs the cron; commands run on the workers
    // started by server::run.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            log::warning(&format!("Failed to start the runtime: {e}"));
            std::process::exit(1);
        }
    };
    let _ = ferrous::acl::WARN.set(log::warning);
    let file = startup.file.clone();
    let server = Server::new(startup.config, startup.file);
    if let (Some(st), Some(file)) = (sentinel_state, file) {
        let _ = server.sentinel.set(std::sync::Arc::new(ferrous::sentinel::Sentinel::new(st, file)));
    }
    match ferrous::commands::acl::load_at_startup(&server, &user_words) {
        Ok(notices) => notices.iter().for_each(|n| log::notice(n)),
        Err(e) => {
            e.lines().for_each(log::warning);
            std::process::exit(1);
        }
    }
    let code = runtime.block_on(server::run(server, None));
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
