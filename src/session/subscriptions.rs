//! A connection's Pub/Sub subscriptions.

use bytes::Bytes;

use crate::pubsub::Subscriber;

/// A connection's subscriptions.
#[derive(Default)]
pub struct Subscriptions {
    /// The queue messages reach this connection through (set when the connection starts).
    pub subscriber: Option<Subscriber>,
    pub channels: Vec<Bytes>,
    pub patterns: Vec<Bytes>,
    pub shard_channels: Vec<Bytes>,
}

impl Subscriptions {
    /// Channels + patterns (what SUBSCRIBE and PSUBSCRIBE replies count).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the connection is in subscribed mode.
    pub fn active(&self) -> bool {
        self.count() + self.shard_channels.len() > 0
    }
}
