//! INFO: the report of the server's state, in Redis's sections and field names.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Server;
use crate::commands::pipeline::all_commands;

/// Every section, in the order INFO prints them (Redis's genRedisInfoString order, whatever
/// order they were asked in).
const ORDER: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    // Only when asked for by name (Redis 7.2): not part of "all" or "everything".
    "debug",
];
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections INFO's arguments select (Redis's genInfoSectionDict), in printing order.
fn sections(args: &[bytes::Bytes]) -> Vec<&'static str> {
    let mut want: Vec<&'static str> = Vec::new();
    let mut add = |s: &'static str| {
        if !want.contains(&s) {
            want.push(s)
        }
    };
    if args.is_empty() {
        DEFAULT.iter().for_each(|s| add(s));
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => DEFAULT.iter().for_each(|s| add(s)),
            "all" | "everything" => ORDER.iter().filter(|s| **s != "debug").for_each(|s| add(s)),
            "modules" => add("module_list"),
            other => {
                if let Some(s) = ORDER.iter().find(|s| **s == other) {
                    add(s)
                }
            }
        }
    }
    ORDER.iter().copied().filter(|s| want.contains(s)).collect()
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Resident set size of this process, from /proc.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn cpu_times() -> (f64, f64, f64, f64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut self_ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut child_ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut self_ru);
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut child_ru);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(self_ru.ru_stime), t(self_ru.ru_utime), t(child_ru.ru_stime), t(child_ru.ru_utime))
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

/// Render the selected sections.
pub fn render(server: &Server, args: &[bytes::Bytes]) -> String {
    render_with(server, args, None)
}

/// Render the selected sections; `counts` gives (keys, expires) per database when the caller
/// already holds the shard locks (EXEC, a script), which INFO must not take again.
pub fn render_with(server: &Server, args: &[bytes::Bytes], counts: Option<&[crate::keyspace::DbCounts]>) -> String {
    match server.sentinel.get() {
        Some(s) => render_sentinel(server, s, args),
        None => render_sections(server, &sections(args), counts),
    }
}

/// Sentinel's INFO (Redis's sentinelInfoCommand): only the server, clients, cpu and stats
/// sections (all of them by default, with `all` or `everything`), then `# Sentinel`.
fn render_sentinel(server: &Server, sentinel: &crate::sentinel::Sentinel, args: &[bytes::Bytes]) -> String {
    const SECTIONS: [&str; 5] = ["server", "clients", "cpu", "stats", "sentinel"];
    let mut want: Vec<&str> = Vec::new();
    if args.is_empty() {
        want.extend(SECTIONS);
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" | "all" | "everything" => want.extend(SECTIONS),
            other => want.extend(SECTIONS.iter().filter(|s| **s == other)),
        }
    }
    let plain: Vec<&'static str> = ORDER.iter().copied().filter(|s| *s != "sentinel" && want.contains(s)).collect();
    let mut out = render_sections(server, &plain, None);
    if want.contains(&"sentinel") {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&crate::sentinel::reply::info_section(&sentinel.lock(server)));
    }
    out
}

fn render_sections(server: &Server, sections: &[&str], counts: Option<&[crate::keyspace::DbCounts]>) -> String {
    let mut out = String::with_capacity(4096);
    for (n, sec) in sections.iter().copied().enumerate() {
        let before = out.len();
        if n > 0 && !out.is_empty() {
            out.push_str("\r\n");
        }
        let mark = out.len();
        section(server, sec, &mut out, counts);
        if out.len() == mark {
            out.truncate(before);
        }
    }
    out
}

/// Redis 7.2's `listener<n>` lines (INFO server, #9320): one per connection type listening.
fn redis72_server_fields(cfg: &crate::config::Config, server: &Server, out: &mut String) {
    let mut line = String::from("listener0:name=tcp");
    for addr in &cfg.bind {
        line.push_str(",bind=");
        line.push_str(addr);
    }
    line.push_str(&format!(",port={}", server.port.load(Ordering::Relaxed)));
    line!(out, "{line}");
    if let Some(path) = Some(&cfg.unixsocket).filter(|p| !p.is_empty()) {
        line!(out, "listener1:name=unix,bind={path}");
    }
}

/// Redis 7.2's event-loop metrics (#11963) and ACL denial counters (#11288), at the end of
/// INFO stats. Ferrous has no single event loop: a cycle is one batch of requests a connection
/// processed, or one cron step, its duration the time it took; the instantaneous rates are
/// sampled by the cron as instantaneous_ops_per_sec is.
fn redis72_stats_fields(server: &Server, out: &mut String) {
    let st = &server.stats;
    let cmd_us: u64 = all_commands().map(|c| c.stats.usec()).sum();
    line!(out, "eventloop_cycles:{}", st.io.get(super::io::CYCLES));
    line!(out, "eventloop_duration_sum:{}", st.io.get(super::io::CYCLES_US));
    line!(out, "eventloop_duration_cmd_sum:{}", cmd_us);
    let rates = &st.rates;
    use crate::metrics::instantaneous::{EL_CYCLES, EL_DURATION};
    line!(out, "instantaneous_eventloop_cycles_per_sec:{}", rates.get(EL_CYCLES) as u64);
    line!(out, "instantaneous_eventloop_duration_usec:{}", rates.get(EL_DURATION) as u64);
    let denials = &server.acl.denials;
    line!(out, "acl_access_denied_auth:{}", denials.auth.load(Ordering::Relaxed));
    line!(out, "acl_access_denied_cmd:{}", denials.cmd.load(Ordering::Relaxed));
    line!(out, "acl_access_denied_key:{}", denials.key.load(Ordering::Relaxed));
    line!(out, "acl_access_denied_channel:{}", denials.channel.load(Ordering::Relaxed));
}

/// The system's name, release and machine, as uname(2) gives them.
fn uname() -> String {
    // SAFETY: uname only writes into the zeroed struct we pass.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
    }
    let f = |b: &[libc::c_char]| {
        let bytes: Vec<u8> = b.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
}

/// CPU time of the calling thread (a worker: Redis's "main thread" figures).
fn thread_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

/// Memory figures shared by INFO memory and MEMORY STATS.
pub struct MemoryFigures {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub clients_normal: u64,
    pub overhead: u64,
    pub dataset: u64,
    pub keys: u64,
    pub scripts: u64,
    pub functions: u64,
}

pub fn memory_figures(server: &Server, keys: u64) -> MemoryFigures {
    let rss = rss_bytes();
    let (used, peak) = if crate::metrics::memory::counting() {
        (crate::metrics::memory::used() as u64, crate::metrics::memory::peak() as u64)
    } else {
        (rss, rss)
    };
    let startup = (crate::metrics::memory::startup() as u64).min(used);
    // Each connection's buffers and state, as Redis counts a client's memory.
    let clients_normal: u64 = server.clients.lock().values().map(|h| h.memory() as u64).sum();
    let mem = server.scripting.info_memory();
    let get = |n: &str| mem.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| *v);
    let (scripts, functions) = (get("used_memory_scripts_eval"), get("used_memory_functions"));
    // The main and expires dictionaries' tables and entries.
    let dict_overhead = keys * 32;
    let overhead = startup + clients_normal + scripts + functions + dict_overhead;
    MemoryFigures {
        used,
        peak,
        startup,
        rss,
        clients_normal,
        overhead,
        dataset: used.saturating_sub(overhead),
        keys,
        scripts,
        functions,
    }
}

fn perc(a: u64, b: u64) -> String {
    format!("{:.2}%", if b == 0 { 0.0 } else { a as f64 * 100.0 / b as f64 })
}

fn section(server: &Server, name: &str, out: &mut String, counts: Option<&[crate::keyspace::DbCounts]>) {
    let cfg = server.config.load();
    let st = &server.stats;
    let ks = &server.keyspace.stats;
    match name {
        "server" => {
            let up = server.started.elapsed().as_secs();
            line!(out, "# Server");
            line!(out, "redis_version:{}", crate::REDIS_VERSION);
            line!(out, "ferrous_version:{}", crate::VERSION);
            line!(out, "redis_git_sha1:00000000");
            line!(out, "redis_git_dirty:0");
            line!(out, "redis_build_id:{}", &crate::VERSION.replace('.', "")[..]);
            line!(out, "redis_mode:{}", if server.sentinel.get().is_some() { "sentinel" } else { "standalone" });
            line!(out, "os:{}", uname());
            line!(out, "arch_bits:64");
            line!(out, "monotonic_clock:POSIX clock_gettime");
            line!(out, "multiplexing_api:epoll");
            line!(out, "atomicvar_api:c11-builtin");
            line!(out, "gcc_version:0.0.0");
            line!(out, "process_id:{}", std::process::id());
            line!(out, "process_supervised:{}", super::process::supervised_mode_name());
            line!(out, "run_id:{}", server.run_id);
            line!(out, "tcp_port:{}", server.port.load(Ordering::Relaxed));
            line!(out, "server_time_usec:{}", crate::keyspace::now_ms() * 1000);
            line!(out, "uptime_in_seconds:{}", up);
            line!(out, "uptime_in_days:{}", up / 86400);
            line!(out, "hz:{}", cfg.hz_clamped());
            line!(out, "configured_hz:{}", cfg.hz_clamped());
            line!(out, "lru_clock:{}", crate::keyspace::lru_clock());
            line!(out, "executable:{}", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default());
            line!(out, "config_file:{}", server.config.file.clone().unwrap_or_default());
            line!(out, "io_threads_active:0");
            if let Some(ms) = server.shutdown_state.remaining_ms() {
                line!(out, "shutdown_in_milliseconds:{ms}");
            }
            redis72_server_fields(&cfg, server, out);
        }
        "clients" => {
            let (n, max_in, max_out) = {
                let c = server.clients.lock();
                let max_in = c.values().map(|h| h.view.lock().qbuf).max().unwrap_or(0);
                let max_out = c.values().map(|h| h.output_len()).max().unwrap_or(0);
                // Replicas are not counted (Redis: clients less slaves).
                (c.len().saturating_sub(server.repl.replica_count()), max_in, max_out)
            };
            line!(out, "# Clients");
            line!(out, "connected_clients:{}", n);
            line!(
                out,
                "cluster_connections:{}",
                server.cluster.get().map_or(0, |c| c.read(|st| st.nodes.len() - 1) * 2)
            );
            line!(out, "maxclients:{}", cfg.maxclients);
            line!(out, "client_recent_max_input_buffer:{}", max_in);
            line!(out, "client_recent_max_output_buffer:{}", max_out);
            line!(out, "blocked_clients:{}", server.blocking.blocked_clients());
            line!(out, "tracking_clients:{}", server.tracking.stats().0);
            line!(out, "clients_in_timeout_table:{}", server.blocking.clients_with_timeout());
            // Redis 7.2: keys clients are blocked on (and those whose deletion unblocks them,
            // XREADGROUP's: none here yet).
            line!(out, "total_blocking_keys:{}", server.blocking.blocking_keys());
            line!(out, "total_blocking_keys_on_nokey:{}", server.blocking.blocking_keys_on_nokey());
        }
        "memory" => {
            let keys: u64 = match counts {
                Some(c) => c.iter().map(|c| c.keys as u64).sum(),
                None => (0..server.keyspace.databases()).map(|d| server.keyspace.db_counts(d).0 as u64).sum(),
            };
            let mut m = memory_figures(server, keys);
            // INFO's own text, being built, is not part of what the server holds: Redis grows
            // its reply a line at a time, this buffer starts at 4 KB, which would show as used
            // memory over maxmemory right after an eviction (unit/maxmemory's limit checks).
            let scratch = out.capacity() as u64;
            m.used = m.used.saturating_sub(scratch);
            m.dataset = m.dataset.saturating_sub(scratch);
            let maxmemory = cfg.maxmemory as u64;
            line!(out, "# Memory");
            line!(out, "used_memory:{}", m.used);
            line!(out, "used_memory_human:{}", human(m.used));
            line!(out, "used_memory_rss:{}", m.rss);
            line!(out, "used_memory_rss_human:{}", human(m.rss));
            line!(out, "used_memory_peak:{}", m.peak);
            line!(out, "used_memory_peak_human:{}", human(m.peak));
            line!(out, "used_memory_peak_perc:{}", perc(m.used, m.peak));
            line!(out, "used_memory_overhead:{}", m.overhead);
            line!(out, "used_memory_startup:{}", m.startup);
            line!(out, "used_memory_dataset:{}", m.dataset);
            line!(out, "used_memory_dataset_perc:{}", perc(m.dataset, m.used.saturating_sub(m.startup)));
            line!(out, "allocator_allocated:{}", m.used);
            line!(out, "allocator_active:{}", m.used);
            line!(out, "allocator_resident:{}", m.rss);
            let total = crate::util::sysmem::total_system_memory();
            line!(out, "total_system_memory:{}", total);
            line!(out, "total_system_memory_human:{}", human(total));
            for (name, v) in server.scripting.info_memory() {
                line!(out, "{}:{}", name, v);
                // Redis 7.2's order: used_memory_lua, used_memory_vm_eval (its new name, same
                // value), then the deprecated used_memory_lua_human.
                match name {
                    "used_memory_vm_eval" => line!(out, "used_memory_lua_human:{}", human(v)),
                    "used_memory_vm_total" | "used_memory_scripts" => line!(out, "{}_human:{}", name, human(v)),
                    _ => {}
                }
            }
            line!(out, "maxmemory:{}", maxmemory);
            line!(out, "maxmemory_human:{}", human(maxmemory));
            line!(out, "maxmemory_policy:{}", cfg.maxmemory_policy_name());
            line!(out, "allocator_frag_ratio:1.00");
            line!(out, "allocator_frag_bytes:0");
            line!(out, "allocator_rss_ratio:{:.2}", m.rss as f64 / m.used.max(1) as f64);
            line!(out, "allocator_rss_bytes:{}", m.rss as i64 - m.used as i64);
            line!(out, "rss_overhead_ratio:1.00");
            line!(out, "rss_overhead_bytes:0");
            line!(out, "mem_fragmentation_ratio:{:.2}", m.rss as f64 / m.used.max(1) as f64);
            line!(out, "mem_fragmentation_bytes:{}", m.rss as i64 - m.used as i64);
            line!(out, "mem_not_counted_for_evict:{}", server.memory_not_counted_for_evict());
            let (repl_total, repl_backlog, repl_clients) = crate::replication::status::memory(server);
            line!(out, "mem_replication_backlog:{}", repl_backlog);
            line!(out, "mem_total_replication_buffers:{}", repl_total);
            line!(out, "mem_clients_slaves:{}", repl_clients);
            line!(out, "mem_clients_normal:{}", m.clients_normal);
            line!(out, "mem_cluster_links:{}", server.cluster.get().map_or(0, |c| c.read(|st| st.links_memory())));
            line!(out, "mem_aof_buffer:{}", server.aof.buffer_len.load(Ordering::Relaxed));
            line!(out, "mem_allocator:mimalloc");
            line!(out, "active_defrag_running:0");
            line!(out, "lazyfree_pending_objects:{}", crate::keyspace::lazyfree::pending());
            line!(out, "lazyfreed_objects:{}", crate::keyspace::lazyfree::freed());
        }
        "persistence" => {
            let sv = &server.saving;
            let in_progress = sv.in_progress.load(Ordering::Relaxed);
            let current = if in_progress {
                (crate::keyspace::now_ms() - sv.bgsave_started_ms.load(Ordering::Relaxed)) / 1000
            } else {
                -1
            };
            line!(out, "# Persistence");
            let loading = st.loading.load(Ordering::Relaxed);
            line!(out, "loading:{}", loading as u8);
            line!(out, "async_loading:{}", server.replica.async_loading.load(Ordering::Relaxed) as u8);
            if loading {
                let total = st.loading_total_bytes.load(Ordering::Relaxed);
                line!(out, "loading_start_time:{}", st.loading_start.load(Ordering::Relaxed));
                line!(out, "loading_total_bytes:{}", total);
                // Redis's progress figures: the share read, and the time left at the pace so far.
                let loaded = st.loading_loaded_bytes.load(Ordering::Relaxed).min(total);
                let perc = if total > 0 { loaded as f64 * 100.0 / total as f64 } else { 0.0 };
                let elapsed =
                    (crate::keyspace::now_ms() / 1000 - st.loading_start.load(Ordering::Relaxed)).max(0) as u64;
                let eta = if elapsed == 0 { 1 } else { elapsed * (total - loaded) / (loaded + 1) };
                line!(out, "loading_rdb_used_mem:0");
                line!(out, "loading_loaded_bytes:{}", loaded);
                line!(out, "loading_loaded_perc:{:.2}", perc);
                line!(out, "loading_eta_seconds:{}", eta);
            }
            // The running job's progress (Redis's child info; zeros when none runs).
            let child = sv.child_info.lock().clone().unwrap_or_default();
            let cow = child.cow_bytes.load(Ordering::Relaxed);
            line!(out, "current_cow_peak:{cow}");
            line!(out, "current_cow_size:{cow}");
            line!(out, "current_cow_size_age:0");
            line!(out, "current_fork_perc:{:.2}", child.percent());
            line!(out, "current_save_keys_processed:{}", child.keys_processed.load(Ordering::Relaxed));
            line!(out, "current_save_keys_total:{}", child.keys_total.load(Ordering::Relaxed));
            line!(out, "rdb_changes_since_last_save:{}", ks.dirty.load(Ordering::Relaxed));
            line!(out, "rdb_bgsave_in_progress:{}", in_progress as u8);
            line!(out, "rdb_last_save_time:{}", sv.lastsave.load(Ordering::Relaxed));
            line!(
                out,
                "rdb_last_bgsave_status:{}",
                if sv.last_bgsave_ok.load(Ordering::Acquire) { "ok" } else { "err" }
            );
            line!(out, "rdb_last_bgsave_time_sec:{}", sv.last_bgsave_time_sec.load(Ordering::Relaxed));
            line!(out, "rdb_current_bgsave_time_sec:{}", current);
            line!(out, "rdb_saves:{}", sv.saves.load(Ordering::Relaxed));
            line!(out, "rdb_last_cow_size:{}", sv.last_cow.load(Ordering::Relaxed));
            line!(out, "rdb_last_load_keys_expired:{}", sv.last_load_keys_expired.load(Ordering::Relaxed));
            line!(out, "rdb_last_load_keys_loaded:{}", sv.last_load_keys_loaded.load(Ordering::Relaxed));
            super::aof::info(server, out);
            line!(out, "module_fork_in_progress:0");
            line!(out, "module_fork_last_cow_size:0");
            super::aof::info_sizes(server, out);
        }
        "stats" => {
            use crate::metrics::instantaneous::{NET_INPUT, NET_OUTPUT, NET_REPL_INPUT, NET_REPL_OUTPUT, OPS};
            let r = &st.rates;
            line!(out, "# Stats");
            line!(out, "total_connections_received:{}", st.total_connections_received.load(Ordering::Relaxed));
            line!(out, "total_commands_processed:{}", st.io.get(super::io::COMMANDS));
            line!(out, "instantaneous_ops_per_sec:{}", r.get(OPS) as u64);
            line!(out, "total_net_input_bytes:{}", st.io.get(super::io::NET_INPUT));
            line!(out, "total_net_output_bytes:{}", st.io.get(super::io::NET_OUTPUT));
            let rs = &server.repl.stats;
            line!(out, "total_net_repl_input_bytes:{}", rs.net_repl_input_bytes.load(Ordering::Relaxed));
            line!(out, "total_net_repl_output_bytes:{}", rs.net_repl_output_bytes.load(Ordering::Relaxed));
            line!(out, "instantaneous_input_kbps:{:.2}", r.get(NET_INPUT) / 1024.0);
            line!(out, "instantaneous_output_kbps:{:.2}", r.get(NET_OUTPUT) / 1024.0);
            line!(out, "instantaneous_input_repl_kbps:{:.2}", r.get(NET_REPL_INPUT) / 1024.0);
            line!(out, "instantaneous_output_repl_kbps:{:.2}", r.get(NET_REPL_OUTPUT) / 1024.0);
            line!(out, "rejected_connections:{}", st.rejected_connections.load(Ordering::Relaxed));
            line!(out, "sync_full:{}", rs.sync_full.load(Ordering::Relaxed));
            line!(out, "sync_partial_ok:{}", rs.sync_partial_ok.load(Ordering::Relaxed));
            line!(out, "sync_partial_err:{}", rs.sync_partial_err.load(Ordering::Relaxed));
            line!(out, "expired_subkeys:{}", ks.expired_subkeys.load(Ordering::Relaxed));
            line!(out, "expired_keys:{}", ks.expired_keys.load(Ordering::Relaxed));
            let stale = f64::from_bits(ks.expired_stale_perc.load(Ordering::Relaxed));
            line!(out, "expired_stale_perc:{:.2}", stale * 100.0);
            line!(out, "expired_time_cap_reached_count:{}", ks.expired_time_cap_reached.load(Ordering::Relaxed));
            line!(out, "expire_cycle_cpu_milliseconds:{}", st.expire_cycle_us.load(Ordering::Relaxed) / 1000);
            line!(out, "evicted_keys:{}", ks.evicted_keys.load(Ordering::Relaxed));
            line!(out, "evicted_clients:{}", st.evicted_clients.load(Ordering::Relaxed));
            line!(out, "total_eviction_exceeded_time:0");
            line!(out, "current_eviction_exceeded_time:0");
            line!(out, "keyspace_hits:{}", ks.hits.load(Ordering::Relaxed));
            line!(out, "keyspace_misses:{}", ks.misses.load(Ordering::Relaxed));
            line!(out, "pubsub_channels:{}", server.pubsub.channels(None, false).len());
            line!(out, "pubsub_patterns:{}", server.pubsub.numpat());
            line!(out, "pubsubshard_channels:{}", server.pubsub.channels(None, true).len());
            line!(out, "latest_fork_usec:{}", st.latest_fork_usec.load(Ordering::Relaxed));
            line!(out, "total_forks:{}", st.total_forks.load(Ordering::Relaxed));
            line!(out, "migrate_cached_sockets:{}", crate::commands::pipeline::services::migrate_cached_sockets());
            line!(out, "slave_expires_tracked_keys:{}", server.keyspace.replica_local_expires.lock().len());
            line!(out, "active_defrag_hits:0");
            line!(out, "active_defrag_misses:0");
            line!(out, "active_defrag_key_hits:0");
            line!(out, "active_defrag_key_misses:0");
            line!(out, "total_active_defrag_time:0");
            line!(out, "current_active_defrag_time:0");
            let (_, tkeys, titems, tprefixes) = server.tracking.stats();
            line!(out, "tracking_total_keys:{}", tkeys);
            line!(out, "tracking_total_items:{}", titems);
            line!(out, "tracking_total_prefixes:{}", tprefixes);
            line!(out, "unexpected_error_replies:{}", st.unexpected_error_replies.load(Ordering::Relaxed));
            line!(out, "total_error_replies:{}", st.total_error_replies.load(Ordering::Relaxed));
            line!(out, "dump_payload_sanitizations:0");
            line!(out, "total_reads_processed:{}", st.io.get(super::io::READS));
            line!(out, "total_writes_processed:{}", st.io.get(super::io::WRITES));
            line!(out, "io_threaded_reads_processed:0");
            line!(out, "io_threaded_writes_processed:0");
            line!(out, "reply_buffer_shrinks:{}", st.reply_buffer_shrinks.load(Ordering::Relaxed));
            line!(out, "reply_buffer_expands:{}", st.reply_buffer_expands.load(Ordering::Relaxed));
            redis72_stats_fields(server, out);
            line!(
                out,
                "client_query_buffer_limit_disconnections:{}",
                st.client_query_buffer_limit_disconnections.load(Ordering::Relaxed)
            );
            line!(
                out,
                "client_output_buffer_limit_disconnections:{}",
                st.client_output_buffer_limit_disconnections.load(Ordering::Relaxed)
            );
        }
        "replication" => {
            out.push_str(&crate::replication::status::info(server));
        }
        "cpu" => {
            let (sys, user, csys, cuser) = cpu_times();
            let (tsys, tuser) = thread_cpu();
            line!(out, "# CPU");
            line!(out, "used_cpu_sys:{:.6}", sys);
            line!(out, "used_cpu_user:{:.6}", user);
            line!(out, "used_cpu_sys_children:{:.6}", csys);
            line!(out, "used_cpu_user_children:{:.6}", cuser);
            line!(out, "used_cpu_sys_main_thread:{:.6}", tsys);
            line!(out, "used_cpu_user_main_thread:{:.6}", tuser);
        }
        "module_list" => {
            line!(out, "# Modules");
        }
        "errorstats" => {
            line!(out, "# Errorstats");
            let mut errs: Vec<(String, u64)> = server.error_stats.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
            errs.sort();
            for (code, n) in errs {
                line!(out, "errorstat_{}:count={}", code, n);
            }
        }
        "cluster" => {
            line!(out, "# Cluster");
            line!(out, "cluster_enabled:{}", server.cluster.get().is_some() as u8);
        }
        "debug" => {
            // Redis 7.2's event-loop durations. The AOF is written by its own thread here, so
            // the loop spends no time on it.
            line!(out, "# Debug");
            line!(out, "eventloop_duration_aof_sum:0");
            line!(out, "eventloop_duration_cron_sum:{}", server.stats.cron_us.load(Ordering::Relaxed));
            line!(out, "eventloop_duration_max:{}", server.stats.io.max(super::io::CYCLE_MAX_US));
            line!(out, "eventloop_cmd_per_cycle_max:{}", server.stats.io.max(super::io::CYCLE_MAX_CMDS));
        }
        "keyspace" => {
            line!(out, "# Keyspace");
            drop(cfg);
            for db in 0..server.keyspace.databases() {
                let c = match counts {
                    Some(c) => c.get(db).copied().unwrap_or_default(),
                    None => server.keyspace.db_info_counts(db),
                };
                if c.expires == 0 {
                    server.keyspace.forget_avg_ttl(db);
                }
                if c.keys > 0 {
                    let avg_ttl = server.keyspace.avg_ttl(db);
                    // Redis 7.4+ adds `subexpiry`; Ferrous only where hashes have field TTLs,
                    // so the line stays 7.2's for everything 7.2 can store.
                    if c.hashes_with_ttls > 0 {
                        line!(
                            out,
                            "db{}:keys={},expires={},avg_ttl={},subexpiry={}",
                            db,
                            c.keys,
                            c.expires,
                            avg_ttl,
                            c.hashes_with_ttls
                        );
                    } else {
                        line!(out, "db{}:keys={},expires={},avg_ttl={}", db, c.keys, c.expires, avg_ttl);
                    }
                }
            }
        }
        "commandstats" => {
            line!(out, "# Commandstats");
            let mut rows = Vec::new();
            for cmd in all_commands() {
                let s = &cmd.stats;
                let calls = s.calls();
                let rejected = s.rejected();
                let failed = s.failed();
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let usec = s.usec();
                let per = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
                rows.push(format!(
                    "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}",
                    cmd.full_name, calls, usec, per, rejected, failed
                ));
            }
            rows.sort();
            for r in rows {
                line!(out, "{}", r);
            }
        }
        "latencystats" => {
            line!(out, "# Latencystats");
            let ps = &cfg.latency_tracking_info_percentiles;
            let mut rows = Vec::new();
            for cmd in all_commands() {
                {
                    let Some(vals) = cmd.stats.latency.percentiles(ps) else { continue };
                    let parts: Vec<String> = ps
                        .iter()
                        .zip(vals)
                        .map(|(p, v)| format!("p{}={:.3}", crate::config::kinds::trim_double(*p), v))
                        .collect();
                    rows.push(format!("latency_percentiles_usec_{}:{}", cmd.full_name, parts.join(",")));
                }
            }
            rows.sort();
            for r in rows {
                line!(out, "{}", r);
            }
        }
        _ => {}
    }
}
