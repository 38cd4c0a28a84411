//! Making a new configuration take effect (CONFIG SET's apply step, Redis's apply functions):
//! what can fail (a new port or bind address, the working directory, oom-score-adj) is done
//! first and reported with Redis's texts, so the caller can roll the whole CONFIG SET back;
//! then the values the server keeps outside the configuration are refreshed.

use std::sync::atomic::Ordering;

use super::{log, process, Server};
use crate::config::Config;

/// Apply `new` over `old`. Err((parameter, reason)) when a change cannot take effect.
pub fn apply(server: &Server, old: &Config, new: &Config) -> Result<(), (String, String)> {
    if old.dir != new.dir {
        std::env::set_current_dir(&new.dir).map_err(|e| ("dir".to_string(), crate::config::kinds::strerror(&e)))?;
    }
    // TLS: a changed setting rebuilds the configurations (connections made afterwards use them).
    let tls_changed = super::tls::settings_changed(old, new);
    let tls_starts = new.tls_port != old.tls_port && new.tls_port != 0 && !server.tls.is_configured();
    if (tls_changed.is_some() && super::tls::needed(new)) || tls_starts {
        let param = tls_changed.unwrap_or("tls-port");
        match super::tls::configure(new) {
            Ok(c) => server.tls.install(c),
            Err(line) => {
                log::warning(&line);
                return Err((param.to_string(), "Unable to update TLS configuration. Check server logs.".into()));
            }
        }
    }
    if old.tls_port != new.tls_port || (old.bind != new.bind && new.tls_port != 0) {
        // A new bind that fails is `bind`'s error, whichever listener it failed on (Redis's
        // applyBind); a new tls-port alone is tls-port's.
        let bind_changed = old.bind != new.bind;
        let param = if bind_changed { "bind" } else { "tls-port" };
        server
            .listeners
            .rebind_tls(&new.bind, new.tls_port as u16, bind_changed)
            .map_err(|e| (param.to_string(), e))?;
    }
    // The listeners follow `port`/`bind` (a rollback back to the port still bound needs nothing);
    // `port 0` while a TLS port serves stops the plain listeners, as Redis.
    let bound = server.port.load(Ordering::Relaxed) as i64;
    if new.port == 0 && new.tls_port != 0 {
        if old.port != 0 {
            server.listeners.close_tcp();
            server.port.store(0, Ordering::Relaxed);
        }
    } else if old.bind != new.bind || (old.port != new.port && new.port != bound) {
        let bind_changed = old.bind != new.bind;
        let param = if bind_changed { "bind" } else { "port" };
        let port =
            server.listeners.rebind(&new.bind, new.port as u16, bind_changed).map_err(|e| (param.to_string(), e))?;
        server.port.store(port as u64, Ordering::Relaxed);
    }
    if old.oom_score_adj != new.oom_score_adj || old.oom_score_adj_values != new.oom_score_adj_values {
        let param = if old.oom_score_adj != new.oom_score_adj { "oom-score-adj" } else { "oom-score-adj-values" };
        if new.oom_score_adj_values[1] < new.oom_score_adj_values[0]
            || new.oom_score_adj_values[2] < new.oom_score_adj_values[1]
        {
            log::warning(
                "The oom-score-adj-values configuration may not work for non-privileged processes! Please consult the documentation.",
            );
        }
        process::set_oom_score_adj(new, server.replica.is_replica()).map_err(|e| (param.to_string(), e))?;
    }
    if old.maxclients != new.maxclients && new.maxclients < server.clients.lock().len() as i64 {
        // Redis keeps existing clients and only refuses new ones; nothing to undo.
        log::warning(&format!(
            "maxclients set to {} while {} clients are connected: new connections are refused until under the limit",
            new.maxclients,
            server.clients.lock().len()
        ));
    }
    if old.requirepass != new.requirepass {
        crate::commands::pipeline::services::apply_requirepass(server, &new.requirepass);
    }
    server.apply_config();
    if old.aof_disable_auto_gc && !new.aof_disable_auto_gc {
        super::aof::gc_history(server);
    }
    Ok(())
}
