//! The commands operators watch a server with: MONITOR, SLOWLOG, LATENCY, ROLE, LOLWUT and
//! MEMORY STATS/DOCTOR/MALLOC-STATS/PURGE (registered under MEMORY in `server.rs`). The data
//! they show is kept by `server::monitor`, `metrics::slowlog` and `metrics::latency`.

use std::sync::atomic::Ordering;

use super::args::{self, is};
use super::flags::*;
use super::server::reply_help;
use super::table::table;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

const A: &[&str] = &[];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, monitor)
        .acl(A)
        .group("server")
        .doc("1.0.0", "Listen for all requests received by the server in real time"),
    CommandSpec::new("slowlog", -2, 0, super::server::container_help)
        .acl(A)
        .group("server")
        .doc("2.2.12", "A container for slow log commands")
        .subs(SLOWLOG_SUBS),
    CommandSpec::new("latency", -2, 0, super::server::container_help)
        .acl(A)
        .group("server")
        .doc("2.8.13", "A container for latency diagnostics commands")
        .subs(LATENCY_SUBS),
    CommandSpec::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, role)
        .acl(&["admin", "dangerous"])
        .group("server")
        .doc("2.8.12", "Return the role of the instance in the context of replication"),
    CommandSpec::new("lolwut", -1, READONLY | FAST, lolwut)
        .acl(A)
        .group("server")
        .doc("5.0.0", "Display some computer art and the Redis version"),
];

static SLOWLOG_SUBS: &[CommandSpec] = &[
    CommandSpec::new("get", -2, ADMIN | LOADING | STALE, slowlog_get)
        .acl(A)
        .group("server")
        .doc("2.2.12", "Get the slow log's entries"),
    CommandSpec::new("len", 2, ADMIN | LOADING | STALE, slowlog_len)
        .acl(A)
        .group("server")
        .doc("2.2.12", "Get the slow log's length"),
    CommandSpec::new("reset", 2, ADMIN | LOADING | STALE, slowlog_reset)
        .acl(A)
        .group("server")
        .doc("2.2.12", "Clear all entries from the slow log"),
    CommandSpec::new("help", 2, LOADING | STALE, slowlog_help)
        .acl(A)
        .group("server")
        .doc("6.2.0", "Show helpful text about the different subcommands"),
];

const LAT: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

static LATENCY_SUBS: &[CommandSpec] = &[
    CommandSpec::new("doctor", 2, LAT, latency_doctor)
        .acl(A)
        .group("server")
        .doc("2.8.13", "Return a human readable latency analysis report."),
    CommandSpec::new("graph", 3, LAT, latency_graph)
        .acl(A)
        .group("server")
        .doc("2.8.13", "Return a latency graph for the event."),
    CommandSpec::new("history", 3, LAT, latency_history)
        .acl(A)
        .group("server")
        .doc("2.8.13", "Return timestamp-latency samples for the event."),
    CommandSpec::new("latest", 2, LAT, latency_latest)
        .acl(A)
        .group("server")
        .doc("2.8.13", "Return the latest latency samples for all events."),
    CommandSpec::new("reset", -2, LAT, latency_reset)
        .acl(A)
        .group("server")
        .doc("2.8.13", "Reset latency data for one or more events."),
    CommandSpec::new("histogram", -2, LAT, latency_histogram)
        .acl(A)
        .group("server")
        .doc("7.0.0", "Return the cumulative distribution of latencies of a subset of commands or all."),
    CommandSpec::new("help", 2, LOADING | STALE, latency_help)
        .acl(A)
        .group("server")
        .doc("2.8.13", "Show helpful text about the different subcommands."),
];

fn monitor(ctx: &mut Ctx) -> CmdResult {
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
            None => return Err(CmdError::new(super::errors::NOT_INTEGER)),
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
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

fn latency_graph(ctx: &mut Ctx) -> CmdResult {
    let event = args::text(&ctx.args[2]);
    match ctx.server.latency.graph(&event) {
        Some(g) => ctx.reply.verbatim("txt", g.as_bytes()),
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
    let rs = &ctx.server.replica;
    let master = rs.master.lock().clone();
    let r = &mut *ctx.reply;
    match master {
        None => {
            r.array(3);
            r.bulk(b"master");
            // Replicas do not acknowledge offsets to Ferrous yet: none is listed (as INFO's
            // connected_slaves).
            r.int(0);
            r.array(0);
        }
        Some((host, port)) => {
            let state = if rs.link_up.load(Ordering::Relaxed) {
                "connected"
            } else if rs.syncing.load(Ordering::Relaxed) {
                "sync"
            } else {
                "connect"
            };
            r.array(5);
            r.bulk(b"slave");
            r.bulk(host.as_bytes());
            r.int(port as i64);
            r.bulk(state.as_bytes());
            r.int(if rs.link_up.load(Ordering::Relaxed) { rs.offset.load(Ordering::Relaxed) } else { -1 });
        }
    }
    Ok(())
}

fn lolwut(ctx: &mut Ctx) -> CmdResult {
    let mut version = crate::REDIS_VERSION.to_string();
    if ctx.args.len() >= 3 && is(&ctx.args[1], "version") {
        let v = args::int(&ctx.args[2])?;
        version = format!("{}.0.0", v as u32);
    }
    let text = if version.starts_with("5.") || version.starts_with("6.") {
        super::lolwut::render(&version, &ctx.args[1..])
    } else {
        format!("Redis ver. {}\n", crate::REDIS_VERSION)
    };
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}
