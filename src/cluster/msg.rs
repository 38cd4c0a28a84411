//! The cluster bus wire format: Redis 7.0's `clusterMsg` (a 2256-byte header followed by a
//! type-specific body, every integer in network byte order), byte for byte, so Ferrous and
//! Redis nodes understand each other. [`encode`] writes a message, [`decode`] checks one
//! received frame exactly as Redis's clusterProcessPacket does (lengths per type, extension
//! padding) and returns its parts. Nothing here knows the cluster state.

use std::sync::Arc;

use super::SLOTS;
use crate::util::bytetext::c_str;

/// Node names are 40 lowercase hex characters.
pub const NAMELEN: usize = 40;
/// `NET_IP_STR_LEN`: the size of the IP fields.
pub const IPLEN: usize = 46;
/// The header (Redis's CLUSTERMSG_MIN_LEN).
pub const HDR_LEN: usize = 2256;
/// One gossip entry.
pub const GOSSIP_LEN: usize = 104;
/// `sizeof(clusterMsg)`: the header plus the largest body (UPDATE).
pub const FULL_LEN: usize = HDR_LEN + UPDATE_BODY;
const UPDATE_BODY: usize = 8 + NAMELEN + SLOTS / 8;
pub const PROTO_VER: u16 = 1;

/// Message types.
pub mod types {
    pub const PING: u16 = 0;
    pub const PONG: u16 = 1;
    pub const MEET: u16 = 2;
    pub const FAIL: u16 = 3;
    pub const PUBLISH: u16 = 4;
    pub const FAILOVER_AUTH_REQUEST: u16 = 5;
    pub const FAILOVER_AUTH_ACK: u16 = 6;
    pub const UPDATE: u16 = 7;
    pub const MFSTART: u16 = 8;
    pub const MODULE: u16 = 9;
    pub const PUBLISHSHARD: u16 = 10;
    pub const COUNT: usize = 11;

    /// The names CLUSTER INFO's message statistics use.
    pub fn name(t: usize) -> &'static str {
        match t as u16 {
            PING => "ping",
            PONG => "pong",
            MEET => "meet",
            FAIL => "fail",
            PUBLISH => "publish",
            PUBLISHSHARD => "publishshard",
            FAILOVER_AUTH_REQUEST => "auth-req",
            FAILOVER_AUTH_ACK => "auth-ack",
            UPDATE => "update",
            MFSTART => "mfstart",
            MODULE => "module",
            _ => "unknown",
        }
    }
}

/// `mflags[0]` bits.
pub const MFLAG_PAUSED: u8 = 1 << 0;
pub const MFLAG_FORCEACK: u8 = 1 << 1;
pub const MFLAG_EXT_DATA: u8 = 1 << 2;

/// Ping extension types (0 in Redis 7.0; 1-3 added by 7.2).
pub const EXT_HOSTNAME: u16 = 0;
pub const EXT_HUMAN_NODENAME: u16 = 1;
pub const EXT_FORGOTTEN_NODE: u16 = 2;
pub const EXT_SHARDID: u16 = 3;

pub type Name = [u8; NAMELEN];
pub const NULL_NAME: Name = [0; NAMELEN];

/// A 16384-bit slot bitmap, bit `j` at byte `j/8`, bit `j%8` (as Redis's bitmapTestBit).
/// Shared when cloned (each message's header carries its sender's, see `State::build_header`);
/// a change copies it only while a clone lives.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotBitmap(Arc<[u8; SLOTS / 8]>);

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap(Arc::new([0; SLOTS / 8]))
    }
}

impl std::fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotBitmap({} slots)", self.count())
    }
}

impl SlotBitmap {
    pub fn get(&self, slot: usize) -> bool {
        self.0[slot / 8] & (1 << (slot & 7)) != 0
    }
    pub fn set(&mut self, slot: usize) {
        Arc::make_mut(&mut self.0)[slot / 8] |= 1 << (slot & 7);
    }
    pub fn clear(&mut self, slot: usize) {
        Arc::make_mut(&mut self.0)[slot / 8] &= !(1 << (slot & 7));
    }
    /// These slots but those of `other`.
    pub fn without(&self, other: &SlotBitmap) -> SlotBitmap {
        let mut bits = *self.0;
        for (b, o) in bits.iter_mut().zip(other.0.iter()) {
            *b &= !o;
        }
        SlotBitmap(Arc::new(bits))
    }
    /// The bitmap's bytes, as sent.
    pub fn bytes(&self) -> &[u8; SLOTS / 8] {
        &self.0
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }
    fn from_slice(b: &[u8]) -> Self {
        let mut bits = [0; SLOTS / 8];
        bits.copy_from_slice(&b[..SLOTS / 8]);
        SlotBitmap(Arc::new(bits))
    }
}

/// The header every message starts with (what a node says about itself).
#[derive(Clone, Debug)]
pub struct Header {
    pub mtype: u16,
    /// Gossip entries in a PING/PONG/MEET.
    pub count: u16,
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: Name,
    pub myslots: SlotBitmap,
    /// The sender's master, or [`NULL_NAME`].
    pub slaveof: Name,
    /// The announced IP (empty: take it from the socket).
    pub myip: String,
    pub extensions: u16,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    pub state: u8,
    pub mflags: [u8; 3],
}

impl Default for Header {
    fn default() -> Self {
        Header {
            mtype: 0,
            count: 0,
            port: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender: NULL_NAME,
            myslots: SlotBitmap::default(),
            slaveof: NULL_NAME,
            myip: String::new(),
            extensions: 0,
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }
}

/// One gossip entry: what the sender knows about another node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossip {
    pub name: Name,
    /// Seconds (Redis sends `ms / 1000`).
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

/// A ping extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ext {
    Hostname(Vec<u8>),
    HumanNodename(Vec<u8>),
    ForgottenNode {
        name: Name,
        ttl: u64,
    },
    ShardId(Name),
    /// A type this node does not know (ignored, as Redis does).
    Unknown(u16),
}

/// What follows the header.
#[derive(Clone, Debug)]
pub enum Body {
    Ping {
        gossip: Vec<Gossip>,
        exts: Vec<Ext>,
    },
    Fail {
        about: Name,
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    Update {
        config_epoch: u64,
        name: Name,
        slots: SlotBitmap,
    },
    Module {
        module_id: u64,
        mtype: u8,
        payload: Vec<u8>,
    },
    /// FAILOVER_AUTH_REQUEST / ACK, MFSTART, or a type Redis does not know.
    Empty,
}

#[derive(Clone, Debug)]
pub struct Msg {
    pub hdr: Header,
    pub body: Body,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn name_at(b: &[u8], at: usize) -> Name {
    b[at..at + NAMELEN].try_into().expect("40 bytes")
}
fn ip_at(b: &[u8], at: usize) -> String {
    String::from_utf8_lossy(c_str(&b[at..at + IPLEN])).into_owned()
}
fn put_ip(out: &mut [u8], ip: &str) {
    let n = ip.len().min(IPLEN - 1);
    out[..n].copy_from_slice(&ip.as_bytes()[..n]);
}

/// The total length a frame announces (its bytes 4..8), once 8 bytes are in.
pub fn frame_len(prefix: &[u8]) -> Option<usize> {
    (prefix.len() >= 8).then(|| be32(prefix, 4) as usize)
}

/// Whether the first 8 bytes are a plausible start (signature and minimum length), as Redis's
/// read handler checks before reading the rest; a link sending anything else is closed.
pub fn valid_start(prefix: &[u8]) -> bool {
    prefix.len() >= 8 && &prefix[..4] == b"RCmb" && be32(prefix, 4) as usize >= HDR_LEN
}

/// Why a frame was dropped (Redis logs these and keeps the link).
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Another protocol version, or too short to hold what its type needs: ignored silently.
    Ignored,
    /// A length that does not match the type (Redis logs it at warning level).
    Length {
        mtype: u16,
        got: usize,
        expected: usize,
    },
    Padding {
        mtype: u16,
        len: usize,
    },
    ExtOverflow {
        mtype: u16,
        total: usize,
    },
}

/// Decode one complete frame (`frame.len()` is its announced length).
pub fn decode(frame: &[u8]) -> Result<Msg, Invalid> {
    let totlen = frame.len();
    if totlen < HDR_LEN {
        return Err(Invalid::Ignored);
    }
    if be16(frame, 8) != PROTO_VER {
        return Err(Invalid::Ignored);
    }
    let mut myip = [0u8; IPLEN];
    myip.copy_from_slice(&frame[2168..2168 + IPLEN]);
    let hdr = Header {
        mtype: be16(frame, 12),
        count: be16(frame, 14),
        port: be16(frame, 10),
        current_epoch: be64(frame, 16),
        config_epoch: be64(frame, 24),
        offset: be64(frame, 32),
        sender: name_at(frame, 40),
        myslots: SlotBitmap::from_slice(&frame[80..80 + SLOTS / 8]),
        slaveof: name_at(frame, 2128),
        myip: String::from_utf8_lossy(c_str(&myip)).into_owned(),
        extensions: be16(frame, 2214),
        pport: be16(frame, 2246),
        cport: be16(frame, 2248),
        flags: be16(frame, 2250),
        state: frame[2252],
        mflags: [frame[2253], frame[2254], frame[2255]],
    };
    let data = &frame[HDR_LEN..];
    let mtype = hdr.mtype;
    let bad_len = |expected: usize| Invalid::Length { mtype, got: totlen, expected };
    let body = match mtype {
        types::PING | types::PONG | types::MEET => {
            let count = hdr.count as usize;
            let mut explen = HDR_LEN + GOSSIP_LEN * count;
            if explen > totlen {
                return Err(bad_len(explen));
            }
            let mut exts = Vec::new();
            if hdr.mflags[0] & MFLAG_EXT_DATA != 0 {
                let mut at = explen;
                for _ in 0..hdr.extensions {
                    if at + 8 > totlen {
                        return Err(Invalid::ExtOverflow { mtype, total: totlen });
                    }
                    let len = be32(frame, at) as usize;
                    if !len.is_multiple_of(8) || len < 8 {
                        return Err(Invalid::Padding { mtype, len });
                    }
                    if totlen - explen < len {
                        return Err(Invalid::ExtOverflow { mtype, total: totlen });
                    }
                    exts.push(decode_ext(be16(frame, at + 4), &frame[at + 8..at + len]));
                    explen += len;
                    at += len;
                }
            }
            if explen != totlen {
                return Err(bad_len(explen));
            }
            let gossip = (0..count).map(|i| decode_gossip(&data[i * GOSSIP_LEN..(i + 1) * GOSSIP_LEN])).collect();
            Body::Ping { gossip, exts }
        }
        types::FAIL => {
            if totlen != HDR_LEN + NAMELEN {
                return Err(bad_len(HDR_LEN + NAMELEN));
            }
            Body::Fail { about: name_at(data, 0) }
        }
        types::PUBLISH | types::PUBLISHSHARD => {
            if data.len() < 8 {
                return Err(bad_len(HDR_LEN + 8));
            }
            let clen = be32(data, 0) as usize;
            let mlen = be32(data, 4) as usize;
            let expected = HDR_LEN + 8 + clen + mlen;
            if totlen != expected {
                return Err(bad_len(expected));
            }
            Body::Publish { channel: data[8..8 + clen].to_vec(), message: data[8 + clen..8 + clen + mlen].to_vec() }
        }
        types::FAILOVER_AUTH_REQUEST | types::FAILOVER_AUTH_ACK | types::MFSTART => {
            if totlen != HDR_LEN {
                return Err(bad_len(HDR_LEN));
            }
            Body::Empty
        }
        types::UPDATE => {
            if totlen != HDR_LEN + UPDATE_BODY {
                return Err(bad_len(HDR_LEN + UPDATE_BODY));
            }
            Body::Update {
                config_epoch: be64(data, 0),
                name: name_at(data, 8),
                slots: SlotBitmap::from_slice(&data[8 + NAMELEN..]),
            }
        }
        types::MODULE => {
            if data.len() < 13 {
                return Err(bad_len(HDR_LEN + 13));
            }
            let len = be32(data, 8) as usize;
            let expected = HDR_LEN + 13 + len;
            if totlen != expected {
                return Err(bad_len(expected));
            }
            Body::Module {
                module_id: u64::from_ne_bytes(data[..8].try_into().expect("8 bytes")),
                mtype: data[12],
                payload: data[13..13 + len].to_vec(),
            }
        }
        // A type we do not know is assumed to be well formed.
        _ => Body::Empty,
    };
    Ok(Msg { hdr, body })
}

fn decode_gossip(g: &[u8]) -> Gossip {
    Gossip {
        name: name_at(g, 0),
        ping_sent: be32(g, 40),
        pong_received: be32(g, 44),
        ip: ip_at(g, 48),
        port: be16(g, 94),
        cport: be16(g, 96),
        flags: be16(g, 98),
        pport: be16(g, 100),
    }
}

fn decode_ext(t: u16, data: &[u8]) -> Ext {
    match t {
        EXT_HOSTNAME => Ext::Hostname(c_str(data).to_vec()),
        EXT_HUMAN_NODENAME => Ext::HumanNodename(c_str(data).to_vec()),
        EXT_FORGOTTEN_NODE if data.len() >= NAMELEN + 8 => {
            Ext::ForgottenNode { name: name_at(data, 0), ttl: be64(data, NAMELEN) }
        }
        EXT_SHARDID if data.len() >= NAMELEN => Ext::ShardId(name_at(data, 0)),
        other => Ext::Unknown(other),
    }
}

/// Write a header (the total length and count are fixed by [`encode`]).
fn encode_header(out: &mut Vec<u8>, h: &Header) {
    let start = out.len();
    out.resize(start + HDR_LEN, 0);
    let b = &mut out[start..];
    b[..4].copy_from_slice(b"RCmb");
    b[8..10].copy_from_slice(&PROTO_VER.to_be_bytes());
    b[10..12].copy_from_slice(&h.port.to_be_bytes());
    b[12..14].copy_from_slice(&h.mtype.to_be_bytes());
    b[14..16].copy_from_slice(&h.count.to_be_bytes());
    b[16..24].copy_from_slice(&h.current_epoch.to_be_bytes());
    b[24..32].copy_from_slice(&h.config_epoch.to_be_bytes());
    b[32..40].copy_from_slice(&h.offset.to_be_bytes());
    b[40..80].copy_from_slice(&h.sender);
    b[80..80 + SLOTS / 8].copy_from_slice(h.myslots.bytes());
    b[2128..2168].copy_from_slice(&h.slaveof);
    put_ip(&mut b[2168..2168 + IPLEN], &h.myip);
    b[2214..2216].copy_from_slice(&h.extensions.to_be_bytes());
    b[2246..2248].copy_from_slice(&h.pport.to_be_bytes());
    b[2248..2250].copy_from_slice(&h.cport.to_be_bytes());
    b[2250..2252].copy_from_slice(&h.flags.to_be_bytes());
    b[2252] = h.state;
    b[2253..2256].copy_from_slice(&h.mflags);
}

fn encode_gossip(out: &mut Vec<u8>, g: &Gossip) {
    let start = out.len();
    out.resize(start + GOSSIP_LEN, 0);
    let b = &mut out[start..];
    b[..40].copy_from_slice(&g.name);
    b[40..44].copy_from_slice(&g.ping_sent.to_be_bytes());
    b[44..48].copy_from_slice(&g.pong_received.to_be_bytes());
    put_ip(&mut b[48..48 + IPLEN], &g.ip);
    b[94..96].copy_from_slice(&g.port.to_be_bytes());
    b[96..98].copy_from_slice(&g.cport.to_be_bytes());
    b[98..100].copy_from_slice(&g.flags.to_be_bytes());
    b[100..102].copy_from_slice(&g.pport.to_be_bytes());
}

fn encode_ext(out: &mut Vec<u8>, e: &Ext) {
    let (t, mut data): (u16, Vec<u8>) = match e {
        Ext::Hostname(h) => (EXT_HOSTNAME, h.clone()),
        Ext::HumanNodename(h) => (EXT_HUMAN_NODENAME, h.clone()),
        Ext::ForgottenNode { name, ttl } => {
            let mut d = name.to_vec();
            d.extend_from_slice(&ttl.to_be_bytes());
            (EXT_FORGOTTEN_NODE, d)
        }
        Ext::ShardId(id) => (EXT_SHARDID, id.to_vec()),
        Ext::Unknown(_) => return,
    };
    if matches!(e, Ext::Hostname(_) | Ext::HumanNodename(_)) {
        // NUL-terminated, padded to 8 bytes.
        data.push(0);
    }
    let padded = data.len().div_ceil(8) * 8;
    data.resize(padded, 0);
    out.extend_from_slice(&((8 + padded) as u32).to_be_bytes());
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&data);
}

/// Encode a message. The header's `count`, `extensions` and the EXT_DATA flag are set from the
/// body; `totlen` is written last.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::with_capacity(HDR_LEN + 256);
    encode_into(&mut out, msg);
    out
}

/// [`encode`], appending to `out`.
pub fn encode_into(out: &mut Vec<u8>, msg: &Msg) {
    let start = out.len();
    let mut h = msg.hdr.clone();
    match &msg.body {
        Body::Ping { gossip, exts } => {
            h.count = gossip.len() as u16;
            let known: Vec<&Ext> = exts.iter().filter(|e| !matches!(e, Ext::Unknown(_))).collect();
            h.extensions = known.len() as u16;
            if !known.is_empty() {
                h.mflags[0] |= MFLAG_EXT_DATA;
            }
            encode_header(out, &h);
            for g in gossip {
                encode_gossip(out, g);
            }
            for e in known {
                encode_ext(out, e);
            }
        }
        Body::Fail { about } => {
            encode_header(out, &h);
            out.extend_from_slice(about);
        }
        Body::Publish { channel, message } => {
            encode_header(out, &h);
            out.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
        }
        Body::Update { config_epoch, name, slots } => {
            encode_header(out, &h);
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(slots.bytes());
        }
        Body::Module { module_id, mtype, payload } => {
            encode_header(out, &h);
            out.extend_from_slice(&module_id.to_ne_bytes());
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.push(*mtype);
            out.extend_from_slice(payload);
        }
        Body::Empty => encode_header(out, &h),
    }
    let len = (out.len() - start) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(c: u8) -> Name {
        [c; NAMELEN]
    }

    fn header(t: u16) -> Header {
        let mut myslots = SlotBitmap::default();
        myslots.set(0);
        myslots.set(16383);
        Header {
            mtype: t,
            port: 7000,
            cport: 17000,
            current_epoch: 5,
            config_epoch: 3,
            offset: 1234,
            sender: name(b'a'),
            myslots,
            myip: "127.0.0.1".into(),
            flags: 1,
            ..Default::default()
        }
    }

    #[test]
    fn header_layout_matches_redis_offsets() {
        let m = Msg { hdr: header(types::PING), body: Body::Ping { gossip: vec![], exts: vec![] } };
        let b = encode(&m);
        assert_eq!(b.len(), HDR_LEN);
        assert_eq!(&b[..4], b"RCmb");
        assert_eq!(be32(&b, 4), HDR_LEN as u32);
        assert_eq!(be16(&b, 8), 1);
        assert_eq!(be16(&b, 10), 7000);
        assert_eq!(be64(&b, 16), 5);
        assert_eq!(be64(&b, 24), 3);
        assert_eq!(be64(&b, 32), 1234);
        assert_eq!(b[40], b'a');
        // Slot 0 is bit 0 of the first bitmap byte, slot 16383 bit 7 of the last.
        assert_eq!(b[80], 1);
        assert_eq!(b[80 + 2047], 0x80);
        assert_eq!(&b[2168..2177], b"127.0.0.1");
        assert_eq!(be16(&b, 2248), 17000);
        assert_eq!(be16(&b, 2250), 1);
        assert_eq!(FULL_LEN, 4352);
    }

    #[test]
    fn ping_with_gossip_and_extensions_round_trips() {
        let g = Gossip {
            name: name(b'b'),
            ping_sent: 1,
            pong_received: 2,
            ip: "10.0.0.2".into(),
            port: 7001,
            cport: 17001,
            flags: 4,
            pport: 0,
        };
        let exts = vec![
            Ext::Hostname(b"host-1".to_vec()),
            Ext::ForgottenNode { name: name(b'c'), ttl: 60 },
            Ext::ShardId(name(b'd')),
        ];
        let m = Msg {
            hdr: header(types::PONG),
            body: Body::Ping { gossip: vec![g.clone(), g.clone()], exts: exts.clone() },
        };
        let b = encode(&m);
        // hostname: 8 + align8(7) = 16; forgotten: 8 + 48; shard id: 8 + 40.
        assert_eq!(b.len(), HDR_LEN + 2 * GOSSIP_LEN + 16 + 56 + 48);
        let d = decode(&b).expect("valid");
        assert_eq!(d.hdr.count, 2);
        assert_eq!(d.hdr.extensions, 3);
        assert_eq!(d.hdr.mflags[0] & MFLAG_EXT_DATA, MFLAG_EXT_DATA);
        match d.body {
            Body::Ping { gossip, exts: e } => {
                assert_eq!(gossip, vec![g.clone(), g]);
                assert_eq!(e, exts);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fixed_size_bodies_and_length_checks() {
        let fail = encode(&Msg { hdr: header(types::FAIL), body: Body::Fail { about: name(b'f') } });
        assert_eq!(fail.len(), 2296);
        assert!(matches!(decode(&fail).expect("fail").body, Body::Fail { about } if about == name(b'f')));
        let mut slots = SlotBitmap::default();
        slots.set(42);
        let upd = encode(&Msg {
            hdr: header(types::UPDATE),
            body: Body::Update { config_epoch: 9, name: name(b'u'), slots: slots.clone() },
        });
        assert_eq!(upd.len(), FULL_LEN);
        match decode(&upd).expect("update").body {
            Body::Update { config_epoch, slots: s, .. } => {
                assert_eq!(config_epoch, 9);
                assert_eq!(s, slots);
            }
            other => panic!("{other:?}"),
        }
        let publ = encode(&Msg {
            hdr: header(types::PUBLISH),
            body: Body::Publish { channel: b"ch".to_vec(), message: b"hello".to_vec() },
        });
        assert_eq!(publ.len(), HDR_LEN + 8 + 7);
        let auth = encode(&Msg { hdr: header(types::FAILOVER_AUTH_REQUEST), body: Body::Empty });
        assert_eq!(auth.len(), HDR_LEN);
        // A FAIL with a wrong length is refused.
        let mut short = fail.clone();
        short.truncate(2290);
        short[4..8].copy_from_slice(&2290u32.to_be_bytes());
        assert!(matches!(decode(&short), Err(Invalid::Length { .. })));
        // Extensions whose length is not a multiple of 8 are refused.
        let mut bad = encode(&Msg {
            hdr: header(types::PING),
            body: Body::Ping { gossip: vec![], exts: vec![Ext::Hostname(b"h".to_vec())] },
        });
        bad[HDR_LEN..HDR_LEN + 4].copy_from_slice(&12u32.to_be_bytes());
        assert!(matches!(decode(&bad), Err(Invalid::Padding { .. })));
        // Another protocol version is ignored.
        let mut v2 = auth.clone();
        v2[8..10].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(decode(&v2).err(), Some(Invalid::Ignored));
        assert!(valid_start(&auth[..8]));
        assert!(!valid_start(b"RCmx\0\0\x08\xd0"));
    }
}
