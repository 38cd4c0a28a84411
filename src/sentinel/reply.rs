//! What Sentinel answers about its state: SENTINEL MASTER/MASTERS/REPLICAS/SENTINELS's
//! per-instance maps (Redis 7.2's fields, in its order), SENTINEL DEBUG's parameters,
//! INFO-CACHE, INFO's `# Sentinel` section and ROLE.

use super::instance::{Instance, Kind, Master, FAILOVER_IN_PROGRESS, O_DOWN, S_DOWN};
use super::{now_ms, State};
use crate::protocol::ReplySink;

fn field_str(r: &mut ReplySink, name: &str, value: &str) {
    r.bulk(name.as_bytes());
    r.bulk(value.as_bytes());
}

fn field_int(r: &mut ReplySink, name: &str, value: i64) {
    r.bulk(name.as_bytes());
    r.bulk_int(value);
}

/// One instance as a map (Redis's addReplySentinelRedisInstance).
pub fn instance(r: &mut ReplySink, i: &Instance, m: Option<&Master>) {
    let now = now_ms();
    let mut fields: Vec<(&str, Value)> = vec![
        ("name", Value::S(i.name.clone())),
        ("ip", Value::S(i.addr.announced().to_string())),
        ("port", Value::I(i.addr.port as i64)),
        ("runid", Value::S(i.runid.clone().unwrap_or_default())),
        ("flags", Value::S(i.flags_text())),
        ("link-pending-commands", Value::I(i.link.pending_commands)),
        ("link-refcount", Value::I(1)),
    ];
    if let (true, Some(m)) = (i.has(FAILOVER_IN_PROGRESS), m) {
        fields.push(("failover-state", Value::S(m.failover_state.name().into())));
    }
    let l = &i.link;
    fields.push(("last-ping-sent", Value::I(if l.act_ping_time != 0 { now - l.act_ping_time } else { 0 })));
    fields.push(("last-ok-ping-reply", Value::I(now - l.last_avail_time)));
    fields.push(("last-ping-reply", Value::I(now - l.last_pong_time)));
    if i.has(S_DOWN) {
        fields.push(("s-down-time", Value::I(now - i.s_down_since_time)));
    }
    if i.has(O_DOWN) {
        fields.push(("o-down-time", Value::I(now - i.o_down_since_time)));
    }
    fields.push(("down-after-milliseconds", Value::I(i.down_after_period)));
    if i.kind != Kind::Sentinel {
        fields.push(("info-refresh", Value::I(if i.info_refresh != 0 { now - i.info_refresh } else { 0 })));
        let role = if i.role_reported == Kind::Master { "master" } else { "slave" };
        fields.push(("role-reported", Value::S(role.into())));
        fields.push(("role-reported-time", Value::I(now - i.role_reported_time)));
    }
    if let (Kind::Master, Some(m)) = (i.kind, m) {
        fields.push(("config-epoch", Value::I(m.config_epoch as i64)));
        fields.push(("num-slaves", Value::I(m.replicas.len() as i64)));
        fields.push(("num-other-sentinels", Value::I(m.sentinels.len() as i64)));
        fields.push(("quorum", Value::I(m.quorum as i64)));
        fields.push(("failover-timeout", Value::I(m.failover_timeout)));
        fields.push(("parallel-syncs", Value::I(m.parallel_syncs)));
        if let Some(s) = &m.inst.notification_script {
            fields.push(("notification-script", Value::S(s.clone())));
        }
        if let Some(s) = &m.client_reconfig_script {
            fields.push(("client-reconfig-script", Value::S(s.clone())));
        }
    }
    if i.kind == Kind::Replica {
        fields.push(("master-link-down-time", Value::I(i.master_link_down_time)));
        fields.push(("master-link-status", Value::S(if i.slave_master_link_up { "ok" } else { "err" }.into())));
        fields.push(("master-host", Value::S(i.slave_master_host.clone().unwrap_or_else(|| "?".into()))));
        fields.push(("master-port", Value::I(i.slave_master_port)));
        fields.push(("slave-priority", Value::I(i.slave_priority)));
        fields.push(("slave-repl-offset", Value::I(i.slave_repl_offset as i64)));
        fields.push(("replica-announced", Value::I(i.replica_announced)));
    }
    if i.kind == Kind::Sentinel {
        fields.push(("last-hello-message", Value::I(now - i.last_hello_time)));
        fields.push(("voted-leader", Value::S(i.leader.clone().unwrap_or_else(|| "?".into()))));
        fields.push(("voted-leader-epoch", Value::I(i.leader_epoch as i64)));
    }
    r.map(fields.len());
    for (name, v) in fields {
        match v {
            Value::S(s) => field_str(r, name, &s),
            Value::I(n) => field_int(r, name, n),
        }
    }
}

enum Value {
    S(String),
    I(i64),
}

/// SENTINEL MASTERS.
pub fn masters(r: &mut ReplySink, st: &State) {
    r.array(st.masters.len());
    for m in st.masters.values() {
        instance(r, &m.inst, Some(m));
    }
}

/// SENTINEL REPLICAS (replicas with replica-announced 0 are left out).
pub fn replicas(r: &mut ReplySink, m: &Master) {
    let shown: Vec<&Instance> = m.replicas.values().filter(|i| i.replica_announced != 0).collect();
    r.array(shown.len());
    for i in shown {
        instance(r, i, Some(m));
    }
}

/// SENTINEL SENTINELS.
pub fn sentinels(r: &mut ReplySink, m: &Master) {
    r.array(m.sentinels.len());
    for i in m.sentinels.values() {
        instance(r, i, Some(m));
    }
}

/// SENTINEL DEBUG without arguments.
pub fn debug(r: &mut ReplySink, st: &State) {
    let list = st.g.periods.list();
    r.map(list.len());
    for (name, v) in list {
        field_int(r, name, v);
    }
}

/// SENTINEL INFO-CACHE: per master, [age, INFO] for it and each replica.
pub fn info_cache(r: &mut ReplySink, st: &State, names: &[String]) {
    let now = now_ms();
    let chosen: Vec<&Master> = if names.is_empty() {
        st.masters.values().collect()
    } else {
        let mut v: Vec<&Master> = Vec::new();
        for n in names {
            if let Some(m) = st.masters.get(n) {
                if !v.iter().any(|x| x.inst.name == m.inst.name) {
                    v.push(m);
                }
            }
        }
        v
    };
    r.array(chosen.len() * 2);
    for m in chosen {
        r.bulk(m.inst.name.as_bytes());
        r.array(m.replicas.len() + 1);
        let one = |r: &mut ReplySink, i: &Instance, age_of: i64| {
            r.array(2);
            r.int(if age_of != 0 { now - i.info_refresh } else { 0 });
            match &i.info {
                Some(t) => r.bulk(t.as_bytes()),
                None => r.null(),
            }
        };
        one(r, &m.inst, m.inst.info_refresh);
        for s in m.replicas.values() {
            // As Redis: a replica's age is reported when its master's INFO was received.
            one(r, s, m.inst.info_refresh);
        }
    }
}

/// INFO's `# Sentinel` section (without the header's leading blank line).
pub fn info_section(st: &State) -> String {
    let g = &st.g;
    let mut out = String::from("# Sentinel\r\n");
    out.push_str(&format!("sentinel_masters:{}\r\n", st.masters.len()));
    out.push_str(&format!("sentinel_tilt:{}\r\n", g.tilt as i32));
    let since = if g.tilt { (now_ms() - g.tilt_start_time) / 1000 } else { -1 };
    out.push_str(&format!("sentinel_tilt_since_seconds:{since}\r\n"));
    out.push_str(&format!("sentinel_running_scripts:{}\r\n", g.scripts.running()));
    out.push_str(&format!("sentinel_scripts_queue_length:{}\r\n", g.scripts.queue.len()));
    out.push_str(&format!("sentinel_simulate_failure_flags:{}\r\n", g.simfailure_flags));
    for (n, m) in st.masters.values().enumerate() {
        let status = if m.inst.has(O_DOWN) {
            "odown"
        } else if m.inst.has(S_DOWN) {
            "sdown"
        } else {
            "ok"
        };
        out.push_str(&format!(
            "master{n}:name={},status={status},address={}:{},slaves={},sentinels={}\r\n",
            m.inst.name,
            m.inst.addr.announced(),
            m.inst.addr.port,
            m.replicas.len(),
            m.sentinels.len() + 1
        ));
    }
    out
}

/// ROLE: `sentinel` and the monitored masters' names.
pub fn role(r: &mut ReplySink, st: &State) {
    r.array(2);
    r.bulk(b"sentinel");
    r.array(st.masters.len());
    for n in st.masters.keys() {
        r.bulk(n.as_bytes());
    }
}
