//! Leader election for a failover (Redis's sentinelVoteLeader / sentinelGetLeader): a Sentinel
//! votes once per epoch, for the first candidate that asks; the leader is the candidate with
//! a majority of all known Sentinels and at least `quorum` votes.

use std::collections::HashMap;

use super::instance::Master;
use super::{now_ms, Global};
use crate::server::log;

/// Vote for `runid` in `epoch` unless we already voted in that epoch: our vote (the leader we
/// voted for, and the epoch of that vote).
pub fn vote(g: &mut Global, m: &mut Master, epoch: u64, runid: &str) -> (Option<String>, u64) {
    if epoch > g.current_epoch {
        g.current_epoch = epoch;
        g.flush();
        g.event_about(log::WARNING, "+new-epoch", &m.inst, &epoch.to_string());
    }
    if m.inst.leader_epoch < epoch && g.current_epoch <= epoch {
        m.inst.leader = Some(runid.to_string());
        m.inst.leader_epoch = g.current_epoch;
        g.flush();
        let rest = format!("{} {}", runid, m.inst.leader_epoch);
        g.event_about(log::WARNING, "+vote-for-leader", &m.inst, &rest);
        // Voting for another Sentinel: don't start a failover of our own for a while.
        if !runid.eq_ignore_ascii_case(&g.myid) {
            m.failover_start_time = now_ms() + (rand::random::<u64>() % 1000) as i64;
        }
    }
    (m.inst.leader.clone(), m.inst.leader_epoch)
}

/// The leader of `epoch`, if one has the votes (we vote too: for the most voted candidate, or
/// for ourselves).
pub fn leader(g: &mut Global, m: &mut Master, epoch: u64) -> Option<String> {
    let voters = m.sentinels.len() as u64 + 1;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for s in m.sentinels.values() {
        if let Some(l) = &s.leader {
            if s.leader_epoch == g.current_epoch {
                *counts.entry(l.clone()).or_default() += 1;
            }
        }
    }
    let mut winner: Option<String> = None;
    let mut max_votes = 0;
    // Ties go to the first candidate seen; sort for a deterministic order.
    let mut ordered: Vec<(&String, &u64)> = counts.iter().collect();
    ordered.sort();
    for (c, &v) in ordered {
        if v > max_votes {
            max_votes = v;
            winner = Some(c.clone());
        }
    }
    let candidate = winner.clone().unwrap_or_else(|| g.myid.clone());
    let (my_vote, vote_epoch) = vote(g, m, epoch, &candidate);
    if let Some(v) = my_vote.filter(|_| vote_epoch == epoch) {
        let n = counts.entry(v.clone()).or_default();
        *n += 1;
        if *n > max_votes {
            max_votes = *n;
            winner = Some(v);
        }
    }
    let quorum = voters / 2 + 1;
    winner.filter(|_| max_votes >= quorum && max_votes >= m.quorum as u64)
}

#[cfg(test)]
mod tests {
    use super::super::instance::{Addr, Instance, Kind};
    use super::super::timing::Periods;
    use super::*;

    fn master(sentinels: usize, quorum: u32) -> Master {
        let mut m = Master::new("m".into(), Addr::new("127.0.0.1", 1, false).unwrap(), quorum, &Periods::default());
        for i in 0..sentinels {
            let name = format!("s{i}");
            let s =
                Instance::new(Kind::Sentinel, name.clone(), Addr::new("127.0.0.1", 2 + i as i64, false).unwrap(), 1);
            m.sentinels.insert(name, s);
        }
        m
    }

    #[test]
    fn one_vote_per_epoch() {
        let mut g = Global::new();
        g.myid = "me".into();
        let mut m = master(2, 2);
        assert_eq!(vote(&mut g, &mut m, 1, "a"), (Some("a".into()), 1));
        assert_eq!(vote(&mut g, &mut m, 1, "b"), (Some("a".into()), 1));
        assert_eq!(g.current_epoch, 1);
        assert_eq!(vote(&mut g, &mut m, 2, "b"), (Some("b".into()), 2));
    }

    #[test]
    fn majority_and_quorum() {
        let mut g = Global::new();
        g.myid = "me".into();
        g.current_epoch = 5;
        let mut m = master(2, 2);
        // Nobody else voted: only our own vote, 1 of 3.
        assert_eq!(leader(&mut g, &mut m, 5), None);
        let mut m = master(2, 2);
        for s in m.sentinels.values_mut() {
            s.leader = Some("me".into());
            s.leader_epoch = 5;
        }
        assert_eq!(leader(&mut g, &mut m, 5), Some("me".into()));
        // A quorum above the votes blocks the election.
        let mut m = master(2, 4);
        m.sentinels.values_mut().for_each(|s| {
            s.leader = Some("me".into());
            s.leader_epoch = 5;
        });
        assert_eq!(leader(&mut g, &mut m, 5), None);
    }
}
