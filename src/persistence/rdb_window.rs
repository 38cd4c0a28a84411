//! A bounded window over an RDB byte stream, so a file is parsed as it is read instead of read
//! whole first. The parser reads one record at a time (an opcode and its payload) through a
//! [`Reader`] over the window; a record cut by the window's end is retried once more of the
//! stream is in (the window grows to hold a record larger than it, and only then). Parsing a
//! record has no effect until it succeeds, so a retry is invisible. The CRC-64 of every byte
//! consumed is kept as the window moves on, for the file's checksum trailer.

use std::io::{self, Read};

use super::rdb::{Crc64Digest, CRC64};
use super::reader::{RdbError, Reader, Result};

/// Bytes read from the stream at a time.
pub const CHUNK: usize = 1 << 20;
/// Below this many unread bytes the window is refilled before the next record (so records are
/// rarely cut, and never parsed twice because of it more than once a chunk).
const LOW_WATER: usize = CHUNK / 4;

pub struct Window<R> {
    input: R,
    buf: Vec<u8>,
    /// First unconsumed byte of `buf`.
    start: usize,
    /// Stream offset of `buf[0]`.
    base: usize,
    /// The input has no more bytes.
    eof: bool,
    /// CRC-64 of the stream's bytes before `buf[crc_done]`.
    crc: Crc64Digest<'static>,
    crc_done: usize,
}

impl<R: Read> Window<R> {
    pub fn new(input: R) -> Self {
        Window { input, buf: Vec::new(), start: 0, base: 0, eof: false, crc: CRC64.digest(), crc_done: 0 }
    }

    /// Stream offset of the next unconsumed byte.
    pub fn offset(&self) -> usize {
        self.base + self.start
    }

    /// Read one record with `f`, given a reader over the unconsumed bytes; what it read is
    /// consumed when it succeeds. A record that ran past the window's end is retried on a
    /// wider window while the stream has more; otherwise its error is final.
    pub fn record<T>(&mut self, mut f: impl FnMut(&mut Reader) -> Result<T>) -> Result<T> {
        if self.buf.len() - self.start < LOW_WATER && !self.eof {
            self.fill(CHUNK)?;
        }
        loop {
            let mut r = Reader::at_offset(&self.buf[self.start..], self.offset());
            match f(&mut r) {
                Ok(v) => {
                    self.start += r.consumed();
                    return Ok(v);
                }
                Err(_) if r.ran_short() && !self.eof => {
                    // Twice what the record has seen so far: a long record costs a few retries.
                    let want = (2 * (self.buf.len() - self.start)).max(CHUNK);
                    self.fill(want)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Drop the consumed bytes (into the CRC) and read until `want` unconsumed bytes are
    /// buffered or the stream ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.start > 0 {
            self.crc.update(&self.buf[self.crc_done..self.start]);
            self.buf.drain(..self.start);
            self.base += self.start;
            self.start = 0;
            self.crc_done = 0;
        }
        if self.buf.len() < want && !self.eof {
            // read_to_end grows the buffer as data comes (a short input costs no full chunk).
            let need = (want - self.buf.len()) as u64;
            let at = self.base + self.buf.len();
            let got = (&mut self.input)
                .take(need)
                .read_to_end(&mut self.buf)
                .map_err(|e| RdbError::new(at, format!("read error: {e}")))?;
            self.eof = (got as u64) < need;
        }
        Ok(())
    }

    /// CRC-64 of every byte consumed so far.
    pub fn checksum(&self) -> u64 {
        let mut d = self.crc.clone();
        d.update(&self.buf[self.crc_done..self.start]);
        d.finalize()
    }

    /// The number of bytes left in the stream (reading, not keeping, them).
    pub fn count_rest(&mut self) -> Result<usize> {
        let mut n = self.buf.len() - self.start;
        self.start = self.buf.len();
        while !self.eof {
            self.buf.clear();
            self.start = 0;
            self.crc_done = 0;
            self.fill(CHUNK)?;
            n += self.buf.len();
            self.start = self.buf.len();
        }
        Ok(n)
    }

    /// The rest of the stream (an AOF's commands after its RDB preamble).
    pub fn into_rest(mut self) -> io::Result<Vec<u8>> {
        let mut rest = self.buf.split_off(self.start);
        self.input.read_to_end(&mut rest)?;
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream handing out at most `step` bytes per read (records get cut everywhere).
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn records_larger_than_the_window_are_read_whole() {
        // Strings of 3 MB (longer than a chunk) between small ones.
        let mut data = Vec::new();
        let big = vec![7u8; 3 * CHUNK];
        for i in 0..5u8 {
            data.extend_from_slice(&[0x81]);
            data.extend_from_slice(&(big.len() as u64).to_be_bytes());
            data.extend_from_slice(&big);
            data.extend_from_slice(&[1, i]);
        }
        let mut w = Window::new(Trickle(&data, 100_000));
        for i in 0..5u8 {
            assert_eq!(w.record(|r| r.string()).unwrap().len(), big.len());
            assert_eq!(w.record(|r| r.string()).unwrap(), vec![i]);
        }
        assert_eq!(w.offset(), data.len());
        assert_eq!(w.checksum(), CRC64.checksum(&data));
        // Past the end: a final error, at the end's offset.
        let e = w.record(|r| r.u8()).unwrap_err();
        assert_eq!(e.offset, data.len());
    }

    #[test]
    fn the_rest_follows_the_records() {
        let data: Vec<u8> = (0..3 * CHUNK).map(|i| i as u8).collect();
        let mut w = Window::new(&data[..]);
        w.record(|r| r.bytes(CHUNK + 5).map(|_| ())).unwrap();
        assert_eq!(w.checksum(), CRC64.checksum(&data[..CHUNK + 5]));
        assert_eq!(w.into_rest().unwrap(), &data[CHUNK + 5..]);
        let mut w = Window::new(&data[..]);
        w.record(|r| r.bytes(10).map(|_| ())).unwrap();
        assert_eq!(w.count_rest().unwrap(), data.len() - 10);
    }
}
