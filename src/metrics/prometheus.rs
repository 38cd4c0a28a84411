//! The optional Prometheus endpoint (`metrics-port`, beyond Redis): `GET /metrics` answers in
//! the text exposition format (0.0.4) with every numeric INFO field (`redis_<field>`), the
//! textual ones as labels of `redis_instance_info`, per-command calls/time/rejections/failures,
//! error counts, per-database key counts, and each command's latency histogram
//! (`redis_command_latency_seconds_bucket{cmd,le}` with `_sum` and `_count`), so no separate
//! exporter is needed. A minimal HTTP/1.1 responder: one request per connection.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::commands::table::table;
use crate::server::{log, Server};

/// Bind `port` on every bind address and serve the endpoint.
pub async fn start(server: &Arc<Server>, binds: &[String], port: u16) -> Result<(), String> {
    let listeners = crate::server::listen::bind_tcp(binds, port, server.config.load().tcp_backlog)
        .await
        .map_err(|e| format!("metrics-port: {e}"))?;
    for l in listeners {
        let server = Arc::downgrade(server);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                let Some(s) = server.upgrade() else { return };
                tokio::spawn(async move {
                    let _ = serve(&s, &mut sock).await;
                });
            }
        });
    }
    log::notice(&format!("Prometheus metrics on port {port} (GET /metrics)"));
    Ok(())
}

async fn serve(server: &Server, sock: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head (bounded).
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = crate::util::timer::timeout(std::time::Duration::from_secs(5), sock.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let (status, ctype, body) = if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(server))
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "Not found: try /metrics\n".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

/// A metric name from an INFO field.
fn metric_name(field: &str) -> String {
    let mut s = String::from("redis_");
    s.extend(field.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }));
    s
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition text.
pub fn render(server: &Server) -> String {
    let info = crate::server::info::render(server, &[bytes::Bytes::from_static(b"default")]);
    let mut out = String::with_capacity(16 * 1024);
    let mut labels = Vec::new();
    for line in info.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        if k.starts_with('#') || k.starts_with("db") || k.starts_with("errorstat_") {
            continue;
        }
        let v = v.trim_end_matches('%');
        match v.parse::<f64>() {
            Ok(n) => {
                let name = metric_name(k);
                let kind = if k.starts_with("total_") || k.ends_with("_keys") && !k.starts_with("tracking") {
                    "counter"
                } else {
                    "gauge"
                };
                let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {n}");
            }
            Err(_) => labels.push(format!("{}=\"{}\"", metric_name(k).trim_start_matches("redis_"), escape_label(v))),
        }
    }
    let _ = writeln!(out, "# TYPE redis_instance_info gauge\nredis_instance_info{{{}}} 1", labels.join(","));
    // Keyspace.
    out.push_str("# TYPE redis_db_keys gauge\n# TYPE redis_db_keys_expiring gauge\n");
    for db in 0..server.keyspace.databases() {
        let (keys, expires) = server.keyspace.db_counts(db);
        if keys > 0 {
            let _ = writeln!(
                out,
                "redis_db_keys{{db=\"db{db}\"}} {keys}\nredis_db_keys_expiring{{db=\"db{db}\"}} {expires}"
            );
        }
    }
    // Errors.
    out.push_str("# TYPE redis_errors_total counter\n");
    let mut errs: Vec<(String, u64)> = server.error_stats.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
    errs.sort();
    for (code, n) in errs {
        let _ = writeln!(out, "redis_errors_total{{err=\"{}\"}} {n}", escape_label(&code));
    }
    // Commands and their latency histograms.
    let mut cmds = Vec::new();
    for c in table().iter() {
        for cmd in std::iter::once(c).chain(c.subcommands.values()) {
            let calls = cmd.stats.calls();
            let rejected = cmd.stats.rejected();
            if calls > 0 || rejected > 0 {
                cmds.push(cmd);
            }
        }
    }
    cmds.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    out.push_str("# TYPE redis_commands_total counter\n# TYPE redis_commands_duration_seconds_total counter\n");
    out.push_str(
        "# TYPE redis_commands_rejected_calls_total counter\n# TYPE redis_commands_failed_calls_total counter\n",
    );
    for cmd in &cmds {
        let s = &cmd.stats;
        let name = escape_label(&cmd.full_name);
        let _ = writeln!(
            out,
            "redis_commands_total{{cmd=\"{name}\"}} {}\nredis_commands_duration_seconds_total{{cmd=\"{name}\"}} {}\nredis_commands_rejected_calls_total{{cmd=\"{name}\"}} {}\nredis_commands_failed_calls_total{{cmd=\"{name}\"}} {}",
            s.calls(),
            s.usec() as f64 / 1e6,
            s.rejected(),
            s.failed(),
        );
    }
    out.push_str("# TYPE redis_command_latency_seconds histogram\n");
    for cmd in &cmds {
        let h = &cmd.stats.latency;
        let count = h.calls();
        if count == 0 {
            continue;
        }
        let name = escape_label(&cmd.full_name);
        for (le, n) in h.buckets_seconds() {
            let _ = writeln!(out, "redis_command_latency_seconds_bucket{{cmd=\"{name}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "redis_command_latency_seconds_bucket{{cmd=\"{name}\",le=\"+Inf\"}} {count}\nredis_command_latency_seconds_sum{{cmd=\"{name}\"}} {}\nredis_command_latency_seconds_count{{cmd=\"{name}\"}} {count}",
            h.sum_seconds()
        );
    }
    out
}
