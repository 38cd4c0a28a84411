//! Geo commands (Redis's geo.c): GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH,
//! GEOSEARCHSTORE and the deprecated GEORADIUS / GEORADIUSBYMEMBER (and their _RO variants).
//! A geo set is a sorted set whose scores are 52-bit geohashes; the geometry lives in
//! `types::geo`. GEOADD is Redis's ZADD underneath and propagates as that ZADD; the store
//! variants propagate as themselves (they are deterministic).

use bytes::Bytes;

use super::args;
use super::bitmaps::kw;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify as ev;
use crate::protocol::ReplySink;
use crate::types::geo::{self, hash, Order, Point, Shape, ShapeKind};
use crate::types::zset::Limits;
use crate::types::{Value, ZSetValue};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", geoadd),
    CommandSpec::new("geodist", geodist),
    CommandSpec::new("geohash", geohash),
    CommandSpec::new("geopos", geopos),
    CommandSpec::new("georadius", georadius).getkeys(super::key_specs::procs::georadius),
    CommandSpec::new("georadius_ro", georadius_ro),
    CommandSpec::new("georadiusbymember", georadiusbymember).getkeys(super::key_specs::procs::georadius),
    CommandSpec::new("georadiusbymember_ro", georadiusbymember_ro),
    CommandSpec::new("geosearch", geosearch),
    CommandSpec::new("geosearchstore", geosearchstore),
];

// ---------------------------------------------------------------------------
// Argument helpers (Redis's extract*OrReply)
// ---------------------------------------------------------------------------

/// A longitude/latitude pair within the Web Mercator limits.
fn lonlat(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], CmdError> {
    let xy = [args::float(lon)?, args::float(lat)?];
    if !(hash::LONG_MIN..=hash::LONG_MAX).contains(&xy[0]) || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&xy[1]) {
        return Err(CmdError::new(format!("-ERR invalid longitude,latitude pair {:.6},{:.6}", xy[0], xy[1])));
    }
    Ok(xy)
}

/// Meters per unit (m, km, ft, mi).
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)]
        .into_iter()
        .find(|(u, _)| kw(arg, u))
        .map(|(_, c)| c)
        .ok_or_else(|| CmdError::new("unsupported unit provided. please use M, KM, FT, MI"))
}

/// `<radius> <unit>`: the radius and meters per unit.
fn radius(r: &[u8], u: &[u8]) -> Result<(f64, f64), CmdError> {
    let d = args::float(r).map_err(|_| CmdError::new("need numeric radius"))?;
    if d < 0.0 {
        return Err(CmdError::new("radius cannot be negative"));
    }
    Ok((d, unit(u)?))
}

/// `<width> <height> <unit>`.
fn boxed(w: &[u8], h: &[u8], u: &[u8]) -> Result<(f64, f64, f64), CmdError> {
    let w = args::float(w).map_err(|_| CmdError::new("need numeric width"))?;
    let h = args::float(h).map_err(|_| CmdError::new("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::new("height or width cannot be negative"));
    }
    Ok((w, h, unit(u)?))
}

/// The position of a member (Redis's longLatFromMember).
fn member_xy(z: &ZSetValue, member: &[u8]) -> Result<[f64; 2], CmdError> {
    z.score(member).map(hash::decode_score).ok_or_else(|| CmdError::new("could not decode requested zset member"))
}

/// The source sorted set of a geo read: None if missing, WRONGTYPE if not a sorted set.
fn lookup<'d>(db: &'d mut crate::keyspace::Db, key: &[u8]) -> Result<Option<&'d ZSetValue>, CmdError> {
    Ok(db.read::<ZSetValue>(key)?)
}

/// A coordinate reply (addReplyHumanLongDouble): a bulk string in RESP2, a double in RESP3.
fn reply_coord(r: &mut ReplySink, d: f64) {
    let mut s = Vec::with_capacity(24);
    geo::format_coord(d, &mut s);
    if r.is_resp3() {
        r.raw(b",");
        r.raw(&s);
        r.raw(b"\r\n");
    } else {
        r.bulk(&s);
    }
}

fn reply_distance(r: &mut ReplySink, d: f64) {
    let mut s = Vec::with_capacity(24);
    geo::format_distance(d, &mut s);
    r.bulk(&s);
}

// ---------------------------------------------------------------------------
// GEOADD GEODIST GEOHASH GEOPOS
// ---------------------------------------------------------------------------

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: a ZADD of the encoded points.
fn geoadd(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut idx = 2;
    while idx < args.len() {
        let a = &args[idx][..];
        if kw(a, "nx") {
            nx = true;
        } else if kw(a, "xx") {
            xx = true;
        } else if kw(a, "ch") {
            ch = true;
        } else {
            break;
        }
        idx += 1;
    }
    let n = (args.len() - idx) / 3;
    if !(args.len() - idx).is_multiple_of(3) || (xx && nx) || n == 0 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let mut scores = Vec::with_capacity(n);
    for i in 0..n {
        let xy = lonlat(&args[idx + 3 * i], &args[idx + 3 * i + 1])?;
        scores.push(hash::encode_score(xy[0], xy[1]).expect("validated coordinates encode"));
    }
    let lim = limits(ctx);
    let exists = match ctx.db.peek(key) {
        Some(e) => {
            e.value.kind::<ZSetValue>()?;
            true
        }
        None => false,
    };
    let (mut added, mut updated) = (0i64, 0i64);
    if exists || !xx {
        let (e, _) = ctx.db.get_or_insert_with(key, || Value::ZSet(ZSetValue::new()));
        let Value::ZSet(z) = &mut e.value else { unreachable!("type checked above") };
        for (i, &bits) in scores.iter().enumerate() {
            let member = &args[idx + 3 * i + 2][..];
            let score = bits as f64;
            match z.score(member) {
                Some(cur) => {
                    if !nx && cur != score {
                        z.insert(member, score, lim);
                        updated += 1;
                    }
                }
                None => {
                    if !xx {
                        z.insert(member, score, lim);
                        added += 1;
                    }
                }
            }
        }
    }
    if added + updated > 0 {
        ctx.db.touch_dirty((added + updated) as u64);
        ctx.db.notify(ev::ZSET, "zadd", key);
        // Redis runs GEOADD as ZADD key [options] score member ..., which is what replicates.
        if ctx.db.propagating() {
            let mut argv = Vec::with_capacity(idx + 2 * n);
            argv.push(Bytes::from_static(b"zadd"));
            argv.extend(args[1..idx].iter().cloned());
            for (i, bits) in scores.iter().enumerate() {
                argv.push(Bytes::from(bits.to_string()));
                argv.push(args[idx + 3 * i + 2].clone());
            }
            ctx.db.propagate_effect(argv);
        }
    }
    ctx.reply.int(if ch { added + updated } else { added });
    Ok(())
}

fn limits(ctx: &Ctx) -> Limits {
    let c = ctx.server.config.load();
    Limits { max_entries: c.zset_max_listpack_entries as usize, max_value: c.zset_max_listpack_value as usize }
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
fn geodist(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let to_meter = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CmdError::new(errors::SYNTAX)),
    };
    let Some(z) = lookup(ctx.db, &args[1])? else {
        ctx.reply.null();
        return Ok(());
    };
    match (z.score(&args[2]), z.score(&args[3])) {
        (Some(a), Some(b)) => {
            let [x1, y1] = hash::decode_score(a);
            let [x2, y2] = hash::decode_score(b);
            reply_distance(ctx.reply, geo::area::distance(x1, y1, x2, y2) / to_meter);
        }
        _ => ctx.reply.null(),
    }
    Ok(())
}

/// GEOHASH key [member ...]
fn geohash(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let z = lookup(ctx.db, &args[1])?;
    ctx.reply.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.reply.bulk(&hash::geohash_string(s)),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// GEOPOS key [member ...]
fn geopos(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let z = lookup(ctx.db, &args[1])?;
    ctx.reply.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => {
                let [lon, lat] = hash::decode_score(s);
                ctx.reply.array(2);
                reply_coord(ctx.reply, lon);
                reply_coord(ctx.reply, lat);
            }
            None => ctx.reply.null_array(),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// GEOSEARCH and the GEORADIUS family (Redis's georadiusGeneric)
// ---------------------------------------------------------------------------

/// Search around coordinates given as arguments 2 and 3 (GEORADIUS).
const RADIUS_COORDS: u32 = 1 << 0;
/// Search around the member given as argument 2 (GEORADIUSBYMEMBER).
const RADIUS_MEMBER: u32 = 1 << 1;
/// STORE / STOREDIST are not accepted (the _RO variants).
const RADIUS_NOSTORE: u32 = 1 << 2;
/// GEOSEARCH's arguments (FROM... / BY...).
const GEOSEARCH: u32 = 1 << 3;
/// GEOSEARCHSTORE: the destination is argument 1; STOREDIST is a flag.
const GEOSEARCHSTORE: u32 = 1 << 4;

fn georadius(ctx: &mut Ctx) -> CmdResult {
    georadius_generic(ctx, 1, RADIUS_COORDS)
}

fn georadiusbymember(ctx: &mut Ctx) -> CmdResult {
    georadius_generic(ctx, 1, RADIUS_MEMBER)
}

fn georadius_ro(ctx: &mut Ctx) -> CmdResult {
    georadius_generic(ctx, 1, RADIUS_COORDS | RADIUS_NOSTORE)
}

fn georadiusbymember_ro(ctx: &mut Ctx) -> CmdResult {
    georadius_generic(ctx, 1, RADIUS_MEMBER | RADIUS_NOSTORE)
}

fn geosearch(ctx: &mut Ctx) -> CmdResult {
    georadius_generic(ctx, 1, GEOSEARCH)
}

fn geosearchstore(ctx: &mut Ctx) -> CmdResult {
    georadius_generic(ctx, 2, GEOSEARCH | GEOSEARCHSTORE)
}

/// Everything a search call asked for, once parsed.
struct Query {
    /// Centre and shape (`kind` is only meaningful once a BY... was seen).
    shape: Shape,
    store: Option<Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    order: Option<Order>,
    any: bool,
    /// 0: no COUNT.
    count: i64,
}

/// Parse the arguments in Redis's order (its errors come out in the same order). `z` is the
/// source, already looked up: members are resolved while parsing, as Redis does.
fn parse_query(args: &[Bytes], src_idx: usize, flags: u32, z: Option<&ZSetValue>) -> Result<Query, CmdError> {
    let mut q = Query {
        shape: Shape { kind: ShapeKind::Radius(0.0), xy: [0.0, 0.0], conversion: 0.0 },
        store: None,
        storedist: false,
        withdist: false,
        withhash: false,
        withcoord: false,
        order: None,
        any: false,
        count: 0,
    };
    let base = if flags & RADIUS_COORDS != 0 {
        q.shape.xy = lonlat(&args[2], &args[3])?;
        let (r, conv) = radius(&args[4], &args[5])?;
        (q.shape.kind, q.shape.conversion) = (ShapeKind::Radius(r), conv);
        6
    } else if flags & RADIUS_MEMBER != 0 {
        // Without a source Redis skips the member and the radius, but still parses options.
        if let Some(z) = z {
            q.shape.xy = member_xy(z, &args[2])?;
            let (r, conv) = radius(&args[3], &args[4])?;
            (q.shape.kind, q.shape.conversion) = (ShapeKind::Radius(r), conv);
        }
        5
    } else {
        if flags & GEOSEARCHSTORE != 0 {
            q.store = Some(args[1].clone());
        }
        src_idx + 1
    };
    let search = flags & GEOSEARCH != 0;
    let can_store = flags & RADIUS_NOSTORE == 0 && !search;
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let rest = &args[base.min(args.len())..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i][..];
        let left = rest.len() - i - 1;
        if kw(a, "withdist") {
            q.withdist = true;
        } else if kw(a, "withhash") {
            q.withhash = true;
        } else if kw(a, "withcoord") {
            q.withcoord = true;
        } else if kw(a, "any") {
            q.any = true;
        } else if kw(a, "asc") {
            q.order = Some(Order::Asc);
        } else if kw(a, "desc") {
            q.order = Some(Order::Desc);
        } else if kw(a, "count") && left >= 1 {
            q.count = args::int(&rest[i + 1])?;
            if q.count <= 0 {
                return Err(CmdError::new("COUNT must be > 0"));
            }
            i += 1;
        } else if (kw(a, "store") || kw(a, "storedist")) && left >= 1 && can_store {
            q.store = Some(rest[i + 1].clone());
            q.storedist = kw(a, "storedist");
            i += 1;
        } else if kw(a, "storedist") && flags & GEOSEARCHSTORE != 0 {
            q.storedist = true;
        } else if kw(a, "frommember") && left >= 1 && search && !fromloc {
            if let Some(z) = z {
                q.shape.xy = member_xy(z, &rest[i + 1])?;
            }
            frommember = true;
            i += 1;
        } else if kw(a, "fromlonlat") && left >= 2 && search && !frommember {
            q.shape.xy = lonlat(&rest[i + 1], &rest[i + 2])?;
            fromloc = true;
            i += 2;
        } else if kw(a, "byradius") && left >= 2 && search && !bybox {
            let (r, conv) = radius(&rest[i + 1], &rest[i + 2])?;
            (q.shape.kind, q.shape.conversion) = (ShapeKind::Radius(r), conv);
            byradius = true;
            i += 2;
        } else if kw(a, "bybox") && left >= 3 && search && !byradius {
            let (width, height, conv) = boxed(&rest[i + 1], &rest[i + 2], &rest[i + 3])?;
            (q.shape.kind, q.shape.conversion) = (ShapeKind::Box { width, height }, conv);
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        i += 1;
    }
    if q.store.is_some() && (q.withdist || q.withhash || q.withcoord) {
        let what = if flags & GEOSEARCHSTORE != 0 { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(CmdError::new(format!("{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let name = || args::text(&args[0]);
    if search && !(frommember || fromloc) {
        return Err(CmdError::new(format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {}", name())));
    }
    if search && !(byradius || bybox) {
        return Err(CmdError::new(format!("exactly one of BYRADIUS and BYBOX can be specified for {}", name())));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::new("the ANY argument requires COUNT argument"));
    }
    Ok(q)
}

fn georadius_generic(ctx: &mut Ctx, src_idx: usize, flags: u32) -> CmdResult {
    let args = ctx.args;
    let z = lookup(ctx.db, &args[src_idx])?;
    let q = parse_query(args, src_idx, flags, z)?;
    let Some(z) = z else {
        match &q.store {
            Some(dst) => {
                if ctx.db.delete(dst) {
                    ctx.db.notify(ev::GENERIC, "del", dst);
                    ctx.db.touch_dirty(1);
                }
                ctx.reply.int(0);
            }
            None => ctx.reply.array(0),
        }
        return Ok(());
    };
    // COUNT without an order means the nearest ones (unless ANY: the first found).
    let order = q.order.or((q.count != 0 && !q.any).then_some(Order::Asc));
    let mut points = geo::search(z, &q.shape, if q.any { q.count as usize } else { 0 });
    if points.is_empty() && q.store.is_none() {
        ctx.reply.array(0);
        return Ok(());
    }
    let returned = if q.count == 0 || (points.len() as i64) < q.count { points.len() } else { q.count as usize };
    if let Some(order) = order {
        geo::sort_points(&mut points, order, returned);
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= q.shape.conversion;
    }
    match q.store {
        None => reply_points(ctx.reply, &points, &q),
        Some(dst) => store_points(ctx, &dst, points, q.storedist, flags & GEOSEARCH != 0),
    }
    Ok(())
}

fn reply_points(r: &mut ReplySink, points: &[Point], q: &Query) {
    let options = usize::from(q.withdist) + usize::from(q.withhash) + usize::from(q.withcoord);
    r.array(points.len());
    for p in points {
        if options > 0 {
            r.array(options + 1);
        }
        r.bulk(&p.member);
        if q.withdist {
            reply_distance(r, p.dist);
        }
        if q.withhash {
            r.int(p.score as i64);
        }
        if q.withcoord {
            r.array(2);
            reply_coord(r, p.lon);
            reply_coord(r, p.lat);
        }
    }
}

fn store_points(ctx: &mut Ctx, dst: &[u8], points: Vec<Point>, storedist: bool, search: bool) {
    let n = points.len();
    if n > 0 {
        let lim = limits(ctx);
        let mut z = ZSetValue::new_skiplist();
        for p in points {
            z.insert(&p.member, if storedist { p.dist } else { p.score }, lim);
        }
        z.shrink_if_fits(lim);
        ctx.db.set(dst, Value::ZSet(z), false);
        ctx.db.notify(ev::ZSET, if search { "geosearchstore" } else { "georadiusstore" }, dst);
        ctx.db.touch_dirty(n as u64);
    } else if ctx.db.delete(dst) {
        ctx.db.notify(ev::GENERIC, "del", dst);
        ctx.db.touch_dirty(1);
    }
    ctx.reply.int(n as i64);
}
