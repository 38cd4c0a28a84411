//! Geospatial indexes (Redis's geo.c, geohash.c and geohash_helper.c), independent of the
//! server: a geo set is a sorted set whose scores are 52-bit geohashes. This module finds the
//! members inside a circle or box ([`search`]), orders them as Redis does ([`sort_points`]) and
//! formats distances and coordinates with Redis's exact digits.
//!
//! - `hash`: geohash cells, encoding/decoding, neighbours, GEOHASH strings.
//! - `area`: query shapes, the cells covering them, haversine distances.
//! - `sort`: Redis's partial quicksort, used when COUNT keeps fewer results than were found.

pub mod area;
pub mod hash;

use std::cmp::Ordering;

pub use area::{Shape, ShapeKind};

use crate::types::ZSetValue;

/// A member found by a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub lon: f64,
    pub lat: f64,
    /// Distance from the search centre, in meters.
    pub dist: f64,
    pub score: f64,
    pub member: Vec<u8>,
}

/// The members of `z` inside `shape`, in the order Redis collects them (cell by cell, by
/// score inside a cell). With `limit` > 0 (COUNT ... ANY) the search stops once that many
/// were found.
pub fn search(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<Point> {
    let areas = area::areas_by_shape(shape);
    let cells = areas.cells();
    let mut out = Vec::new();
    let full = |out: &Vec<Point>| limit > 0 && out.len() >= limit;
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // With huge radii neighbours can repeat: skip a cell equal to the last one scanned
        // (Redis does not compare with the centre cell).
        if let Some(j) = last.filter(|&j| j > 0) {
            if cells[j] == *cell {
                continue;
            }
        }
        if full(&out) {
            break;
        }
        let min = cell.align52() as f64;
        let max = hash::HashBits { bits: cell.bits.wrapping_add(1), step: cell.step }.align52() as f64;
        z.walk_after(
            |_, s| s < min,
            |m, s| {
                if s >= max {
                    return false;
                }
                let xy = hash::decode_score(s);
                if let Some(dist) = area::within(shape, xy) {
                    out.push(Point { lon: xy[0], lat: xy[1], dist, score: s, member: m.to_vec() });
                }
                !full(&out)
            },
        );
        last = Some(i);
    }
    out
}

/// Result order of a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Order the points by distance so that the first `returned` are the right ones, in order
/// (all of them when `returned` is their number), exactly as Redis would, ties included.
pub fn sort_points(points: &mut [Point], order: Order, returned: usize) {
    let asc = |a: &Point, b: &Point| {
        if a.dist > b.dist {
            Ordering::Greater
        } else if a.dist == b.dist {
            Ordering::Equal
        } else {
            Ordering::Less
        }
    };
    let cmp = |a: &Point, b: &Point| match order {
        Order::Asc => asc(a, b),
        Order::Desc => asc(a, b).reverse(),
    };
    if returned >= points.len() {
        points.sort_by(cmp);
    } else if returned > 0 {
        crate::util::pqsort::pqsort(points, 0, returned as i64 - 1, cmp);
    }
}

/// A distance as Redis replies it: fixed point with 4 decimals, rounded half to even
/// (`fixedpoint_d2string(.., 4)`).
pub fn format_distance(d: f64, out: &mut Vec<u8>) {
    if d == 0.0 {
        out.extend_from_slice(b"0.0000");
        return;
    }
    let scaled = (d * 10000.0).round_ties_even();
    // llrint: out-of-range values give LLONG_MIN.
    const TWO63: f64 = (1u64 << 63) as f64;
    let v: i64 = if (-TWO63..TWO63).contains(&scaled) { scaled as i64 } else { i64::MIN };
    if v < 0 {
        out.push(b'-');
    }
    let u = v.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(u / 10000).as_bytes());
    out.push(b'.');
    let frac = u % 10000;
    out.extend_from_slice(format!("{frac:04}").as_bytes());
}

/// A coordinate as Redis replies it (addReplyHumanLongDouble: `%.17Lf` of the value, trailing
/// zeros removed).
pub fn format_coord(d: f64, out: &mut Vec<u8>) {
    crate::util::num::LongDouble::from_f64(d).format_human(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(d: f64) -> String {
        let mut v = Vec::new();
        format_distance(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn distances_have_four_decimals() {
        assert_eq!(fmt(0.0), "0.0000");
        assert_eq!(fmt(0.00001), "0.0000");
        assert_eq!(fmt(0.0123), "0.0123");
        assert_eq!(fmt(166274.15156960033), "166274.1516");
        assert_eq!(fmt(1.0), "1.0000");
    }

    #[test]
    fn coordinates_print_like_redis() {
        let [lon, lat] = hash::decode_score(3479099956230698.0);
        let mut v = Vec::new();
        format_coord(lon, &mut v);
        v.push(b' ');
        format_coord(lat, &mut v);
        assert_eq!(String::from_utf8(v).unwrap(), "13.36138933897018433 38.11555639549629859");
    }
}
