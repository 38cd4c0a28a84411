//! The commands operators watch a server with: MONITOR, SLOWLOG, LATENCY, ROLE, LOLWUT and
//! MEMORY STATS/DOCTOR/MALLOC-STATS/PURGE (registered under MEMORY in `server.rs`). The data
//! they show is kept by `server::monitor`, `metrics::slowlog` and `metrics::latency`.

use super::args::{self, is};
use super::server::reply_help;
use super::table::table;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("monitor", monitor),
    CommandSpec::new("slowlog", super::server::container_help).subs(SLOWLOG_SUBS),
    CommandSpec::new("latency", super::server::container_help).subs(LATENCY_SUBS),
    CommandSpec::new("role", role),
    CommandSpec::new("lolwut", lolwut),
];

static SLOWLOG_SUBS: &[CommandSpec] = &[
    CommandSpec::new("get", slowlog_get),
    CommandSpec::new("len", slowlog_len),
    CommandSpec::new("reset", slowlog_reset),
    CommandSpec::new("help", slowlog_help),
];

static LATENCY_SUBS: &[CommandSpec] = &[
    CommandSpec::new("doctor", latency_doctor),
    CommandSpec::new("graph", latency_graph),
    CommandSpec::new("history", latency_history),
    CommandSpec::new("latest", latency_latest),
    CommandSpec::new("reset", latency_reset),
    CommandSpec::new("histogram", latency_histogram),
    CommandSpec::new("help", latency_help),
];

fn monitor(ctx: &mut Ctx) -> CmdResult {
    // A client that expects one reply per command (in EXEC) cannot become a monitor.
    if ctx.client.in_exec || ctx.client.script {
        return Err(CmdError::new("MONITOR isn't allowed for DENY BLOCKING client"));
    }
    // A replica link never becomes a monitor; a monitor asking again changes nothing.
    if ctx.client.is_master || ctx.client.monitor {
        return Ok(());
    }
    if let Some(sub) = ctx.client.subs.subscriber.clone() {
        ctx.server.monitors.add(sub);
        ctx.client.monitor = true;
    }
    ctx.reply.ok();
    Ok(())
}

fn slowlog_get(ctx: &mut Ctx) -> CmdResult {
    let count = match ctx.args.get(2) {
        None => Some(10),
        Some(a) => match crate::util::num::parse_i64(a) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(n as usize),
            Some(_) => return Err(CmdError::new("count should be greater than or equal to -1")),
            None => return Err(CmdError::new("count should be greater than or equal to -1")),
        },
    };
    let entries = ctx.server.slowlog.get(count);
    let r = &mut *ctx.reply;
    r.array(entries.len());
    for e in entries {
        r.array(6);
        r.int(e.id as i64);
        r.int(e.time);
        r.int(e.duration_us as i64);
        r.array(e.args.len());
        for a in &e.args {
            r.bulk(a);
        }
        r.bulk(e.peer.as_bytes());
        r.bulk(&e.name);
    }
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.int(ctx.server.slowlog.len() as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx) -> CmdResult {
    ctx.server.slowlog.reset();
    ctx.reply.ok();
    Ok(())
}

fn slowlog_help(ctx: &mut Ctx) -> CmdResult {
    reply_help(
        ctx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

fn latency_doctor(ctx: &mut Ctx) -> CmdResult {
    let threshold = ctx.server.config.load().latency_monitor_threshold;
    let text = ctx.server.latency.doctor(threshold);
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn latency_graph(ctx: &mut Ctx) -> CmdResult {
    let event = args::text(&ctx.args[2]);
    match ctx.server.latency.graph(&event) {
        Some(g) => ctx.reply.verbatim(b"txt", g.as_bytes()),
        None => return Err(CmdError::new(format!("No samples available for event '{event}'"))),
    }
    Ok(())
}

fn latency_history(ctx: &mut Ctx) -> CmdResult {
    let samples = ctx.server.latency.history(&args::text(&ctx.args[2]));
    ctx.reply.array(samples.len());
    for s in samples {
        ctx.reply.array(2);
        ctx.reply.int(s.time);
        ctx.reply.int(s.latency as i64);
    }
    Ok(())
}

fn latency_latest(ctx: &mut Ctx) -> CmdResult {
    let latest = ctx.server.latency.latest();
    ctx.reply.array(latest.len());
    for (name, time, last, max) in latest {
        ctx.reply.array(4);
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.int(time);
        ctx.reply.int(last as i64);
        ctx.reply.int(max as i64);
    }
    Ok(())
}

fn latency_reset(ctx: &mut Ctx) -> CmdResult {
    let names: Vec<String> = ctx.args[2..].iter().map(|a| args::text(a)).collect();
    let n = ctx.server.latency.reset(&names);
    ctx.reply.int(n as i64);
    Ok(())
}

/// One command's histogram entry: `name => {calls, histogram_usec => {bucket => count}}`.
fn reply_histogram(ctx: &mut Ctx, cmd: &super::table::Command) {
    let h = &cmd.stats.latency;
    let cdf = h.cdf();
    let r = &mut *ctx.reply;
    r.bulk(cmd.full_name.as_bytes());
    r.map(2);
    r.bulk(b"calls");
    r.int(h.calls() as i64);
    r.bulk(b"histogram_usec");
    r.map(cdf.len());
    for (us, n) in cdf {
        r.int(us as i64);
        r.int(n as i64);
    }
}

fn latency_histogram(ctx: &mut Ctx) -> CmdResult {
    let mut chosen: Vec<&super::table::Command> = Vec::new();
    let t = table();
    if ctx.args.len() == 2 {
        for c in t.iter() {
            for cmd in std::iter::once(c).chain(c.subcommands.values()) {
                if cmd.stats.latency.calls() > 0 {
                    chosen.push(cmd);
                }
            }
        }
        chosen.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    } else {
        for a in &ctx.args[2..] {
            let name = args::text(a).to_ascii_lowercase();
            let (parent, sub) = match name.split_once('|') {
                Some((p, s)) => (p.to_string(), Some(s.to_string())),
                None => (name.clone(), None),
            };
            let Some(c) = t.lookup(parent.as_bytes()) else { continue };
            let found: Vec<&super::table::Command> = match sub {
                Some(s) => c.subcommand(s.as_bytes()).into_iter().collect(),
                None if c.is_container() => {
                    let mut v: Vec<_> = c.subcommands.values().collect();
                    v.sort_by(|a, b| a.full_name.cmp(&b.full_name));
                    v
                }
                None => vec![c],
            };
            for cmd in found {
                if cmd.stats.latency.calls() > 0 && !chosen.iter().any(|x| std::ptr::eq(*x, cmd)) {
                    chosen.push(cmd);
                }
            }
        }
    }
    ctx.reply.map(chosen.len());
    for cmd in chosen {
        reply_histogram(ctx, cmd);
    }
    Ok(())
}

fn latency_help(ctx: &mut Ctx) -> CmdResult {
    reply_help(
        ctx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}

fn role(ctx: &mut Ctx) -> CmdResult {
    if ctx.server.sentinel.get().is_some() {
        return super::sentinel::role(ctx);
    }
    crate::replication::status::role(ctx.server, ctx.reply);
    Ok(())
}

fn lolwut(ctx: &mut Ctx) -> CmdResult {
    let mut version = crate::REDIS_VERSION.to_string();
    if ctx.args.len() >= 3 && is(&ctx.args[1], "version") {
        let v = args::int(&ctx.args[2])?;
        version = format!("{}.0.0", v as u32);
    }
    let text = if version.starts_with("5.") || version.starts_with("6.") {
        super::lolwut::render(&ctx.args[1..])?
    } else {
        format!("Redis ver. {}\n", crate::REDIS_VERSION)
    };
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// Keys and keys with a TTL per database: read through the command's view when it holds every
/// shard (EXEC, a script), whose locks `Keyspace::db_counts` would wait for forever.
fn db_counts(ctx: &mut Ctx) -> Vec<(usize, usize)> {
    let server = ctx.server;
    if ctx.db.is_all_locked() {
        let selected = ctx.db.index;
        let c = (0..server.keyspace.databases())
            .map(|i| {
                ctx.db.index = i;
                ctx.db.sampled_shards().fold((0, 0), |(k, e), (_, sd)| (k + sd.main.len(), e + sd.ttls.len()))
            })
            .collect();
        ctx.db.index = selected;
        c
    } else {
        (0..server.keyspace.databases()).map(|d| server.keyspace.db_counts(d)).collect()
    }
}

/// MEMORY STATS, in Redis 7.0's order and names.
pub fn memory_stats(ctx: &mut Ctx) -> CmdResult {
    let server = ctx.server;
    let counts = db_counts(ctx);
    let keys: u64 = counts.iter().map(|(k, _)| *k as u64).sum();
    let m = crate::server::info::memory_figures(server, keys);
    let r = &mut *ctx.reply;
    let dbs: Vec<(usize, usize, usize)> =
        counts.iter().enumerate().filter(|(_, (k, _))| *k > 0).map(|(i, (k, e))| (i, *k, *e)).collect();
    r.map(27 + dbs.len());
    let pair_int = |r: &mut crate::protocol::ReplySink, k: &str, v: i64| {
        r.bulk(k.as_bytes());
        r.int(v);
    };
    pair_int(r, "peak.allocated", m.peak as i64);
    pair_int(r, "total.allocated", m.used as i64);
    pair_int(r, "startup.allocated", m.startup as i64);
    pair_int(r, "replication.backlog", 0);
    pair_int(r, "clients.slaves", 0);
    pair_int(r, "clients.normal", m.clients_normal as i64);
    pair_int(r, "cluster.links", 0);
    pair_int(r, "aof.buffer", 0);
    pair_int(r, "lua.caches", m.scripts as i64);
    pair_int(r, "functions.caches", m.functions as i64);
    for (i, k, e) in &dbs {
        r.bulk(format!("db.{i}").as_bytes());
        r.map(3);
        pair_int(r, "overhead.hashtable.main", (*k * 24 + k.next_power_of_two() * 8) as i64);
        pair_int(
            r,
            "overhead.hashtable.expires",
            (*e * 24 + if *e > 0 { e.next_power_of_two() * 8 } else { 0 }) as i64,
        );
        pair_int(r, "overhead.hashtable.slot-to-keys", 0);
    }
    pair_int(r, "overhead.total", m.overhead as i64);
    pair_int(r, "keys.count", keys as i64);
    pair_int(r, "keys.bytes-per-key", m.used.saturating_sub(m.startup).checked_div(keys).unwrap_or(0) as i64);
    pair_int(r, "dataset.bytes", m.dataset as i64);
    let pct = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 * 100.0 / b as f64 };
    r.bulk(b"dataset.percentage");
    r.double(pct(m.dataset, m.used.saturating_sub(m.startup)));
    r.bulk(b"peak.percentage");
    r.double(pct(m.used, m.peak));
    pair_int(r, "allocator.allocated", m.used as i64);
    pair_int(r, "allocator.active", m.used as i64);
    pair_int(r, "allocator.resident", m.rss as i64);
    r.bulk(b"allocator-fragmentation.ratio");
    r.double(1.0);
    pair_int(r, "allocator-fragmentation.bytes", 0);
    r.bulk(b"allocator-rss.ratio");
    r.double(m.rss as f64 / m.used.max(1) as f64);
    pair_int(r, "allocator-rss.bytes", m.rss as i64 - m.used as i64);
    r.bulk(b"rss-overhead.ratio");
    r.double(1.0);
    pair_int(r, "rss-overhead.bytes", 0);
    r.bulk(b"fragmentation");
    r.double(m.rss as f64 / m.used.max(1) as f64);
    pair_int(r, "fragmentation.bytes", m.rss as i64 - m.used as i64);
    Ok(())
}

/// MEMORY DOCTOR: Redis's report on the figures MEMORY STATS shows.
pub fn memory_doctor(ctx: &mut Ctx) -> CmdResult {
    let keys: u64 = db_counts(ctx).iter().map(|(k, _)| *k as u64).sum();
    let m = crate::server::info::memory_figures(ctx.server, keys);
    let text: String = if m.used < 5 * 1024 * 1024 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into()
    } else {
        let mut issues = Vec::new();
        if m.peak > m.used * 3 / 2 {
            issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n".to_string());
        }
        if m.rss > m.used * 14 / 10 && m.rss - m.used > 10 << 20 {
            issues.push(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n".to_string());
        }
        if m.clients_normal > 200 << 20 {
            issues.push(" * Big client buffers: The clients output buffers in this instance are greater than 200MB (or 10% of the dataset) in total. Use the CLIENT LIST command to check the clients' buffers.\n\n".into());
        }
        if issues.is_empty() {
            "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."
                .into()
        } else {
            format!(
                "Sam, I detected a few issues in this Redis instance memory implants:\n\n{}I'm here to keep you safe, Sam. I want to help you.\n",
                issues.concat()
            )
        }
    };
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// MEMORY MALLOC-STATS: what the allocator (mimalloc) and the process tell.
pub fn memory_malloc_stats(ctx: &mut Ctx) -> CmdResult {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut text = String::from("___ Begin mimalloc statistics ___\n");
    text.push_str(&format!(
        "allocated: {}\npeak: {}\n",
        crate::metrics::memory::used(),
        crate::metrics::memory::peak()
    ));
    for l in status.lines().filter(|l| l.starts_with("Vm") || l.starts_with("Rss")) {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("--- End mimalloc statistics ---\n");
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// MEMORY PURGE: ask the allocator to return freed memory to the system.
pub fn memory_purge(ctx: &mut Ctx) -> CmdResult {
    // SAFETY: mi_collect takes no pointers and only walks the allocator's own heaps.
    unsafe { libmimalloc_sys::mi_collect(true) };
    ctx.reply.ok();
    Ok(())
}
