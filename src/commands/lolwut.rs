//! LOLWUT VERSION 5 (and 6): computer art drawn on a pixel canvas and printed with Braille
//! characters (two by four pixels each), after Georg Nees's "Schotter": rows of squares that
//! rotate and drift more and more towards the bottom.

use bytes::Bytes;

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<bool>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, height, pixels: vec![false; width * height] }
    }

    fn set(&mut self, x: i64, y: i64) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = true;
        }
    }

    fn get(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.pixels[y * self.width + x]
    }

    /// Bresenham's line.
    fn line(&mut self, mut x1: i64, mut y1: i64, x2: i64, y2: i64) {
        let dx = (x2 - x1).abs();
        let dy = (y2 - y1).abs();
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), rotated by `angle` radians.
    fn square(&mut self, x: f64, y: f64, size: f64, angle: f64) {
        let r = size / 2.0 * std::f64::consts::SQRT_2;
        let corners: Vec<(i64, i64)> = (0..4)
            .map(|k| {
                let a = angle + std::f64::consts::FRAC_PI_4 + k as f64 * std::f64::consts::FRAC_PI_2;
                ((x + a.sin() * r) as i64, (y + a.cos() * r) as i64)
            })
            .collect();
        for k in 0..4 {
            let (a, b) = (corners[k], corners[(k + 1) % 4]);
            self.line(a.0, a.1, b.0, b.1);
        }
    }

    /// Each 2x4 block of pixels as one Braille character.
    fn render(&self) -> String {
        let mut out = String::new();
        for y in (0..self.height).step_by(4) {
            for x in (0..self.width).step_by(2) {
                let mut bits = 0u32;
                let dots = [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 0, 3), (1, 1, 4), (1, 2, 5), (0, 3, 6), (1, 3, 7)];
                for (dx, dy, bit) in dots {
                    if self.get(x + dx, y + dy) {
                        bits |= 1 << bit;
                    }
                }
                out.push(char::from_u32(0x2800 + bits).unwrap_or(' '));
            }
            out.push('\n');
        }
        out
    }
}

/// LOLWUT [VERSION 5|6] [columns] [squares per row] [squares per column].
pub fn render(version: &str, args: &[Bytes]) -> String {
    let rest = if args.first().is_some_and(|a| a.eq_ignore_ascii_case(b"version")) {
        &args[2.min(args.len())..]
    } else {
        args
    };
    let nums: Vec<i64> = rest.iter().filter_map(|a| crate::util::num::parse_i64(a)).collect();
    let cols = nums.first().copied().unwrap_or(66).clamp(1, 1000) as usize;
    let per_row = nums.get(1).copied().unwrap_or(8).clamp(1, 200) as usize;
    let per_col = nums.get(2).copied().unwrap_or(12).clamp(1, 200) as usize;
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f64 / per_row as f64;
    let height = (side * per_col as f64) as usize + padding * 2;
    let mut canvas = Canvas::new(width, height);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = x as f64 * side + side / 2.0 + padding as f64;
            let mut sy = y as f64 * side + side / 2.0 + padding as f64;
            let mut angle = 0.0;
            if y > 1 {
                let r = || {
                    let v = rand::random::<f64>() / per_col as f64 * y as f64;
                    if rand::random::<bool>() {
                        -v
                    } else {
                        v
                    }
                };
                angle = r();
                sx += r() * side / 3.0;
                sy += r() * side / 3.0;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    let mut out = canvas.render();
    out.push_str(&format!("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {}\n", crate::REDIS_VERSION));
    let _ = version;
    out
}
