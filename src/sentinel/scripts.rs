//! Notification and client-reconfiguration scripts (Redis's sentinel script queue): every
//! warning-level event about a master with a `notification-script` runs it with the event's
//! type and text; a failover runs the master's `client-reconfig-script` with
//! `<master> <leader|observer> start <from-ip> <from-port> <to-ip> <to-port>`. At most 16 run
//! at once and 256 wait; a script that exits with 1 or dies of a signal is retried (up to 10
//! times, the delay doubling from script-retry-delay); one running longer than
//! script-max-runtime is killed.

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};

use super::instance::Addr;
use super::{now_ms, Global};
use crate::protocol::ReplySink;
use crate::server::log;

const MAX_QUEUE: usize = 256;
const MAX_RUNNING: usize = 16;
const MAX_RETRY: u32 = 10;

/// One script execution, queued or running.
pub struct Job {
    pub argv: Vec<String>,
    child: Option<Child>,
    pub pid: u32,
    /// When it started, or (not running) when it may be retried; 0: never ran.
    pub start_time: i64,
    pub retry_num: u32,
}

impl Job {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// The queue.
#[derive(Default)]
pub struct Scripts {
    pub queue: VecDeque<Job>,
}

impl Scripts {
    pub fn running(&self) -> usize {
        self.queue.iter().filter(|j| j.running()).count()
    }

    /// Queue a script; past the limit the oldest job not running is dropped.
    pub fn schedule(&mut self, argv: Vec<String>) {
        self.queue.push_back(Job { argv, child: None, pid: 0, start_time: 0, retry_num: 0 });
        if self.queue.len() > MAX_QUEUE {
            if let Some(i) = self.queue.iter().position(|j| !j.running()) {
                self.queue.remove(i);
            }
        }
    }
}

impl Global {
    /// Start queued scripts, collect finished ones, kill those over their time (the timer).
    pub fn run_scripts(&mut self) {
        self.collect_scripts();
        self.kill_timed_out_scripts();
        let now = now_ms();
        let mut events = Vec::new();
        let mut running = self.scripts.running();
        let mut failed = Vec::new();
        for (i, job) in self.scripts.queue.iter_mut().enumerate() {
            if running >= MAX_RUNNING {
                break;
            }
            if job.running() || (job.start_time != 0 && job.start_time > now) {
                continue;
            }
            job.start_time = now;
            job.retry_num += 1;
            match Command::new(&job.argv[0])
                .args(&job.argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => {
                    job.pid = child.id();
                    job.child = Some(child);
                    running += 1;
                    events.push((log::DEBUG, "+script-child", job.pid.to_string()));
                }
                Err(_) => {
                    // Redis's child could not exec it: exit code 2, not retried.
                    events.push((log::WARNING, "-script-error", format!("{} 0 2", job.argv[0])));
                    failed.push(i);
                }
            }
        }
        for i in failed.into_iter().rev() {
            self.scripts.queue.remove(i);
        }
        for (level, kind, msg) in events {
            self.event(level, kind, None, &msg);
        }
    }

    fn collect_scripts(&mut self) {
        let now = now_ms();
        let retry_delay = self.periods.script_retry_delay;
        let mut events = Vec::new();
        let mut done = Vec::new();
        for (i, job) in self.scripts.queue.iter_mut().enumerate() {
            let Some(child) = job.child.as_mut() else { continue };
            let Ok(Some(status)) = child.try_wait() else { continue };
            use std::os::unix::process::ExitStatusExt;
            let code = status.code().unwrap_or(0);
            let signal = status.signal().unwrap_or(0);
            events.push((log::DEBUG, "-script-child", format!("{} {code} {signal}", job.pid)));
            job.child = None;
            if (signal != 0 || code == 1) && job.retry_num != MAX_RETRY {
                job.pid = 0;
                let delay = retry_delay << (job.retry_num.saturating_sub(1)).min(20);
                job.start_time = now + delay;
            } else {
                if signal != 0 || code != 0 {
                    events.push((log::WARNING, "-script-error", format!("{} {signal} {code}", job.argv[0])));
                }
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            self.scripts.queue.remove(i);
        }
        for (level, kind, msg) in events {
            self.event(level, kind, None, &msg);
        }
    }

    fn kill_timed_out_scripts(&mut self) {
        let now = now_ms();
        let max = self.periods.script_max_runtime;
        let mut events = Vec::new();
        for job in self.scripts.queue.iter_mut() {
            if let Some(child) = job.child.as_mut() {
                if now - job.start_time > max {
                    events.push(format!("{} {}", job.argv[0], job.pid));
                    let _ = child.kill();
                }
            }
        }
        for msg in events {
            self.event(log::WARNING, "-script-timeout", None, &msg);
        }
    }
}

/// Queue the master's client-reconfig-script for a failover from `from` to `to`.
pub fn client_reconfig(g: &mut Global, m: &super::instance::Master, leader: bool, from: &Addr, to: &Addr) {
    let Some(path) = &m.client_reconfig_script else { return };
    let argv = [
        path.as_str(),
        &m.inst.name,
        if leader { "leader" } else { "observer" },
        "start",
        from.announced(),
        &from.port.to_string(),
        to.announced(),
        &to.port.to_string(),
    ];
    g.scripts.schedule(argv.iter().map(|s| s.to_string()).collect());
}

/// SENTINEL PENDING-SCRIPTS.
pub fn pending(r: &mut ReplySink, s: &Scripts) {
    let now = now_ms();
    r.array(s.queue.len());
    for j in &s.queue {
        r.map(5);
        r.bulk(b"argv");
        r.array(j.argv.len());
        j.argv.iter().for_each(|a| r.bulk(a.as_bytes()));
        r.bulk(b"flags");
        r.bulk(if j.running() { b"running".as_slice() } else { b"scheduled".as_slice() });
        r.bulk(b"pid");
        r.bulk_int(j.pid as i64);
        if j.running() {
            r.bulk(b"run-time");
            r.bulk_int(now - j.start_time);
        } else {
            r.bulk(b"run-delay");
            r.bulk_int(if j.start_time != 0 { (j.start_time - now).max(0) } else { 0 });
        }
        r.bulk(b"retry-num");
        r.bulk_int(j.retry_num as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_limit_drops_the_oldest_waiting_job() {
        let mut s = Scripts::default();
        for i in 0..=MAX_QUEUE {
            s.schedule(vec![format!("/bin/s{i}")]);
        }
        assert_eq!(s.queue.len(), MAX_QUEUE);
        assert_eq!(s.queue[0].argv[0], "/bin/s1");
    }

    #[test]
    fn a_script_runs_and_is_collected() {
        let mut g = Global::new();
        g.scripts.schedule(vec!["/bin/true".into()]);
        g.scripts.schedule(vec!["/nonexistent/script".into()]);
        g.run_scripts();
        assert!(g.events.iter().any(|e| e.kind == "-script-error" && e.msg == "/nonexistent/script 0 2"));
        let done = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            g.run_scripts();
            g.scripts.queue.is_empty()
        });
        assert!(done);
    }
}
