//! The XOR ("Gorilla") chunk codec, in Prometheus' bit layout.
//!
//! We write our own instead of using the `tsz` crate because `tsz` follows the
//! paper's second-resolution buckets and silently corrupts millisecond
//! timestamps more than ~16.4 s into a chunk. The layout below matches
//! Prometheus' `chunkenc.XORChunk`, so a chunk's bytes are the same as the ones
//! Prometheus would write for the same samples:
//!
//! * 2 bytes: sample count, big endian;
//! * sample 0: timestamp as a zig-zag varint, value as 64 raw bits;
//! * sample 1: timestamp delta as an unsigned varint, value XOR-encoded;
//! * sample n≥2: delta-of-delta in a `0` / `10`+14 / `110`+17 / `1110`+20 /
//!   `1111`+64 bit bucket (tuned for milliseconds), value XOR-encoded.
//!
//! Timestamp arithmetic wraps, so any sequence round-trips bit-exactly, even
//! one the head would never store (decreasing, or spanning the whole i64 range).
//! Values are stored as bits: NaN payloads such as the stale marker survive.

/// Bytes of the sample-count header.
const HEADER_BYTES: usize = 2;

/// Room a series' first chunk starts with (later ones are sized from the
/// chunk before), as Prometheus starts every chunk: the first sample takes
/// 12-20 bytes and a changing gauge 6-10 more each, so a first chunk of 64
/// bytes was reallocated three or four times in its first 15 samples, and
/// those reallocations (with the heap consolidation they cause) were a
/// tenth of the CPU of ingesting 100k new series.
const FIRST_CHUNK_BYTES: usize = 128;

/// The least a chunk's buffer grows by when it is full.
const MIN_GROWTH_BYTES: usize = 32;

/// Marks "no leading/trailing window yet" for the XOR value encoding.
pub(crate) const NO_WINDOW: u8 = 0xff;

/// Whether `x` fits the signed `nbits` bucket, with Prometheus' asymmetric
/// bounds (`-(2^(n-1)-1) ..= 2^(n-1)`), so encoded chunks are byte-compatible.
pub(crate) fn fits(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Append-only bit stream over a byte vector that grows in small steps, because
/// a head chunk lives for 120 samples and doubling would waste up to half of it.
/// It borrows its state from the [`HeadChunk`] so that the chunk's small fields
/// pack together (an owned writer would pad its one-byte field to 8).
pub(crate) struct BitWriter<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
    /// Unused low bits in the last byte (0 means a new byte is needed).
    pub(crate) free: &'a mut u8,
}

impl BitWriter<'_> {
    /// Makes room for `n` more bytes, growing in the small steps described
    /// above (a quarter of the length, at least [`MIN_GROWTH_BYTES`]).
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            let grow = (self.buf.len() / 4).max(MIN_GROWTH_BYTES).max(n);
            self.buf.reserve_exact(grow);
        }
    }

    /// Writes the low `nbits` bits of `v`, most significant first, leaving
    /// the stream exactly as Prometheus' `bstream.writeBits` does (whole
    /// bytes through `writeByte`, the rest bit by bit): the bits are the
    /// same as any bit writer's, and a write of a multiple of 8 bits that
    /// ends on a byte boundary leaves an empty byte behind (8 free bits),
    /// as `writeByte` always starts a new byte. Chunks therefore end with
    /// that byte exactly when Prometheus' do, keeping them byte-equal.
    ///
    /// Done with whole words rather than a bit at a time: bits that fit the
    /// last byte's free ones are or-ed in; otherwise the free bits are
    /// filled and the rest goes out as new bytes in one copy.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, nbits: u32) {
        self.write_fields(v, nbits, nbits);
    }

    /// Writes the low `nbits` bits of `v` as [`Self::write_bits`] would if
    /// they had been written field by field, the last field being `last`
    /// bits wide: only the last field decides whether `bstream` leaves its
    /// empty byte behind (the bits are the same however they are split).
    /// Lets a sample go out in one or two writes instead of four to six.
    #[inline]
    pub(crate) fn write_fields(&mut self, v: u64, nbits: u32, last: u32) {
        if nbits == 0 {
            return;
        }
        let v = if nbits >= 64 {
            v
        } else {
            v & ((1u64 << nbits) - 1)
        };
        let mut free = u32::from(*self.free);
        if nbits <= free {
            if let Some(last) = self.buf.last_mut() {
                *last |= (v << (free - nbits)) as u8;
            }
            free -= nbits;
        } else {
            let mut left = nbits;
            if free > 0 {
                // The top `free` of the bits go into the last byte.
                left -= free;
                if let Some(last) = self.buf.last_mut() {
                    *last |= ((v >> left) & ((1u64 << free) - 1)) as u8;
                }
            }
            // The low `left` bits (1..=64) as new bytes, most significant first.
            let bytes = left.div_ceil(8);
            self.reserve(bytes as usize + 1);
            let word = (v << (64 - left)).to_be_bytes();
            self.buf
                .extend_from_slice(word.get(..bytes as usize).unwrap_or(&word));
            free = bytes * 8 - left;
        }
        if free == 0 && last.is_multiple_of(8) {
            self.reserve(1);
            self.buf.push(0);
            free = 8;
        }
        *self.free = free as u8;
    }

    /// Prometheus' `bstream.writeByte`: eight bits, with its empty byte
    /// behind when they end on a byte boundary (see [`Self::write_bits`]).
    pub(crate) fn write_byte(&mut self, byte: u8) {
        self.write_bits(u64::from(byte), 8);
    }

    pub(crate) fn write_bit(&mut self, b: bool) {
        self.write_bits(u64::from(b), 1);
    }

    fn write_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.write_bits((x as u8 | 0x80).into(), 8);
            x >>= 7;
        }
        self.write_bits(x, 8);
    }

    fn write_varint(&mut self, x: i64) {
        self.write_uvarint(((x << 1) ^ (x >> 63)) as u64);
    }
}

/// Reads a bit stream written by [`BitWriter`]; every read is checked, so a
/// truncated or foreign buffer ends iteration instead of panicking.
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    pub(crate) data: &'a [u8],
    /// Position in bits from the start of `data`.
    pub(crate) pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn read_bits(&mut self, nbits: u32) -> Option<u64> {
        let mut out = 0u64;
        let mut left = nbits;
        while left > 0 {
            let byte = *self.data.get(self.pos / 8)?;
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = left.min(avail);
            let bits = (u32::from(byte) >> (avail - take)) & ((1u32 << take) - 1);
            out = (out.checked_shl(take).unwrap_or(0)) | u64::from(bits);
            self.pos += take as usize;
            left -= take;
        }
        Some(out)
    }

    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for i in 0..10 {
            let b = self.read_bits(8)?;
            x |= (b & 0x7f).checked_shl(7 * i).unwrap_or(0);
            if b < 0x80 {
                return Some(x);
            }
        }
        None
    }

    fn read_varint(&mut self) -> Option<i64> {
        let ux = self.read_uvarint()?;
        Some(((ux >> 1) as i64) ^ -((ux & 1) as i64))
    }
}

/// Encodes `delta = new ^ old` into the stream, updating the leading/trailing
/// window the next value may reuse.
pub(crate) fn write_xor(w: &mut BitWriter<'_>, delta: u64, leading: &mut u8, trailing: &mut u8) {
    if delta == 0 {
        w.write_bit(false);
        return;
    }
    w.write_bit(true);
    let new_leading = (delta.leading_zeros() as u8).min(31);
    let new_trailing = delta.trailing_zeros() as u8;
    if *leading != NO_WINDOW && new_leading >= *leading && new_trailing >= *trailing {
        w.write_bit(false);
        let sig = 64 - u32::from(*leading) - u32::from(*trailing);
        w.write_bits(delta >> *trailing, sig);
        return;
    }
    *leading = new_leading;
    *trailing = new_trailing;
    w.write_bit(true);
    w.write_bits(new_leading.into(), 5);
    let sig = 64 - u32::from(new_leading) - u32::from(new_trailing);
    // 64 significant bits is written as 0: the 6-bit field cannot hold 64.
    w.write_bits(u64::from(sig) & 0x3f, 6);
    w.write_bits(delta >> new_trailing, sig);
}

/// Decodes one value written by [`write_xor`] into `v` (the previous
/// value's bits, updated in place), keeping the window state.
pub(crate) fn read_xor(
    r: &mut BitReader<'_>,
    v: &mut u64,
    leading: &mut u8,
    trailing: &mut u8,
) -> Option<()> {
    if !r.read_bit()? {
        return Some(());
    }
    if r.read_bit()? {
        *leading = r.read_bits(5)? as u8;
        let mut sig = r.read_bits(6)? as u8;
        if sig == 0 {
            sig = 64;
        }
        *trailing = 64u8.checked_sub(*leading + sig)?;
    }
    let sig = 64 - u32::from(*leading) - u32::from(*trailing);
    let bits = r.read_bits(sig)?;
    *v ^= bits.checked_shl((*trailing).into()).unwrap_or(0);
    Some(())
}

/// The open chunk a series appends to. Small on purpose (one byte vector plus
/// the encoder state), since every active series has one.
#[derive(Debug)]
pub struct HeadChunk {
    buf: Vec<u8>,
    free: u8,
    n: u16,
    leading: u8,
    trailing: u8,
    t: i64,
    t_delta: i64,
    v: u64,
}

impl HeadChunk {
    /// Starts a chunk holding one sample.
    pub fn new(t: i64, v: f64) -> Self {
        Self::with_capacity(t, v, FIRST_CHUNK_BYTES)
    }

    /// Starts a chunk with room for `bytes` of data. A series' chunks tend to
    /// have similar sizes, so sizing the next chunk from the previous one
    /// replaces a dozen reallocations (and the heap holes they leave) by one.
    pub fn with_capacity(t: i64, v: f64, bytes: usize) -> Self {
        let mut c = HeadChunk {
            buf: Vec::with_capacity(bytes),
            free: 0,
            n: 1,
            leading: NO_WINDOW,
            trailing: 0,
            t,
            t_delta: 0,
            v: v.to_bits(),
        };
        let mut w = c.writer();
        w.write_bits(0, 16);
        w.write_varint(t);
        w.write_bits(v.to_bits(), 64);
        c.write_count();
        c
    }

    fn writer(&mut self) -> BitWriter<'_> {
        BitWriter {
            buf: &mut self.buf,
            free: &mut self.free,
        }
    }

    fn write_count(&mut self) {
        if let Some(h) = self.buf.get_mut(..HEADER_BYTES) {
            h.copy_from_slice(&self.n.to_be_bytes());
        }
    }

    /// Appends a sample. The caller enforces ordering; the codec itself accepts
    /// anything. Returns false (and stores nothing) when the 16-bit sample
    /// count is full.
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        if self.n == u16::MAX {
            return false;
        }
        let delta = t.wrapping_sub(self.t);
        let mut w = BitWriter {
            buf: &mut self.buf,
            free: &mut self.free,
        };
        // The timestamp's bits (and the value's control bits) are gathered
        // and written together with the value's: at most two writes.
        let (mut acc, mut n) = (0u64, 0u32);
        if self.n == 1 {
            w.write_uvarint(delta as u64);
        } else {
            let dod = delta.wrapping_sub(self.t_delta);
            let mask = |b: u32| (dod as u64) & ((1u64 << b) - 1);
            (acc, n) = if dod == 0 {
                (0, 1)
            } else if fits(dod, 14) {
                ((0b10 << 14) | mask(14), 16)
            } else if fits(dod, 17) {
                ((0b110 << 17) | mask(17), 20)
            } else if fits(dod, 20) {
                ((0b1110 << 20) | mask(20), 24)
            } else {
                w.write_bits(0b1111, 4);
                w.write_bits(dod as u64, 64);
                (0, 0)
            };
        }
        let bits = v.to_bits();
        let delta_v = bits ^ self.v;
        if delta_v == 0 {
            w.write_fields(acc << 1, n + 1, 1);
        } else {
            let (trailing, sig);
            if self.leading != NO_WINDOW
                && (delta_v.leading_zeros() as u8).min(31) >= self.leading
                && delta_v.trailing_zeros() as u8 >= self.trailing
            {
                // `10`: the previous window holds the meaningful bits.
                trailing = u32::from(self.trailing);
                sig = 64 - u32::from(self.leading) - trailing;
                acc = (acc << 2) | 0b10;
                n += 2;
            } else {
                // `11`, 5 bits of leading zeros, 6 of length (64 as 0).
                let leading = (delta_v.leading_zeros() as u8).min(31);
                trailing = delta_v.trailing_zeros();
                self.leading = leading;
                self.trailing = trailing as u8;
                sig = 64 - u32::from(leading) - trailing;
                acc =
                    (acc << 13) | (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 0x3f);
                n += 13;
            }
            let payload = delta_v >> trailing;
            if n + sig <= 64 {
                w.write_fields((acc << sig) | payload, n + sig, sig);
            } else {
                w.write_fields(acc, n, n);
                w.write_bits(payload, sig);
            }
        }
        self.t = t;
        self.t_delta = delta;
        self.v = bits;
        self.n += 1;
        self.write_count();
        true
    }

    pub fn num_samples(&self) -> usize {
        self.n.into()
    }
    pub fn min_time(&self) -> i64 {
        first_timestamp(&self.buf)
    }
    pub fn max_time(&self) -> i64 {
        self.t
    }
    /// The last value's bits, for the exact-duplicate check.
    pub fn last_value_bits(&self) -> u64 {
        self.v
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
    /// The address of the last byte (the one the next append writes into).
    pub fn tail_address(&self) -> usize {
        self.buf.as_ptr() as usize + self.buf.len().saturating_sub(1)
    }
    /// Heap bytes held, including unused capacity.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.buf)
    }

    /// The encoder state besides the bytes (what a memory snapshot keeps,
    /// so appends after a restart go on exactly where they stopped).
    pub fn state(&self) -> XorState {
        XorState {
            free: self.free,
            leading: self.leading,
            trailing: self.trailing,
            t: self.t,
            t_delta: self.t_delta,
            v: self.v,
        }
    }

    /// A chunk rebuilt from its bytes and [`HeadChunk::state`]; `None` when
    /// the two cannot belong together (no sample, impossible bit counts).
    pub fn from_state(buf: Vec<u8>, st: XorState) -> Option<HeadChunk> {
        let n = u16::try_from(chunk_len(&buf)).ok().filter(|n| *n > 0)?;
        let window_ok =
            st.leading == NO_WINDOW || u32::from(st.leading) + u32::from(st.trailing) <= 64;
        if buf.len() <= HEADER_BYTES || st.free > 8 || !window_ok {
            return None;
        }
        Some(HeadChunk {
            buf,
            free: st.free,
            n,
            leading: st.leading,
            trailing: st.trailing,
            t: st.t,
            t_delta: st.t_delta,
            v: st.v,
        })
    }

    /// Freezes the chunk, shrinking its buffer to the bytes used.
    pub fn close(self) -> ClosedChunk {
        ClosedChunk {
            data: self.buf.into_boxed_slice(),
        }
    }
}

/// [`HeadChunk`]'s encoder state besides its bytes: bits free in the last
/// byte, the XOR window, the last timestamp, delta and value bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XorState {
    pub free: u8,
    pub leading: u8,
    pub trailing: u8,
    pub t: i64,
    pub t_delta: i64,
    pub v: u64,
}

/// A full chunk: just its immutable bytes (16 bytes inline, since every
/// series holds several). Its first timestamp is read from the header
/// varint; its last one is bounded by the next chunk's first, which is all
/// range queries and retention need to skip it without decoding.
#[derive(Debug)]
pub struct ClosedChunk {
    data: Box<[u8]>,
}

impl ClosedChunk {
    /// A full chunk from its bytes (a memory snapshot's).
    pub fn from_bytes(data: Box<[u8]>) -> ClosedChunk {
        ClosedChunk { data }
    }
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.data)
    }
    pub fn num_samples(&self) -> usize {
        chunk_len(&self.data)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
    /// The first sample's timestamp.
    pub fn min_time(&self) -> i64 {
        first_timestamp(&self.data)
    }
    /// The last sample's timestamp; decodes the chunk.
    pub fn max_time(&self) -> i64 {
        self.iter().last().map_or(i64::MIN, |(t, _)| t)
    }
}

/// The first timestamp of a chunk, read from its varint without decoding
/// further (`i64::MIN` for bytes without one: the widest, safe bound).
pub fn first_timestamp(data: &[u8]) -> i64 {
    if chunk_len(data) == 0 {
        return i64::MIN;
    }
    let mut r = BitReader {
        data,
        pos: HEADER_BYTES * 8,
    };
    r.read_varint().unwrap_or(i64::MIN)
}

/// Sample count from a chunk's header (0 for a buffer too short to have one).
pub fn chunk_len(data: &[u8]) -> usize {
    match data {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    }
}

/// Decodes a chunk's samples in order. Stops early (without panicking) if the
/// bytes end before the header's sample count.
#[derive(Clone, Debug)]
pub struct ChunkIter<'a> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> ChunkIter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        ChunkIter {
            r: BitReader {
                data,
                pos: HEADER_BYTES * 8,
            },
            total: chunk_len(data),
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
        }
    }

    fn read_dod(&mut self) -> Option<i64> {
        let mut ones = 0;
        while ones < 4 && self.r.read_bit()? {
            ones += 1;
        }
        let nbits = match ones {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return self.r.read_bits(64).map(|b| b as i64),
        };
        let raw = self.r.read_bits(nbits)? as i64;
        // Prometheus' reading of its asymmetric buckets: only values above
        // 2^(n-1) are negative.
        Some(if raw > 1 << (nbits - 1) {
            raw - (1 << nbits)
        } else {
            raw
        })
    }

    fn read_xor(&mut self) -> Option<()> {
        read_xor(
            &mut self.r,
            &mut self.v,
            &mut self.leading,
            &mut self.trailing,
        )
    }

    fn next_sample(&mut self) -> Option<(i64, f64)> {
        match self.read {
            0 => {
                self.t = self.r.read_varint()?;
                self.v = self.r.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.r.read_uvarint()? as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_xor()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_xor()?;
            }
        }
        self.read += 1;
        Some((self.t, f64::from_bits(self.v)))
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.read >= self.total {
            return None;
        }
        let s = self.next_sample();
        if s.is_none() {
            // Corrupt or truncated: stop for good.
            self.total = 0;
        }
        s
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total.saturating_sub(self.read);
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;

    /// xorshift64*: a fixed-seed PRNG so the randomized tests are repeatable.
    pub(crate) struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn encode(samples: &[(i64, u64)]) -> HeadChunk {
        let (t0, v0) = samples[0];
        let mut c = HeadChunk::new(t0, f64::from_bits(v0));
        for &(t, v) in &samples[1..] {
            assert!(c.append(t, f64::from_bits(v)));
        }
        c
    }

    /// A chunk rebuilt from its bytes and state at any point (every count
    /// of free bits in the last byte, 0 to 8, occurs) appends exactly as
    /// the original goes on to.
    #[test]
    fn a_chunk_rebuilt_from_its_state_continues_byte_for_byte() {
        let mut rng = Rng(0x5eed);
        let mut frees = [false; 9];
        for _ in 0..200 {
            let mut t = rng.below(1 << 40) as i64;
            let mut c = HeadChunk::new(t, rng.next() as f64);
            for _ in 0..rng.below(120) {
                let mut copy = HeadChunk::from_state(c.bytes().to_vec(), c.state()).unwrap();
                frees[usize::from(c.state().free)] = true;
                t += rng.below(40_000) as i64 - 5;
                let v = match rng.below(3) {
                    0 => f64::from_bits(c.last_value_bits()),
                    1 => rng.below(100) as f64,
                    _ => f64::from_bits(rng.next()),
                };
                assert!(c.append(t, v));
                assert!(copy.append(t, v));
                assert_eq!(copy.bytes(), c.bytes());
                assert_eq!(copy.state(), c.state());
            }
        }
        assert!(frees.iter().all(|f| *f), "free bit counts seen: {frees:?}");
        let c = HeadChunk::new(1, 1.0);
        let bad = XorState {
            free: 9,
            ..c.state()
        };
        assert!(HeadChunk::from_state(c.bytes().to_vec(), bad).is_none());
        assert!(HeadChunk::from_state(vec![0, 0], c.state()).is_none());
    }

    fn decode_bits(data: &[u8]) -> Vec<(i64, u64)> {
        ChunkIter::new(data)
            .map(|(t, v)| (t, v.to_bits()))
            .collect()
    }

    fn special_value(rng: &mut Rng, prev: u64) -> u64 {
        match rng.below(12) {
            0 => f64::NAN.to_bits(),
            1 => STALE_NAN_BITS,
            2 => f64::INFINITY.to_bits(),
            3 => f64::NEG_INFINITY.to_bits(),
            4 => (-0.0f64).to_bits(),
            5 => 0.0f64.to_bits(),
            6 => rng.next(), // any bit pattern, including odd NaN payloads
            7 | 8 => prev,
            9 => (f64::from_bits(prev) + rng.below(100) as f64).to_bits(),
            _ => (rng.below(1_000_000) as f64 / 8.0).to_bits(),
        }
    }

    fn gap(rng: &mut Rng) -> i64 {
        match rng.below(8) {
            0 => 1,
            1 => rng.below(1 << 13) as i64,
            2 => rng.below(1 << 17) as i64 + 1,
            3 => rng.below(1 << 21) as i64 + 1,
            4 => rng.below(1 << 40) as i64 + 1,
            _ => 15_000 + rng.below(5) as i64 - 2,
        }
    }

    #[test]
    fn round_trip_random_increasing_series() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..2000 {
            let n = 1 + rng.below(300) as usize;
            let mut t = rng.next() as i64 >> 20;
            let mut v = 0u64;
            let mut s = Vec::with_capacity(n);
            for _ in 0..n {
                v = special_value(&mut rng, v);
                s.push((t, v));
                t += gap(&mut rng);
            }
            let c = encode(&s);
            assert_eq!(c.num_samples(), n);
            assert_eq!(decode_bits(c.bytes()), s, "case {case}");
            let closed = c.close();
            assert_eq!(closed.num_samples(), n);
            assert_eq!(decode_bits(closed.bytes()), s, "case {case} closed");
            assert_eq!(closed.min_time(), s[0].0);
            assert_eq!(closed.max_time(), s[n - 1].0);
        }
    }

    #[test]
    fn round_trip_arbitrary_timestamps_including_wrapping() {
        let mut rng = Rng(42);
        for case in 0..2000 {
            let n = 1 + rng.below(50) as usize;
            let s: Vec<(i64, u64)> = (0..n)
                .map(|_| {
                    let t = match rng.below(4) {
                        0 => i64::MIN + rng.below(3) as i64,
                        1 => i64::MAX - rng.below(3) as i64,
                        _ => rng.next() as i64,
                    };
                    (t, rng.next())
                })
                .collect();
            assert_eq!(decode_bits(encode(&s).bytes()), s, "case {case}");
        }
    }

    #[test]
    fn dod_bucket_boundaries_round_trip() {
        let mut s = vec![(0i64, 1u64), (1000, 2)];
        let mut t = 1000i64;
        let mut d = 1000i64;
        for b in [14u32, 17, 20] {
            let half = 1i64 << (b - 1);
            for dod in [half, half + 1, -(half - 1), -half, -(half + 1)] {
                d += dod;
                if d <= 0 {
                    d = 1000;
                }
                t += d;
                s.push((t, 3));
            }
        }
        assert_eq!(decode_bits(encode(&s).bytes()), s);
    }

    #[test]
    fn millisecond_timestamps_far_into_chunk() {
        // The failure mode that rules out `tsz`: > 16.4 s after the chunk start.
        let t0 = 1_700_000_000_000i64;
        let s: Vec<(i64, u64)> = (0..120)
            .map(|i| (t0 + i * 20_000, 7.5f64.to_bits()))
            .collect();
        assert_eq!(decode_bits(encode(&s).bytes()), s);
    }

    #[test]
    fn layout_matches_prometheus() {
        // Hand-derived from the format: header 00 03; varint(1000)=zigzag 2000
        // = d0 0f; 64 bits of 1.0; uvarint(10) = 0a; value delta 0 → bit 0;
        // dod 0 → bit 0; value delta 0 → bit 0; padding.
        let mut c = HeadChunk::new(1000, 1.0);
        c.append(1010, 1.0);
        c.append(1020, 1.0);
        let mut want = vec![0x00, 0x03, 0xd0, 0x0f];
        want.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[0x0a, 0x00]);
        assert_eq!(c.bytes(), &want[..]);
        // Constant-interval, constant-value samples cost 2 bits each.
        let mut c = HeadChunk::new(0, 5.0);
        for i in 1..120 {
            c.append(i * 15_000, 5.0);
        }
        assert!(
            c.bytes().len() <= 2 + 1 + 8 + 3 + 30 + 1,
            "{}",
            c.bytes().len()
        );
    }

    #[test]
    fn truncated_bytes_stop_without_panic() {
        let s: Vec<(i64, u64)> = (0..50)
            .map(|i| (i * 1000 + i * i, (i as f64).sqrt().to_bits()))
            .collect();
        let c = encode(&s);
        for cut in 0..c.bytes().len() {
            let got = decode_bits(&c.bytes()[..cut]);
            assert!(got.len() <= s.len());
            assert_eq!(&s[..got.len()], &got[..], "cut {cut}");
        }
    }

    /// Prometheus' `bstream` as written in Go: `writeBits` is `writeByte`
    /// per whole byte, then `writeBit` per remaining bit.
    struct GoStream {
        stream: Vec<u8>,
        count: u8,
    }

    impl GoStream {
        fn write_bit(&mut self, bit: bool) {
            if self.count == 0 {
                self.stream.push(0);
                self.count = 8;
            }
            if bit {
                *self.stream.last_mut().unwrap() |= 1 << (self.count - 1);
            }
            self.count -= 1;
        }
        fn write_byte(&mut self, byt: u8) {
            if self.count == 0 {
                self.stream.push(0);
                self.count = 8;
            }
            *self.stream.last_mut().unwrap() |=
                byt.checked_shr(u32::from(8 - self.count)).unwrap_or(0);
            self.stream
                .push(byt.checked_shl(u32::from(self.count)).unwrap_or(0));
        }
        fn write_bits(&mut self, u: u64, mut nbits: u32) {
            let mut u = u.checked_shl(64 - nbits).unwrap_or(0);
            while nbits >= 8 {
                self.write_byte((u >> 56) as u8);
                u <<= 8;
                nbits -= 8;
            }
            while nbits > 0 {
                self.write_bit((u >> 63) == 1);
                u <<= 1;
                nbits -= 1;
            }
        }
    }

    #[test]
    fn bit_writer_matches_prometheus_bstream_byte_for_byte() {
        let mut rng = Rng(7);
        for case in 0..3000 {
            let mut go = GoStream {
                stream: Vec::new(),
                count: 0,
            };
            let mut buf = Vec::new();
            let mut free = 0u8;
            for _ in 0..rng.below(40) {
                let nbits = match rng.below(4) {
                    0 => 8 * (1 + rng.below(8) as u32),
                    1 => 1,
                    _ => 1 + rng.below(64) as u32,
                };
                // High bits beyond nbits must be ignored.
                let v = rng.next();
                go.write_bits(v, nbits);
                BitWriter {
                    buf: &mut buf,
                    free: &mut free,
                }
                .write_bits(v, nbits);
                assert_eq!(buf, go.stream, "case {case}");
                assert_eq!(free, go.count, "case {case}");
            }
        }
    }

    /// Prometheus' `xorAppender.Append` over [`GoStream`], one write per
    /// field as in Go.
    struct GoXor {
        b: GoStream,
        num: u16,
        t: i64,
        t_delta: i64,
        v: u64,
        leading: u8,
        trailing: u8,
    }

    impl GoXor {
        fn append(&mut self, t: i64, v: u64) {
            let mut var = Vec::new();
            match self.num {
                0 => {
                    let mut z = ((t << 1) ^ (t >> 63)) as u64;
                    while z >= 0x80 {
                        var.push(z as u8 | 0x80);
                        z >>= 7;
                    }
                    var.push(z as u8);
                    var.iter().for_each(|&b| self.b.write_byte(b));
                    self.b.write_bits(v, 64);
                }
                1 => {
                    let mut d = t.wrapping_sub(self.t) as u64;
                    while d >= 0x80 {
                        var.push(d as u8 | 0x80);
                        d >>= 7;
                    }
                    var.push(d as u8);
                    var.iter().for_each(|&b| self.b.write_byte(b));
                    self.write_v_delta(v);
                }
                _ => {
                    let dod = t.wrapping_sub(self.t).wrapping_sub(self.t_delta);
                    if dod == 0 {
                        self.b.write_bit(false);
                    } else if fits(dod, 14) {
                        self.b.write_bits(0b10, 2);
                        self.b.write_bits(dod as u64, 14);
                    } else if fits(dod, 17) {
                        self.b.write_bits(0b110, 3);
                        self.b.write_bits(dod as u64, 17);
                    } else if fits(dod, 20) {
                        self.b.write_bits(0b1110, 4);
                        self.b.write_bits(dod as u64, 20);
                    } else {
                        self.b.write_bits(0b1111, 4);
                        self.b.write_bits(dod as u64, 64);
                    }
                    self.write_v_delta(v);
                }
            }
            if self.num > 0 {
                self.t_delta = t.wrapping_sub(self.t);
            }
            self.t = t;
            self.v = v;
            self.num += 1;
            self.b.stream[..2].copy_from_slice(&self.num.to_be_bytes());
        }

        fn write_v_delta(&mut self, v: u64) {
            let delta = v ^ self.v;
            if delta == 0 {
                self.b.write_bit(false);
                return;
            }
            self.b.write_bit(true);
            let lead = (delta.leading_zeros() as u8).min(31);
            let trail = delta.trailing_zeros() as u8;
            if self.leading != 0xff && lead >= self.leading && trail >= self.trailing {
                self.b.write_bit(false);
                let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
                self.b.write_bits(delta >> self.trailing, sig);
                return;
            }
            self.leading = lead;
            self.trailing = trail;
            self.b.write_bit(true);
            self.b.write_bits(lead.into(), 5);
            let sig = 64 - u32::from(lead) - u32::from(trail);
            self.b.write_bits(u64::from(sig), 6);
            self.b.write_bits(delta >> trail, sig);
        }
    }

    #[test]
    fn head_chunk_matches_prometheus_xor_appender_byte_for_byte() {
        let mut rng = Rng(0x5eed);
        for case in 0..1500 {
            let mut go = GoXor {
                b: GoStream {
                    stream: vec![0, 0],
                    count: 0,
                },
                num: 0,
                t: 0,
                t_delta: 0,
                v: 0,
                leading: 0xff,
                trailing: 0,
            };
            let mut t = rng.next() as i64 >> 20;
            let mut v = special_value(&mut rng, 0);
            go.append(t, v);
            let mut c = HeadChunk::new(t, f64::from_bits(v));
            assert_eq!(c.bytes(), &go.b.stream[..], "case {case} first");
            for i in 1..1 + rng.below(200) {
                t = t.wrapping_add(gap(&mut rng));
                v = special_value(&mut rng, v);
                go.append(t, v);
                assert!(c.append(t, f64::from_bits(v)));
                assert_eq!(c.bytes(), &go.b.stream[..], "case {case} sample {i}");
            }
        }
    }

    #[test]
    fn full_count_refuses_more() {
        let mut c = HeadChunk::new(0, 0.0);
        for i in 1..u16::MAX as i64 {
            assert!(c.append(i, 0.0));
        }
        assert!(!c.append(i64::from(u16::MAX), 0.0));
        assert_eq!(c.num_samples(), usize::from(u16::MAX));
        assert_eq!(c.iter().count(), usize::from(u16::MAX));
    }
}
