//! LOLWUT VERSION 5: computer art drawn on a pixel canvas and printed with Braille characters
//! (two by four pixels each), after Georg Nees's "Schotter": rows of squares that rotate and
//! drift more and more towards the bottom. (VERSION 6 draws it too; Redis's own version 6, an
//! ANSI-coloured cityscape, is not implemented.)

use bytes::Bytes;

use super::{args, CmdError};

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

    /// A square of side `size` centred on (x, y), rotated by `angle` radians, computed as
    /// Redis's lwDrawSquare: C floats, the half diagonal rounded to whole pixels, each corner
    /// rounded.
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32) {
        // Redis's own literal for the square root of two (not f64's: the rounding follows it).
        #[allow(clippy::approx_constant)]
        let size = ((f64::from(size) / 1.4142135623) as f32).round();
        let mut k = (std::f64::consts::FRAC_PI_4 + f64::from(angle)) as f32;
        let mut corners = [(0i64, 0i64); 4];
        for corner in &mut corners {
            let k64 = f64::from(k);
            *corner = (
                (k64.sin() * f64::from(size) + f64::from(x)).round() as i64,
                (k64.cos() * f64::from(size) + f64::from(y)).round() as i64,
            );
            k = (f64::from(k) + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            let (a, b) = (corners[j], corners[(j + 1) % 4]);
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
            // As Redis's renderCanvas: no newline after a last row that starts on the last pixel.
            if y + 1 != self.height {
                out.push('\n');
            }
        }
        out
    }
}

/// LOLWUT [VERSION 5|6] [columns] [squares per row] [squares per column], as Redis's
/// lolwut5Command: the arguments must be integers; the geometry is computed with C's float and
/// int conversions, so the first two rows (which nothing moves) are Redis's pixel for pixel.
pub fn render(args: &[Bytes]) -> Result<String, CmdError> {
    let rest = if args.len() >= 2 && args[0].eq_ignore_ascii_case(b"version") { &args[2..] } else { args };
    let mut nums = [66i64, 8, 12];
    for (n, a) in nums.iter_mut().zip(rest) {
        *n = args::int(a)?;
    }
    let cols = nums[0].clamp(1, 1000) as i32;
    let per_row = nums[1].clamp(1, 200) as i32;
    let per_col = nums[2].clamp(1, 200) as i32;
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(width as usize, height.max(0) as usize);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0f32;
            if y > 1 {
                let r = || {
                    let v = rand::random::<f32>() / per_col as f32 * y as f32;
                    if rand::random::<bool>() {
                        -v
                    } else {
                        v
                    }
                };
                angle = r();
                sx = (sx as f32 + r() * side / 3.0) as i32;
                sy = (sy as f32 + r() * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    let mut out = canvas.render();
    out.push_str(&format!("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {}\n", crate::REDIS_VERSION));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::render;
    use bytes::Bytes;

    fn lolwut(args: &[&str]) -> Result<String, String> {
        let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        render(&argv).map_err(|e| e.0)
    }

    fn drawing(args: &[&str]) -> String {
        let text = lolwut(args).expect("drawn");
        text.split("\nGeorg Nees").next().expect("a drawing").to_string()
    }

    #[test]
    fn first_rows_are_redis_pixel_for_pixel() {
        // Redis 7.0.15 / 7.2.4's LOLWUT VERSION 5 output for the same arguments (two rows of
        // squares: nothing random).
        assert_eq!(drawing(&["VERSION", "5", "1", "1", "1"]), "\u{280b}\n");
        assert_eq!(drawing(&["VERSION", "5", "3", "1", "2"]), "\u{2800}\u{2864}\u{2844}\n\u{2800}\u{282f}\u{2807}\n");
        assert_eq!(drawing(&["VERSION", "5", "10", "3", "2"]), "⢰⠒⠒⢲⠒⠒⣶⠒⠒⡆\n⢸⣀⣀⣸⣀⣀⣿⣀⣀⡇\n⢸⠀⠀⢸⠀⠀⣿⠀⠀⡇\n⠘⠒⠒⠚⠒⠒⠛⠒⠒⠃\n");
        // A last row that starts on the canvas's last pixel line has no newline of its own.
        assert!(!drawing(&["VERSION", "5", "1", "2", "5"]).ends_with('\n'));
    }

    #[test]
    fn arguments_must_be_integers() {
        assert!(lolwut(&["VERSION", "5", "x"]).is_err());
        assert!(lolwut(&["VERSION", "5", "10", "2", "2.5"]).is_err());
        assert!(lolwut(&["VERSION", "5", "-3", "0", "999"]).is_ok());
    }
}
