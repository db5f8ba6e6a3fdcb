//! The byte-level reader and writer behind the record codec: big-endian integers, u16-length
//! strings, i16-length optional strings (-1 = null), i32-count lists (-1 = null), 16-byte ids.
//! Every read is bounds-checked and every length is checked against what is left, so a hostile
//! or torn record fails with an error and never panics or allocates more than its own size.

/// Why a record (or a batch of them) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed metadata record: {0}")]
pub struct RecordError(pub &'static str);

pub(crate) struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    pub fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn id(&mut self, id: &[u8; 16]) {
        self.0.extend_from_slice(id);
    }
    /// A string longer than u16::MAX bytes cannot be written; callers bound their strings
    /// (topic names, config keys and values, hosts) far below that, and a longer one is cut at
    /// a character boundary rather than written with a length that lies.
    pub fn string(&mut self, s: &str) {
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
    }
    pub fn opt_string(&mut self, s: Option<&str>) {
        match s {
            None => self.i16(-1),
            Some(s) => self.string(s),
        }
    }
    pub fn i32s(&mut self, v: &[i32]) {
        self.i32(v.len() as i32);
        for x in v {
            self.i32(*x);
        }
    }
    pub fn opt_i32s(&mut self, v: Option<&[i32]>) {
        match v {
            None => self.i32(-1),
            Some(v) => self.i32s(v),
        }
    }
}

pub(crate) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(RecordError("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn bool(&mut self) -> Result<bool, RecordError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RecordError("bad boolean")),
        }
    }
    pub fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn id(&mut self) -> Result<[u8; 16], RecordError> {
        self.array()
    }
    pub fn string(&mut self) -> Result<String, RecordError> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| RecordError("string is not UTF-8"))
    }
    pub fn opt_string(&mut self) -> Result<Option<String>, RecordError> {
        let n = i16::from_be_bytes(
            self.b
                .get(self.pos..self.pos.saturating_add(2))
                .ok_or(RecordError("truncated"))?
                .try_into()
                .map_err(|_| RecordError("truncated"))?,
        );
        if n == -1 {
            self.pos += 2;
            return Ok(None);
        }
        self.string().map(Some)
    }
    /// The count is checked against the bytes left before anything is allocated.
    pub fn i32s(&mut self) -> Result<Vec<i32>, RecordError> {
        let n = self.i32()?;
        self.i32s_of(n)
    }
    pub fn opt_i32s(&mut self) -> Result<Option<Vec<i32>>, RecordError> {
        match self.i32()? {
            -1 => Ok(None),
            n => self.i32s_of(n).map(Some),
        }
    }
    fn i32s_of(&mut self, n: i32) -> Result<Vec<i32>, RecordError> {
        if n < 0 || n as usize > self.remaining() / 4 {
            return Err(RecordError("bad list length"));
        }
        (0..n).map(|_| self.i32()).collect()
    }
    /// A count of items at least `min_item_bytes` long each, checked against the bytes left.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, RecordError> {
        let n = self.i32()?;
        if n < 0 || n as usize > self.remaining() / min_item_bytes.max(1) {
            return Err(RecordError("bad list length"));
        }
        Ok(n as usize)
    }
    pub fn finish(&self) -> Result<(), RecordError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(RecordError("trailing bytes"))
        }
    }
}
