//! Pub/Sub: the registry of channel, pattern and shard-channel subscriptions, and message
//! delivery. Each subscribed connection has an unbounded queue of [`Push`] messages that its
//! task drains and encodes for its protocol (RESP2 arrays, RESP3 pushes) between replies.
//! Messages from one publisher reach each subscriber in publishing order.
//!
//! A slow subscriber cannot make the server's memory grow without bound: the bytes queued for
//! it are counted, and past `client-output-buffer-limit`'s pubsub hard limit (or over the soft
//! limit for too long) it is disconnected, as Redis does.

use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::metrics::obuf::{ClassLimit, Meter};

use crate::util::glob::glob_match;

mod queue;
pub use queue::{queue, PushReceiver, PushSender};

/// An out-of-band message for a subscriber.
#[derive(Debug, Clone)]
pub enum Push {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    SMessage {
        channel: Bytes,
        payload: Bytes,
    },
    /// Client-side caching: these keys (None: everything, after a flush) were invalidated.
    /// `redirected`: sent on behalf of another client (RESP2 connections then receive it as a
    /// `__redis__:invalidate` message, and only while subscribed).
    /// `null_resp3`: a flush's null is written as the *tracking* client's protocol writes it,
    /// whatever the receiver speaks (Redis 7.2 encodes it with the tracking client's `resp`).
    Invalidate {
        keys: Option<Vec<Bytes>>,
        redirected: bool,
        null_resp3: bool,
    },
    /// Client-side caching: the client invalidations were redirected to is gone.
    RedirBroken {
        id: u64,
    },
    /// A MONITOR line, sent as a status reply.
    Monitor(Bytes),
    /// The server unsubscribed the connection from a shard channel (its slot moved to
    /// another shard of a cluster): the connection drops it and tells the client.
    SUnsubscribed(Bytes),
    /// No message: wakes the connection up so that it sees it was killed (CLIENT KILL,
    /// eviction), without it having to wait on a second wake-up source for every read.
    Wake,
}

impl Push {
    fn size(&self) -> usize {
        match self {
            Push::Message { channel, payload } | Push::SMessage { channel, payload } => {
                channel.len() + payload.len() + 32
            }
            Push::PMessage { pattern, channel, payload } => pattern.len() + channel.len() + payload.len() + 40,
            Push::Invalidate { keys, .. } => keys.as_ref().map_or(0, |k| k.iter().map(|k| k.len() + 8).sum()) + 40,
            Push::RedirBroken { .. } => 40,
            Push::Monitor(line) => line.len() + 3,
            Push::SUnsubscribed(channel) => channel.len() + 32,
            Push::Wake => 0,
        }
    }
}

/// The sending side of a subscriber's queue, with its queued-bytes accounting.
#[derive(Clone)]
pub struct Subscriber {
    pub id: u64,
    tx: PushSender,
    /// The connection's output (what it has yet to send, queued messages included).
    pub meter: Arc<Meter>,
    /// Closes the subscriber when its buffer limit is exceeded.
    kill: Arc<dyn Fn() + Send + Sync>,
}

impl Subscriber {
    pub fn new(id: u64, tx: PushSender, meter: Arc<Meter>, kill: Arc<dyn Fn() + Send + Sync>) -> Self {
        Subscriber { id, tx, meter, kill }
    }

    /// Queue a message, unless that puts the subscriber over the pubsub class of
    /// `client-output-buffer-limit` (it is then closed, as Redis closes it when the reply is
    /// added).
    fn deliver(&self, msg: Push, limits: &ClassLimit) -> bool {
        self.meter.queued.fetch_add(msg.size(), Ordering::Relaxed);
        if self.meter.over(*limits, crate::keyspace::now_ms()) {
            (self.kill)();
            return false;
        }
        self.tx.send(msg)
    }

    /// Queue a message without the Pub/Sub buffer limits (client-side caching invalidations).
    pub fn push(&self, msg: Push) {
        self.meter.queued.fetch_add(msg.size(), Ordering::Relaxed);
        self.tx.send(msg);
    }

    /// Whether the connection behind this queue is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Account for a message taken off the queue (encoded) by the connection.
    pub fn written(meter: &Meter, msg: &Push) {
        let _ = meter.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| Some(q.saturating_sub(msg.size())));
    }
}

/// Channel → subscribers (aHash: PUBLISH looks a channel up on every message).
type ChannelMap = HashMap<Bytes, Vec<Subscriber>, ahash::RandomState>;

#[derive(Default)]
pub struct PubSub {
    channels: RwLock<ChannelMap>,
    shard_channels: RwLock<ChannelMap>,
    patterns: RwLock<Vec<(Bytes, Subscriber)>>,
    /// The pubsub class of `client-output-buffer-limit`.
    pub limits: RwLock<ClassLimit>,
}

fn add(map: &RwLock<ChannelMap>, channel: &Bytes, sub: &Subscriber) {
    let mut m = map.write();
    let list = m.entry(channel.clone()).or_default();
    if !list.iter().any(|s| s.id == sub.id) {
        list.push(sub.clone());
    }
}

fn remove(map: &RwLock<ChannelMap>, channel: &[u8], id: u64) {
    let mut m = map.write();
    if let Some(list) = m.get_mut(channel) {
        list.retain(|s| s.id != id);
        if list.is_empty() {
            m.remove(channel);
        }
    }
}

impl PubSub {
    pub fn subscribe(&self, channel: &Bytes, sub: &Subscriber, shard: bool) {
        add(if shard { &self.shard_channels } else { &self.channels }, channel, sub);
    }

    pub fn unsubscribe(&self, channel: &[u8], id: u64, shard: bool) {
        remove(if shard { &self.shard_channels } else { &self.channels }, channel, id);
    }

    pub fn psubscribe(&self, pattern: &Bytes, sub: &Subscriber) {
        let mut p = self.patterns.write();
        if !p.iter().any(|(pat, s)| s.id == sub.id && pat == pattern) {
            p.push((pattern.clone(), sub.clone()));
        }
    }

    pub fn punsubscribe(&self, pattern: &[u8], id: u64) {
        self.patterns.write().retain(|(pat, s)| !(s.id == id && &pat[..] == pattern));
    }

    /// PUBLISH / SPUBLISH: deliver to channel subscribers (and, for PUBLISH, pattern
    /// subscribers). Returns the number of receivers.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes, shard: bool) -> usize {
        let limits = *self.limits.read();
        let mut n = 0;
        let map = if shard { &self.shard_channels } else { &self.channels };
        if let Some(list) = map.read().get(channel) {
            for s in list {
                let msg = if shard {
                    Push::SMessage { channel: channel.clone(), payload: payload.clone() }
                } else {
                    Push::Message { channel: channel.clone(), payload: payload.clone() }
                };
                s.deliver(msg, &limits);
                n += 1;
            }
        }
        if !shard {
            for (pattern, s) in self.patterns.read().iter() {
                if glob_match(pattern, channel, false) {
                    s.deliver(
                        Push::PMessage { pattern: pattern.clone(), channel: channel.clone(), payload: payload.clone() },
                        &limits,
                    );
                    n += 1;
                }
            }
        }
        n
    }

    /// A subscriber's channels and shard channels, and its patterns (ACL changes check them).
    pub fn subscriptions_of(&self, id: u64) -> (Vec<Bytes>, Vec<Bytes>) {
        let mut channels = Vec::new();
        for map in [&self.channels, &self.shard_channels] {
            channels.extend(map.read().iter().filter(|(_, l)| l.iter().any(|s| s.id == id)).map(|(c, _)| c.clone()));
        }
        let patterns = self.patterns.read().iter().filter(|(_, s)| s.id == id).map(|(p, _)| p.clone()).collect();
        (channels, patterns)
    }

    /// Drop every subscription of a subscriber at once (a client disconnected by an ACL
    /// change receives nothing more).
    pub fn remove_subscriber(&self, id: u64) {
        for map in [&self.channels, &self.shard_channels] {
            map.write().retain(|_, l| {
                l.retain(|s| s.id != id);
                !l.is_empty()
            });
        }
        self.patterns.write().retain(|(_, s)| s.id != id);
    }

    /// Unsubscribe everyone from the shard channels `pick` selects (Redis's
    /// pubsubUnsubscribeShardChannels): each subscriber is told with a `sunsubscribe` push.
    pub fn unsubscribe_shard_channels(&self, pick: impl Fn(&[u8]) -> bool) {
        let taken: Vec<(Bytes, Vec<Subscriber>)> = {
            let mut m = self.shard_channels.write();
            let names: Vec<Bytes> = m.keys().filter(|c| pick(c)).cloned().collect();
            names.into_iter().filter_map(|c| m.remove(&c).map(|subs| (c, subs))).collect()
        };
        for (channel, subs) in taken {
            for s in subs {
                s.push(Push::SUnsubscribed(channel.clone()));
            }
        }
    }

    /// Active channels (with at least one subscriber) matching `pattern`.
    pub fn channels(&self, pattern: Option<&[u8]>, shard: bool) -> Vec<Bytes> {
        let map = if shard { &self.shard_channels } else { &self.channels };
        map.read().keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    pub fn numsub(&self, channel: &[u8], shard: bool) -> usize {
        let map = if shard { &self.shard_channels } else { &self.channels };
        map.read().get(channel).map_or(0, |l| l.len())
    }

    /// Number of distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        let p = self.patterns.read();
        let mut pats: Vec<&Bytes> = p.iter().map(|(pat, _)| pat).collect();
        pats.sort();
        pats.dedup();
        pats.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reaches_channel_and_pattern_subscribers() {
        let ps = PubSub::default();
        let (tx, mut rx) = queue();
        let sub = Subscriber::new(1, tx, Arc::new(Meter::default()), Arc::new(|| {}));
        ps.subscribe(&Bytes::from_static(b"news"), &sub, false);
        ps.psubscribe(&Bytes::from_static(b"n*"), &sub);
        assert_eq!(ps.publish(&Bytes::from_static(b"news"), &Bytes::from_static(b"hi"), false), 2);
        assert!(matches!(rx.try_recv(), Ok(Push::Message { .. })));
        assert!(matches!(rx.try_recv(), Ok(Push::PMessage { .. })));
        assert_eq!(ps.publish(&Bytes::from_static(b"other"), &Bytes::from_static(b"x"), false), 0);
        ps.unsubscribe(b"news", 1, false);
        ps.punsubscribe(b"n*", 1);
        assert_eq!(ps.numpat(), 0);
        assert!(ps.channels(None, false).is_empty());
    }

    #[test]
    fn hard_limit_disconnects_a_slow_subscriber() {
        let ps = PubSub::default();
        *ps.limits.write() = ClassLimit { hard: 1000, soft: 0, soft_seconds: 0, ceiling: 0 };
        let (tx, _rx) = queue();
        let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let k = killed.clone();
        let sub = Subscriber::new(1, tx, Arc::new(Meter::default()), Arc::new(move || k.store(true, Ordering::SeqCst)));
        ps.subscribe(&Bytes::from_static(b"c"), &sub, false);
        for _ in 0..100 {
            ps.publish(&Bytes::from_static(b"c"), &Bytes::from(vec![b'x'; 100]), false);
        }
        assert!(!killed.load(Ordering::SeqCst), "10 KB fit the 16 KB static buffer");
        for _ in 0..100 {
            ps.publish(&Bytes::from_static(b"c"), &Bytes::from(vec![b'x'; 100]), false);
        }
        assert!(killed.load(Ordering::SeqCst));
    }
}
