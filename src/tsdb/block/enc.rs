//! Byte encodings shared by the block files: big-endian fixed ints, Go's
//! varints, CRC32 Castagnoli, and a bounds-checked reader that reports the
//! file offset where decoding failed.

/// CRC32 Castagnoli, the checksum of every block section.
pub(crate) fn crc(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Go's zig-zag `PutVarint`.
pub(crate) fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Zero bytes until `out.len()` is a multiple of `align`.
pub(crate) fn pad(out: &mut Vec<u8>, align: usize) {
    let rem = out.len() % align;
    if rem != 0 {
        out.resize(out.len() + align - rem, 0);
    }
}

/// Decodes a uvarint at the start of `b`: value and bytes used, `None`
/// when truncated or longer than 10 bytes / 64 bits.
pub(crate) fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    let mut s = 0u32;
    for (i, &c) in b.iter().enumerate().take(10) {
        if c < 0x80 {
            if i == 9 && c > 1 {
                return None;
            }
            return Some((x | (u64::from(c) << s), i + 1));
        }
        x |= u64::from(c & 0x7f) << s;
        s += 7;
    }
    None
}

/// A cursor over one section of a file. `base` is the file offset of
/// `b[0]`, so errors can name where in the file they happened.
pub(crate) struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
    base: u64,
}

/// A decoding failure: what, and the file offset.
#[derive(Debug)]
pub(crate) struct DecError {
    pub offset: u64,
    pub msg: String,
}

pub(crate) type DecResult<T> = Result<T, DecError>;

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8], base: u64) -> Self {
        Dec { b, pos: 0, base }
    }

    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn err<T>(&self, msg: impl Into<String>) -> DecResult<T> {
        Err(DecError {
            offset: self.offset(),
            msg: msg.into(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub fn bytes(&mut self, n: usize) -> DecResult<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.b.len() => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => self.err(format!("unexpected end of data (want {n} bytes)")),
        }
    }

    pub fn byte(&mut self) -> DecResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn be32(&mut self) -> DecResult<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn be64(&mut self) -> DecResult<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn uvarint(&mut self) -> DecResult<u64> {
        match uvarint(&self.b[self.pos.min(self.b.len())..]) {
            Some((x, n)) => {
                self.pos += n;
                Ok(x)
            }
            None => self.err("invalid or truncated varint"),
        }
    }

    pub fn uvarint32(&mut self) -> DecResult<u32> {
        let at = self.offset();
        let x = self.uvarint()?;
        u32::try_from(x).map_err(|_| DecError {
            offset: at,
            msg: format!("value {x} overflows 32 bits"),
        })
    }

    pub fn varint(&mut self) -> DecResult<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub fn str(&mut self) -> DecResult<&'a str> {
        let n = self.uvarint()?;
        let at = self.offset();
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| DecError {
            offset: at,
            msg: "string is not valid UTF-8".into(),
        })
    }
}

/// The section at `off` of `file`: a 4-byte big-endian length, that many
/// bytes, and their CRC32. Returns a decoder over the body after checking
/// the checksum.
pub(crate) fn section<'a>(file: &'a [u8], off: u64, what: &str) -> DecResult<Dec<'a>> {
    let start = usize::try_from(off).unwrap_or(usize::MAX);
    let mut d = Dec::new(file.get(start..).unwrap_or(&[]), off);
    if start > file.len() {
        return d.err(format!("{what}: offset beyond end of file"));
    }
    let len = d.be32()? as usize;
    let body_at = d.offset();
    let body = d.bytes(len)?;
    let want = d.be32()?;
    if crc(body) != want {
        return Err(DecError {
            offset: off,
            msg: format!("{what}: checksum mismatch"),
        });
    }
    Ok(Dec::new(body, body_at))
}

/// Appends a 4-byte length, `body` and its CRC32.
pub(crate) fn put_section(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc(body).to_be_bytes());
}

/// The big-endian u32 in the last 4 bytes of `b` (a trailing CRC), 0 if shorter.
pub(crate) fn trailing_be32(b: &[u8]) -> u32 {
    match b {
        [.., a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

/// A decoding error at `offset`.
pub(crate) fn fail<T>(offset: u64, msg: impl Into<String>) -> DecResult<T> {
    Err(DecError {
        offset,
        msg: msg.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overlong_input() {
        for x in [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, x);
            assert_eq!(Dec::new(&b, 0).varint().unwrap(), x);
        }
        let mut b = Vec::new();
        put_uvarint(&mut b, u64::MAX);
        assert_eq!(uvarint(&b), Some((u64::MAX, 10)));
        assert_eq!(uvarint(&[0xff; 11]), None);
        assert_eq!(uvarint(&[0x80]), None);
        let err = Dec::new(&[0x80], 100).uvarint().unwrap_err();
        assert_eq!(err.offset, 100);
    }
}
