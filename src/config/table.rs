//! The one parameter table: every directive of Redis 7.0's redis.conf, those Redis 7.2 added
//! (Ferrous reports 7.2.4), plus Ferrous's own
//! `worker-threads` and `metrics-port`), one row each. The [`params!`] macro turns the rows
//! into the typed [`Config`] struct (one field per parameter, read directly on hot paths) and
//! the [`PARAMS`] descriptors that parsing, CONFIG GET/SET and CONFIG REWRITE walk.
//!
//! Flag `NA` marks a parameter Ferrous validates and reports but does not act on yet (setting
//! it to something other than its default logs a one-line notice); README lists those that
//! matter for data safety.

use super::kinds::*;

/// The parameter cannot be changed by CONFIG SET.
pub const IMMUTABLE: u32 = 1 << 0;
/// Only matched by CONFIG GET with its exact name, never by a pattern.
pub const HIDDEN: u32 = 1 << 1;
/// Its value is redacted from SLOWLOG/MONITOR (requirepass, masterauth, masteruser).
pub const SENSITIVE: u32 = 1 << 2;
/// CONFIG SET only where `enable-protected-configs` allows it.
pub const PROTECTED: u32 = 1 << 3;
/// Refused by CONFIG SET while loading.
pub const DENY_LOADING: u32 = 1 << 4;
/// Listed by DEBUG CONFIG-REWRITE-FORCE-ALL style debug dumps (Redis's DEBUG_CONFIG).
pub const DEBUG: u32 = 1 << 5;
/// Accepted and reported, not applied by Ferrous yet (a notice is logged when set).
pub const NA: u32 = 1 << 6;
const M: u32 = 0;

/// How one parameter is read and written, generated per row.
pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u32,
    pub multi_arg: fn() -> bool,
    /// CONFIG GET text.
    pub get: fn(&Config) -> String,
    /// Parse and store; Ok(true) when the value changed.
    pub set: fn(&mut Config, &[String]) -> Result<bool, String>,
    /// CONFIG REWRITE lines (the second Config holds the defaults).
    pub rewrite: fn(&Config, &Config, &mut super::rewrite::Rewrite),
    /// Whether the value is its default.
    pub is_default: fn(&Config, &Config) -> bool,
}

impl Param {
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }
}

macro_rules! params {
    ($( $field:ident : $ty:ty = $name:literal $(| $alias:literal)?, $codec:expr, $default:expr, $flags:expr; )*) => {
        /// Every parameter's current value, typed. Cheap to read: hot paths hold a snapshot
        /// (see [`super::LiveConfig`]).
        #[derive(Clone, Debug, PartialEq)]
        pub struct Config {
            $( pub $field: $ty, )*
        }

        impl Config {
            /// Redis's defaults (and the current directory for `dir`).
            pub fn defaults() -> Config {
                Config { $( $field: $default, )* }
            }
        }

        pub static PARAMS: &[Param] = &[
            $( Param {
                name: $name,
                alias: params!(@alias $($alias)?),
                flags: $flags,
                multi_arg: || Codec::<$ty>::multi_arg(&$codec),
                get: |c| Codec::<$ty>::show(&$codec, &c.$field),
                set: |c, args| {
                    let v: $ty = Codec::<$ty>::parse_onto(&$codec, args, &c.$field)?;
                    let changed = v != c.$field;
                    c.$field = v;
                    Ok(changed)
                },
                rewrite: |c, d, out| Codec::<$ty>::rewrite(&$codec, $name, &c.$field, &d.$field, out),
                is_default: |c, d| c.$field == d.$field,
            }, )*
        ];
    };
    (@alias) => { None };
    (@alias $a:literal) => { Some($a) };
}

fn s(v: &str) -> String {
    v.to_string()
}

fn cwd() -> String {
    std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
}

const PROTECTED_ACTION: Enum = choice(&[("no", 0), ("yes", 1), ("local", 2)]);
/// `nothing` (Redis 7.2) silences every message.
pub const LOGLEVELS: Enum = choice(&[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3), ("nothing", 4)]);
pub const POLICIES: Enum = choice(&[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
]);
pub const FSYNC: Enum = choice(&[("everysec", 1), ("always", 2), ("no", 0)]);
pub const SUPERVISED: Enum = choice(&[("upstart", 1), ("systemd", 2), ("auto", 3), ("no", 0)]);
const FACILITY: Enum = choice(&[
    ("user", 8),
    ("local0", 128),
    ("local1", 136),
    ("local2", 144),
    ("local3", 152),
    ("local4", 160),
    ("local5", 168),
    ("local6", 176),
    ("local7", 184),
]);
const DISKLESS_LOAD: Enum = choice(&[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)]);
pub const OOM_ADJ: Enum = choice(&[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)]);
const PUBSUB_DEFAULT: Enum = choice(&[("allchannels", 1), ("resetchannels", 0)]);
const SANITIZE: Enum = choice(&[("no", 0), ("yes", 1), ("clients", 2)]);
const ENDPOINT: Enum = choice(&[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)]);
const PROPAGATION_ERR: Enum = choice(&[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)]);
/// shutdown-on-sigint / shutdown-on-sigterm flags.
pub const SHUTDOWN_SAVE: u32 = 1;
pub const SHUTDOWN_NOSAVE: u32 = 2;
pub const SHUTDOWN_NOW: u32 = 4;
pub const SHUTDOWN_FORCE: u32 = 8;
const SHUTDOWN_ON_SIG: Enum = Enum {
    names: &[
        ("default", 0),
        ("save", SHUTDOWN_SAVE),
        ("nosave", SHUTDOWN_NOSAVE),
        ("now", SHUTDOWN_NOW),
        ("force", SHUTDOWN_FORCE),
    ],
    bitflags: true,
};
const TLS_AUTH: Enum = choice(&[("no", 0), ("yes", 1), ("optional", 2)]);
const TLS_CERT_USER: Enum = choice(&[("off", 0), ("CN", 1)]);

const HOSTNAME: Str = Str { validate: Some(valid_hostname), null_default: true };
const DBFILENAME: Str = Str { validate: Some(valid_dbfilename), null_default: false };
const AOFNAME: Str = Str { validate: Some(valid_appendfilename), null_default: false };
const AOFDIR: Str = Str { validate: Some(valid_appenddirname), null_default: false };
const TITLE: Str = Str { validate: Some(valid_proc_title), null_default: false };
const PERCENT_MEM: Num = Num { min: -100, max: i64::MAX, form: NumForm::MemoryPercent, unsigned: false };
const OCTAL_PERM: Num = Num { min: 0, max: 0o777, form: NumForm::Octal, unsigned: true };

params! {
    // Booleans.
    rdbchecksum: bool = "rdbchecksum", Bool, true, IMMUTABLE;
    daemonize: bool = "daemonize", Bool, false, IMMUTABLE;
    io_threads_do_reads: bool = "io-threads-do-reads", Bool, false, DEBUG | IMMUTABLE | NA;
    always_show_logo: bool = "always-show-logo", Bool, false, IMMUTABLE;
    protected_mode: bool = "protected-mode", Bool, true, M;
    rdbcompression: bool = "rdbcompression", Bool, true, M;
    rdb_del_sync_files: bool = "rdb-del-sync-files", Bool, false, NA;
    activerehashing: bool = "activerehashing", Bool, true, M;
    stop_writes_on_bgsave_error: bool = "stop-writes-on-bgsave-error", Bool, true, M;
    set_proc_title: bool = "set-proc-title", Bool, true, IMMUTABLE;
    dynamic_hz: bool = "dynamic-hz", Bool, true, NA;
    lazyfree_lazy_eviction: bool = "lazyfree-lazy-eviction", Bool, false, DEBUG | NA;
    lazyfree_lazy_expire: bool = "lazyfree-lazy-expire", Bool, false, DEBUG | NA;
    lazyfree_lazy_server_del: bool = "lazyfree-lazy-server-del", Bool, false, DEBUG | NA;
    lazyfree_lazy_user_del: bool = "lazyfree-lazy-user-del", Bool, false, DEBUG | NA;
    lazyfree_lazy_user_flush: bool = "lazyfree-lazy-user-flush", Bool, false, DEBUG;
    repl_disable_tcp_nodelay: bool = "repl-disable-tcp-nodelay", Bool, false, M;
    repl_diskless_sync: bool = "repl-diskless-sync", Bool, true, DEBUG;
    aof_rewrite_incremental_fsync: bool = "aof-rewrite-incremental-fsync", Bool, true, NA;
    no_appendfsync_on_rewrite: bool = "no-appendfsync-on-rewrite", Bool, false, M;
    cluster_require_full_coverage: bool = "cluster-require-full-coverage", Bool, true, M;
    rdb_save_incremental_fsync: bool = "rdb-save-incremental-fsync", Bool, true, NA;
    aof_load_truncated: bool = "aof-load-truncated", Bool, true, M;
    aof_use_rdb_preamble: bool = "aof-use-rdb-preamble", Bool, true, M;
    aof_timestamp_enabled: bool = "aof-timestamp-enabled", Bool, false, M;
    cluster_replica_no_failover: bool = "cluster-replica-no-failover" | "cluster-slave-no-failover", Bool, false, M;
    replica_lazy_flush: bool = "replica-lazy-flush" | "slave-lazy-flush", Bool, false, M;
    replica_serve_stale_data: bool = "replica-serve-stale-data" | "slave-serve-stale-data", Bool, true, M;
    replica_read_only: bool = "replica-read-only" | "slave-read-only", Bool, true, DEBUG;
    replica_ignore_maxmemory: bool = "replica-ignore-maxmemory" | "slave-ignore-maxmemory", Bool, true, M;
    jemalloc_bg_thread: bool = "jemalloc-bg-thread", Bool, true, NA;
    activedefrag: bool = "activedefrag", Bool, false, DEBUG | NA;
    syslog_enabled: bool = "syslog-enabled", Bool, false, IMMUTABLE | NA;
    cluster_enabled: bool = "cluster-enabled", Bool, false, IMMUTABLE;
    appendonly: bool = "appendonly", Bool, false, DENY_LOADING;
    cluster_allow_reads_when_down: bool = "cluster-allow-reads-when-down", Bool, false, M;
    cluster_allow_pubsubshard_when_down: bool = "cluster-allow-pubsubshard-when-down", Bool, true, M;
    crash_log_enabled: bool = "crash-log-enabled", Bool, true, M;
    crash_memcheck_enabled: bool = "crash-memcheck-enabled", Bool, true, NA;
    use_exit_on_panic: bool = "use-exit-on-panic", Bool, false, HIDDEN | NA;
    disable_thp: bool = "disable-thp", Bool, true, IMMUTABLE;
    cluster_allow_replica_migration: bool = "cluster-allow-replica-migration", Bool, true, M;
    replica_announced: bool = "replica-announced", Bool, true, M;
    latency_tracking: bool = "latency-tracking", Bool, true, M;
    aof_disable_auto_gc: bool = "aof-disable-auto-gc", Bool, false, HIDDEN;
    replica_ignore_disk_write_errors: bool = "replica-ignore-disk-write-errors", Bool, false, M;

    // Strings.
    aclfile: String = "aclfile", STR, s(""), IMMUTABLE;
    unixsocket: String = "unixsocket", NSTR, s(""), IMMUTABLE;
    pidfile: String = "pidfile", NSTR, s(""), IMMUTABLE;
    replica_announce_ip: String = "replica-announce-ip" | "slave-announce-ip", NSTR, s(""), M;
    masteruser: String = "masteruser", NSTR, s(""), SENSITIVE;
    cluster_announce_ip: String = "cluster-announce-ip", NSTR, s(""), M;
    cluster_config_file: String = "cluster-config-file", STR, s("nodes.conf"), IMMUTABLE;
    cluster_announce_hostname: String = "cluster-announce-hostname", HOSTNAME, s(""), M;
    syslog_ident: String = "syslog-ident", STR, s("redis"), IMMUTABLE | NA;
    dbfilename: String = "dbfilename", DBFILENAME, s("dump.rdb"), PROTECTED;
    appendfilename: String = "appendfilename", AOFNAME, s("appendonly.aof"), IMMUTABLE;
    appenddirname: String = "appenddirname", AOFDIR, s("appendonlydir"), IMMUTABLE;
    server_cpulist: String = "server_cpulist", NSTR, s(""), IMMUTABLE | NA;
    bio_cpulist: String = "bio_cpulist", NSTR, s(""), IMMUTABLE | NA;
    aof_rewrite_cpulist: String = "aof_rewrite_cpulist", NSTR, s(""), IMMUTABLE | NA;
    bgsave_cpulist: String = "bgsave_cpulist", NSTR, s(""), IMMUTABLE | NA;
    ignore_warnings: String = "ignore-warnings", STR, s(""), M;
    proc_title_template: String = "proc-title-template", TITLE, s("{title} {listen-addr} {server-mode}"), M;
    bind_source_addr: String = "bind-source-addr", NSTR, s(""), M;
    logfile: String = "logfile", STR, s(""), IMMUTABLE;
    masterauth: String = "masterauth", NSTR, s(""), SENSITIVE;
    requirepass: String = "requirepass", NSTR, s(""), SENSITIVE;

    // Enums.
    supervised: u32 = "supervised", SUPERVISED, 0, IMMUTABLE;
    syslog_facility: u32 = "syslog-facility", FACILITY, 128, IMMUTABLE | NA;
    repl_diskless_load: u32 = "repl-diskless-load", DISKLESS_LOAD, 0, DEBUG | DENY_LOADING;
    loglevel: u32 = "loglevel", LOGLEVELS, 2, M;
    maxmemory_policy: u32 = "maxmemory-policy", POLICIES, 7, M;
    appendfsync: u32 = "appendfsync", FSYNC, 1, M;
    oom_score_adj: u32 = "oom-score-adj", OOM_ADJ, 0, M;
    acl_pubsub_default: u32 = "acl-pubsub-default", PUBSUB_DEFAULT, 0, M;
    sanitize_dump_payload: u32 = "sanitize-dump-payload", SANITIZE, 0, DEBUG;
    enable_protected_configs: u32 = "enable-protected-configs", PROTECTED_ACTION, 0, IMMUTABLE;
    enable_debug_command: u32 = "enable-debug-command", PROTECTED_ACTION, 0, IMMUTABLE;
    enable_module_command: u32 = "enable-module-command", PROTECTED_ACTION, 0, IMMUTABLE;
    cluster_preferred_endpoint_type: u32 = "cluster-preferred-endpoint-type", ENDPOINT, 0, M;
    propagation_error_behavior: u32 = "propagation-error-behavior", PROPAGATION_ERR, 0, NA;
    shutdown_on_sigint: u32 = "shutdown-on-sigint", SHUTDOWN_ON_SIG, 0, M;
    shutdown_on_sigterm: u32 = "shutdown-on-sigterm", SHUTDOWN_ON_SIG, 0, M;

    // Numbers.
    databases: i64 = "databases", int(1, INT_MAX), 16, IMMUTABLE;
    port: i64 = "port", int(0, 65535), 6379, M;
    io_threads: i64 = "io-threads", int(1, 128), 1, DEBUG | IMMUTABLE | NA;
    auto_aof_rewrite_percentage: i64 = "auto-aof-rewrite-percentage", int(0, INT_MAX), 100, M;
    cluster_replica_validity_factor: i64 = "cluster-replica-validity-factor" | "cluster-slave-validity-factor", int(0, INT_MAX), 10, M;
    list_max_listpack_size: i64 = "list-max-listpack-size" | "list-max-ziplist-size", int(INT_MIN, INT_MAX), -2, M;
    tcp_keepalive: i64 = "tcp-keepalive", int(0, INT_MAX), 300, M;
    cluster_migration_barrier: i64 = "cluster-migration-barrier", int(0, INT_MAX), 1, M;
    active_defrag_cycle_min: i64 = "active-defrag-cycle-min", int(1, 99), 1, NA;
    active_defrag_cycle_max: i64 = "active-defrag-cycle-max", int(1, 99), 25, NA;
    active_defrag_threshold_lower: i64 = "active-defrag-threshold-lower", int(0, 1000), 10, NA;
    active_defrag_threshold_upper: i64 = "active-defrag-threshold-upper", int(0, 1000), 100, NA;
    lfu_log_factor: i64 = "lfu-log-factor", int(0, INT_MAX), 10, M;
    lfu_decay_time: i64 = "lfu-decay-time", int(0, INT_MAX), 1, M;
    replica_priority: i64 = "replica-priority" | "slave-priority", int(0, INT_MAX), 100, M;
    repl_diskless_sync_delay: i64 = "repl-diskless-sync-delay", int(0, INT_MAX), 5, M;
    maxmemory_samples: i64 = "maxmemory-samples", int(1, INT_MAX), 5, M;
    maxmemory_eviction_tenacity: i64 = "maxmemory-eviction-tenacity", int(0, 100), 10, NA;
    timeout: i64 = "timeout", int(0, INT_MAX), 0, M;
    replica_announce_port: i64 = "replica-announce-port" | "slave-announce-port", int(0, 65535), 0, M;
    tcp_backlog: i64 = "tcp-backlog", int(0, INT_MAX), 511, IMMUTABLE;
    cluster_port: i64 = "cluster-port", int(0, 65535), 0, IMMUTABLE;
    cluster_announce_bus_port: i64 = "cluster-announce-bus-port", int(0, 65535), 0, M;
    cluster_announce_port: i64 = "cluster-announce-port", int(0, 65535), 0, M;
    cluster_announce_tls_port: i64 = "cluster-announce-tls-port", int(0, 65535), 0, M;
    repl_timeout: i64 = "repl-timeout", int(1, INT_MAX), 60, M;
    repl_ping_replica_period: i64 = "repl-ping-replica-period" | "repl-ping-slave-period", int(1, INT_MAX), 10, M;
    list_compress_depth: i64 = "list-compress-depth", int(0, INT_MAX), 0, DEBUG;
    rdb_key_save_delay: i64 = "rdb-key-save-delay", int(INT_MIN, INT_MAX), 0, HIDDEN;
    key_load_delay: i64 = "key-load-delay", int(INT_MIN, INT_MAX), 0, HIDDEN;
    active_expire_effort: i64 = "active-expire-effort", int(1, 10), 1, M;
    hz: i64 = "hz", int(0, INT_MAX), 10, M;
    min_replicas_to_write: i64 = "min-replicas-to-write" | "min-slaves-to-write", int(0, INT_MAX), 0, M;
    min_replicas_max_lag: i64 = "min-replicas-max-lag" | "min-slaves-max-lag", int(0, INT_MAX), 10, M;
    watchdog_period: i64 = "watchdog-period", int(0, INT_MAX), 0, HIDDEN;
    shutdown_timeout: i64 = "shutdown-timeout", int(0, INT_MAX), 10, M;
    repl_diskless_sync_max_replicas: i64 = "repl-diskless-sync-max-replicas", int(0, INT_MAX), 0, M;
    maxclients: i64 = "maxclients", uint(1, UINT_MAX), 10000, M;
    unixsocketperm: i64 = "unixsocketperm", OCTAL_PERM, 0, IMMUTABLE;
    socket_mark_id: i64 = "socket-mark-id", uint(0, UINT_MAX), 0, IMMUTABLE | NA;
    active_defrag_max_scan_fields: i64 = "active-defrag-max-scan-fields", uint(1, LONG_MAX), 1000, NA;
    slowlog_max_len: i64 = "slowlog-max-len", uint(0, LONG_MAX), 128, M;
    acllog_max_len: i64 = "acllog-max-len", uint(0, LONG_MAX), 128, M;
    busy_reply_threshold: i64 = "busy-reply-threshold" | "lua-time-limit", int(0, LONG_MAX), 5000, M;
    cluster_node_timeout: i64 = "cluster-node-timeout", int(0, LONG_MAX), 15000, M;
    slowlog_log_slower_than: i64 = "slowlog-log-slower-than", int(-1, LONG_MAX), 10000, M;
    latency_monitor_threshold: i64 = "latency-monitor-threshold", int(0, LONG_MAX), 0, M;
    proto_max_bulk_len: i64 = "proto-max-bulk-len", mem(1024 * 1024, LONG_MAX), 512 * 1024 * 1024, DEBUG;
    stream_node_max_entries: i64 = "stream-node-max-entries", int(0, LONG_MAX), 100, M;
    repl_backlog_size: i64 = "repl-backlog-size", mem(1, LONG_MAX), 1024 * 1024, M;
    maxmemory: i64 = "maxmemory", umem(0, -1), 0, M;
    cluster_link_sendbuf_limit: i64 = "cluster-link-sendbuf-limit", umem(0, -1), 0, M;
    hash_max_listpack_entries: i64 = "hash-max-listpack-entries" | "hash-max-ziplist-entries", uint(0, LONG_MAX), 512, M;
    set_max_intset_entries: i64 = "set-max-intset-entries", uint(0, LONG_MAX), 512, M;
    zset_max_listpack_entries: i64 = "zset-max-listpack-entries" | "zset-max-ziplist-entries", uint(0, LONG_MAX), 128, M;
    active_defrag_ignore_bytes: i64 = "active-defrag-ignore-bytes", umem(1, LONG_MAX), 100 << 20, NA;
    hash_max_listpack_value: i64 = "hash-max-listpack-value" | "hash-max-ziplist-value", umem(0, LONG_MAX), 64, M;
    stream_node_max_bytes: i64 = "stream-node-max-bytes", umem(0, LONG_MAX), 4096, M;
    zset_max_listpack_value: i64 = "zset-max-listpack-value" | "zset-max-ziplist-value", umem(0, LONG_MAX), 64, M;
    hll_sparse_max_bytes: i64 = "hll-sparse-max-bytes", umem(0, LONG_MAX), 3000, M;
    tracking_table_max_keys: i64 = "tracking-table-max-keys", uint(0, LONG_MAX), 1000000, M;
    client_query_buffer_limit: i64 = "client-query-buffer-limit", umem(1024 * 1024, LONG_MAX), 1 << 30, DEBUG;
    maxmemory_clients: i64 = "maxmemory-clients", PERCENT_MEM, 0, M;
    repl_backlog_ttl: i64 = "repl-backlog-ttl", int(0, LONG_MAX), 3600, M;
    auto_aof_rewrite_min_size: i64 = "auto-aof-rewrite-min-size", mem(0, LONG_MAX), 64 << 20, M;
    loading_process_events_interval_bytes: i64 = "loading-process-events-interval-bytes", int(1024, INT_MAX), 2 << 20, HIDDEN | NA;

    // TLS (rustls; see server/tls.rs for what OpenSSL has and rustls has not).
    tls_port: i64 = "tls-port", int(0, 65535), 0, M;
    tls_session_cache_size: i64 = "tls-session-cache-size", int(0, INT_MAX), 20 * 1024, M;
    tls_session_cache_timeout: i64 = "tls-session-cache-timeout", int(0, INT_MAX), 300, NA;
    tls_cluster: bool = "tls-cluster", Bool, false, M;
    tls_replication: bool = "tls-replication", Bool, false, M;
    tls_auth_clients: u32 = "tls-auth-clients", TLS_AUTH, 1, M;
    tls_prefer_server_ciphers: bool = "tls-prefer-server-ciphers", Bool, false, M;
    tls_session_caching: bool = "tls-session-caching", Bool, true, M;
    tls_cert_file: String = "tls-cert-file", NSTR, s(""), M;
    tls_key_file: String = "tls-key-file", NSTR, s(""), M;
    tls_key_file_pass: String = "tls-key-file-pass", NSTR, s(""), M;
    tls_client_cert_file: String = "tls-client-cert-file", NSTR, s(""), M;
    tls_client_key_file: String = "tls-client-key-file", NSTR, s(""), M;
    tls_client_key_file_pass: String = "tls-client-key-file-pass", NSTR, s(""), M;
    tls_dh_params_file: String = "tls-dh-params-file", NSTR, s(""), NA;
    tls_ca_cert_file: String = "tls-ca-cert-file", NSTR, s(""), M;
    tls_ca_cert_dir: String = "tls-ca-cert-dir", NSTR, s(""), M;
    tls_protocols: String = "tls-protocols", NSTR, s(""), M;
    tls_ciphers: String = "tls-ciphers", NSTR, s(""), M;
    tls_ciphersuites: String = "tls-ciphersuites", NSTR, s(""), M;
    // Ferrous's (Redis 8.6's directive): `CN` authenticates a TLS client whose verified
    // certificate's subject Common Name names an enabled ACL user as that user.
    tls_auth_clients_user: u32 = "tls-auth-clients-user", TLS_CERT_USER, 0, HIDDEN;

    // Special parameters.
    dir: String = "dir", Dir, cwd(), PROTECTED | DENY_LOADING;
    save: Vec<(i64, i64)> = "save", Save, vec![(3600, 1), (300, 100), (60, 10000)], M;
    client_output_buffer_limit: ObufLimits = "client-output-buffer-limit", Obuf, OBUF_DEFAULTS, M;
    oom_score_adj_values: [i64; 3] = "oom-score-adj-values", OomValues, [0, 200, 800], M;
    notify_keyspace_events: u32 = "notify-keyspace-events", Events, 0, M;
    bind: Vec<String> = "bind", Bind, vec![s("*"), s("-::*")], M;
    replicaof: Option<(String, u16)> = "replicaof" | "slaveof", ReplicaOf, None, IMMUTABLE;
    latency_tracking_info_percentiles: Vec<f64> = "latency-tracking-info-percentiles", Percentiles, vec![50.0, 99.0, 99.9], M;

    // Added by Redis 7.2 (the version Ferrous reports).
    set_max_listpack_entries: i64 = "set-max-listpack-entries", uint(0, LONG_MAX), 128, M;
    set_max_listpack_value: i64 = "set-max-listpack-value", uint(0, LONG_MAX), 64, M;
    // The LC_COLLATE locale of SORT ... ALPHA and Lua's string comparisons ("" = the
    // environment's). Ferrous compares bytes, which is what the C/POSIX locale does.
    locale_collate: String = "locale-collate", STR, s(""), NA;
    cluster_announce_human_nodename: String = "cluster-announce-human-nodename", HOSTNAME, s(""), M;
    client_default_resp: i64 = "client-default-resp", uint(2, 3), 2, IMMUTABLE | HIDDEN | NA;
    cluster_ping_interval: i64 = "cluster-ping-interval", int(0, LONG_MAX), 0, HIDDEN | NA;
    req_res_logfile: String = "req-res-logfile", NSTR, s(""), IMMUTABLE | HIDDEN | NA;

    // Ferrous's own (hidden: CONFIG GET needs their exact names, so Redis tools that walk
    // `CONFIG GET *` see only Redis's parameters).
    // Threads executing commands (0: one per CPU core, less one).
    worker_threads: i64 = "worker-threads", int(0, 1024), 0, IMMUTABLE | HIDDEN;
    // The RDB version SAVE/BGSAVE/DUMP/replication write. 10 (Redis 7.0's, the default) keeps
    // files loadable by Redis 7.0 and later; 11 is Redis 7.2's (listpack sets as RDB type 20);
    // 12 is Redis 7.4's.
    rdb_version: i64 = "rdb-version", int(10, 12), 10, HIDDEN;
    // A Prometheus exposition endpoint (0: off).
    metrics_port: i64 = "metrics-port", int(0, 65535), 0, IMMUTABLE | HIDDEN;
    // The longest a worker polls its connections before sleeping, in microseconds (0: off;
    // -1: 100, or off under a CPU quota; the window adapts below it, see `server::busy_poll`):
    // more requests per second and lower latency for unpipelined clients, for CPU spent
    // spinning while requests come closer together than that.
    busy_poll_us: i64 = "busy-poll-us", int(-1, 1000), -1, IMMUTABLE | HIDDEN;
    // How many nice steps below the workers the threads that write BGSAVE snapshots and AOF
    // rewrites run (0: as the workers; 19, the default: the lowest priority, so that a worker or
    // a client waking up preempts them at once, where Redis's fork child competes with the
    // server as an equal; a save then takes longer only while every core is busy).
    snapshot_nice: i64 = "snapshot-nice", int(0, 19), 19, HIDDEN;
    // The most output a client whose class has no hard `client-output-buffer-limit` (normal
    // clients, by default) may have waiting before it is closed, in bytes (0: a quarter of the
    // memory the process may use, at least 256 MiB). Redis has no such bound: one command
    // whose reply grows without end (SRANDMEMBER key -1000000000000) takes it down.
    output_buffer_ceiling: i64 = "output-buffer-ceiling", mem(0, LONG_MAX), 0, HIDDEN;
}
