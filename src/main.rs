//! `ferrous-server [config-file] [--option value ...]`: start the server, like redis-server.

use ferrous::config::Config;
use ferrous::server::{self, log, Server};

/// mimalloc, with every allocation counted for `used_memory` / `maxmemory`.
#[global_allocator]
static GLOBAL: ferrous::metrics::memory::Counting<mimalloc::MiMalloc> =
    ferrous::metrics::memory::Counting(mimalloc::MiMalloc);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!("Ferrous server v={} (Redis {} compatible)", ferrous::VERSION, ferrous::REDIS_VERSION);
        return;
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("Usage: ferrous-server [/path/to/redis.conf] [options]\n       ferrous-server -v or --version\n       ferrous-server -h or --help\n\nExamples:\n       ferrous-server (run the server with default conf)\n       ferrous-server /etc/redis/6379.conf\n       ferrous-server --port 7777\n       ferrous-server /etc/myredis.conf --loglevel verbose");
        return;
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = log::configure(config.settings.loglevel, &config.settings.logfile) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    let dir = config.get("dir").unwrap_or("").to_string();
    if !dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&dir) {
            eprintln!("Can't chdir to '{dir}': {e}");
            std::process::exit(1);
        }
    }
    let _ = ferrous::session::PROTECTED_DEBUG.set(config.settings.enable_debug.clone());
    // This runtime only accepts connections and runs the cron; commands run on the workers
    // started by server::run.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Failed to start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let server = Server::new(config);
    let code = runtime.block_on(server::run(server, None));
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
