//! Sentinel's time parameters (milliseconds), which SENTINEL DEBUG shows and changes.

/// The periods and timeouts, Redis 7.2's defaults.
#[derive(Debug, Clone)]
pub struct Periods {
    pub info_period: i64,
    pub ping_period: i64,
    pub ask_period: i64,
    pub publish_period: i64,
    pub default_down_after: i64,
    pub default_failover_timeout: i64,
    pub tilt_trigger: i64,
    pub tilt_period: i64,
    pub slave_reconf_timeout: i64,
    pub min_link_reconnect_period: i64,
    pub election_timeout: i64,
    pub script_max_runtime: i64,
    pub script_retry_delay: i64,
}

impl Default for Periods {
    fn default() -> Self {
        Periods {
            info_period: 10_000,
            ping_period: 1000,
            ask_period: 1000,
            publish_period: 2000,
            default_down_after: 30_000,
            default_failover_timeout: 180_000,
            tilt_trigger: 2000,
            tilt_period: 30_000,
            slave_reconf_timeout: 10_000,
            min_link_reconnect_period: 15_000,
            election_timeout: 10_000,
            script_max_runtime: 60_000,
            script_retry_delay: 30_000,
        }
    }
}

impl Periods {
    /// (SENTINEL DEBUG's name, the value to set), in Redis's order: the one list of names that
    /// [`Periods::list`] and [`Periods::field`] both read.
    fn named_mut(&mut self) -> [(&'static str, &mut i64); 13] {
        [
            ("INFO-PERIOD", &mut self.info_period),
            ("PING-PERIOD", &mut self.ping_period),
            ("ASK-PERIOD", &mut self.ask_period),
            ("PUBLISH-PERIOD", &mut self.publish_period),
            ("DEFAULT-DOWN-AFTER", &mut self.default_down_after),
            ("DEFAULT-FAILOVER-TIMEOUT", &mut self.default_failover_timeout),
            ("TILT-TRIGGER", &mut self.tilt_trigger),
            ("TILT-PERIOD", &mut self.tilt_period),
            ("SLAVE-RECONF-TIMEOUT", &mut self.slave_reconf_timeout),
            ("MIN-LINK-RECONNECT-PERIOD", &mut self.min_link_reconnect_period),
            ("ELECTION-TIMEOUT", &mut self.election_timeout),
            ("SCRIPT-MAX-RUNTIME", &mut self.script_max_runtime),
            ("SCRIPT-RETRY-DELAY", &mut self.script_retry_delay),
        ]
    }

    /// (SENTINEL DEBUG's name, value), in Redis's order.
    pub fn list(&self) -> [(&'static str, i64); 13] {
        self.clone().named_mut().map(|(name, v)| (name, *v))
    }

    /// The parameter SENTINEL DEBUG names (case-insensitively), to be set.
    pub fn field(&mut self, name: &str) -> Option<&mut i64> {
        self.named_mut().into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}
