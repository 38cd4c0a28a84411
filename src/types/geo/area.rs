//! Search areas and distances (as Redis's geohash_helper.c): the shape of a query (a circle
//! or an axis-aligned box around a point), its bounding box, the nine cells (centre plus
//! neighbours) that cover it, and haversine distances on Redis's Earth radius. The formulas
//! and their order of operations follow Redis, so distances agree to the last bit.

use super::hash::{self, Area, HashBits, Neighbors, WGS84_LAT, WGS84_LONG};

/// Earth's quadratic mean radius for WGS-84, as Redis uses it.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// What a query covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShapeKind {
    /// BYRADIUS: a radius in the query's unit.
    Radius(f64),
    /// BYBOX: width and height in the query's unit.
    Box { width: f64, height: f64 },
}

/// A query shape around `xy` (`[longitude, latitude]`); `conversion` is the number of meters
/// in the query's unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub kind: ShapeKind,
    pub xy: [f64; 2],
    pub conversion: f64,
}

/// The cells to scan for a query: the centre cell and its neighbours, zero where a neighbour
/// cannot hold a match.
#[derive(Clone, Copy, Debug)]
pub struct Areas {
    pub hash: HashBits,
    pub area: Area,
    pub neighbors: Neighbors,
}

impl Areas {
    /// The cells in the order Redis scans them: centre, N, S, E, W, NE, NW, SE, SW.
    pub fn cells(&self) -> [HashBits; 9] {
        let n = &self.neighbors;
        [self.hash, n.north, n.south, n.east, n.west, n.north_east, n.north_west, n.south_east, n.south_west]
    }
}

/// The cell precision for a search radius (Redis's geohashEstimateStepsByRadius).
pub fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The bounding box of a shape: `[min_lon, min_lat, max_lon, max_lat]` (Redis's
/// geohashBoundingBox; the longitude span is taken at the edge farther from the equator).
pub fn bounding_box(shape: &Shape) -> [f64; 4] {
    let [longitude, latitude] = shape.xy;
    let (height, width) = match shape.kind {
        ShapeKind::Radius(r) => (shape.conversion * r, shape.conversion * r),
        ShapeKind::Box { width, height } => (shape.conversion * (height / 2.0), shape.conversion * (width / 2.0)),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let delta = if latitude < 0.0 { long_delta_bottom } else { long_delta_top };
    [longitude - delta, latitude - lat_delta, longitude + delta, latitude + lat_delta]
}

fn decode(h: HashBits) -> Option<Area> {
    hash::decode(WGS84_LONG, WGS84_LAT, h)
}

/// The cells covering a shape (Redis's geohashCalculateAreasByShapeWGS84). The shape's centre
/// must be a valid point.
pub fn areas_by_shape(shape: &Shape) -> Areas {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let [longitude, latitude] = shape.xy;
    let radius_meters = match shape.kind {
        ShapeKind::Radius(r) => r,
        ShapeKind::Box { width, height } => ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, latitude);
    let cell = |steps: u8| {
        let h = hash::encode(WGS84_LONG, WGS84_LAT, longitude, latitude, steps).unwrap_or_default();
        (h, hash::neighbors(h), decode(h))
    };
    let (mut h, mut neighbors, mut area) = cell(steps);
    // A neighbour too close to the search area's edge means the cells are too small.
    let decrease = {
        let edge = |c: HashBits| decode(c);
        let too_small = |a: Option<Area>, f: &dyn Fn(&Area) -> bool| a.as_ref().is_some_and(f);
        too_small(edge(neighbors.north), &|a| a.latitude.max < max_lat)
            || too_small(edge(neighbors.south), &|a| a.latitude.min > min_lat)
            || too_small(edge(neighbors.east), &|a| a.longitude.max < max_lon)
            || too_small(edge(neighbors.west), &|a| a.longitude.min > min_lon)
    };
    if steps > 1 && decrease {
        steps -= 1;
        (h, neighbors, area) = cell(steps);
    }
    let area = area.unwrap_or(Area {
        hash: h,
        longitude: hash::Range { min: 0.0, max: 0.0 },
        latitude: hash::Range { min: 0.0, max: 0.0 },
    });
    // Drop the neighbours that lie wholly outside the bounding box.
    if steps >= 2 {
        let n = &mut neighbors;
        if area.latitude.min < min_lat {
            (n.south, n.south_west, n.south_east) = (HashBits::ZERO, HashBits::ZERO, HashBits::ZERO);
        }
        if area.latitude.max > max_lat {
            (n.north, n.north_east, n.north_west) = (HashBits::ZERO, HashBits::ZERO, HashBits::ZERO);
        }
        if area.longitude.min < min_lon {
            (n.west, n.south_west, n.north_west) = (HashBits::ZERO, HashBits::ZERO, HashBits::ZERO);
        }
        if area.longitude.max > max_lon {
            (n.east, n.south_east, n.north_east) = (HashBits::ZERO, HashBits::ZERO, HashBits::ZERO);
        }
    }
    Areas { hash: h, area, neighbors }
}

/// Distance along a meridian between two latitudes.
pub fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Haversine great-circle distance in meters (Redis's geohashGetDistance).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// Whether the point `xy` is inside the shape, and its distance (meters) from the centre
/// (Redis's geoWithinShape once the point is decoded).
pub fn within(shape: &Shape, xy: [f64; 2]) -> Option<f64> {
    let [x1, y1] = shape.xy;
    let [x2, y2] = xy;
    match shape.kind {
        ShapeKind::Radius(r) => {
            let d = distance(x1, y1, x2, y2);
            (d <= r * shape.conversion).then_some(d)
        }
        ShapeKind::Box { width, height } => {
            let (width_m, height_m) = (width * shape.conversion, height * shape.conversion);
            if lat_distance(y2, y1) > height_m / 2.0 {
                return None;
            }
            if distance(x2, y2, x1, y2) > width_m / 2.0 {
                return None;
            }
            Some(distance(x1, y1, x2, y2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_catania_distance() {
        // GEODIST Sicily Palermo Catania in Redis: 166274.1516 (meters, 4 decimals).
        let p = hash::decode_score(3479099956230698.0);
        let c = hash::decode_score(3479447370796909.0);
        let d = distance(p[0], p[1], c[0], c[1]);
        assert_eq!(format!("{:.4}", d), "166274.1516");
    }

    #[test]
    fn steps_by_radius() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
        assert_eq!(estimate_steps_by_radius(1000.0, 0.0), 14);
        assert_eq!(estimate_steps_by_radius(1000.0, 70.0), 13);
        assert_eq!(estimate_steps_by_radius(1000.0, -85.0), 12);
    }

    #[test]
    fn areas_exclude_far_neighbours() {
        let shape = Shape { kind: ShapeKind::Radius(1.0), xy: [13.361389, 38.115556], conversion: 1.0 };
        let a = areas_by_shape(&shape);
        assert!(!a.hash.is_zero());
        let live = a.cells().iter().filter(|c| !c.is_zero()).count();
        assert!((1..=9).contains(&live));
    }
}
