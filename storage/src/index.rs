//! The sparse offset index and the time index of one segment, held in memory and stored in
//! Kafka's file formats: `.index` entries are (relative offset u32, position u32) and
//! `.timeindex` entries are (timestamp i64, relative offset u32), all big-endian.
//!
//! Invariant: entries increase strictly in every field, so both indexes can be searched by
//! binary search on any column.

pub const OFFSET_ENTRY_LEN: usize = 8;
pub const TIME_ENTRY_LEN: usize = 12;

/// One offset index entry: the last offset of a batch (relative to the segment base) and the
/// file position where that batch starts, as Kafka records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl OffsetEntry {
    /// The entries of a `.index` file as written, checking nothing (for tools that report each
    /// bad entry). Stops at Kafka's preallocated zero tail (an all-zero entry after the first)
    /// and ignores a trailing partial entry.
    pub fn decode_all(bytes: &[u8]) -> Vec<OffsetEntry> {
        let mut out = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_LEN);
        for e in bytes.chunks_exact(OFFSET_ENTRY_LEN) {
            let entry = OffsetEntry {
                relative_offset: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                position: u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
            };
            if entry.relative_offset == 0 && entry.position == 0 && !out.is_empty() {
                break;
            }
            out.push(entry);
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

impl OffsetIndex {
    /// Decodes a `.index` file. Refuses (returns `None`) anything that breaks the invariants or
    /// points past `log_size`, so the caller rebuilds the index from the log instead.
    pub fn decode(bytes: &[u8], log_size: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(OFFSET_ENTRY_LEN) {
            return None;
        }
        let mut index = Self::default();
        for entry in OffsetEntry::decode_all(bytes) {
            if entry.position as u64 >= log_size.max(1) || !index.can_append(entry) {
                return None;
            }
            index.entries.push(entry);
        }
        Some(index)
    }

    pub fn encode_from(&self, first: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            (self.entries.len() - first.min(self.entries.len())) * OFFSET_ENTRY_LEN,
        );
        for e in &self.entries[first.min(self.entries.len())..] {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    fn can_append(&self, e: OffsetEntry) -> bool {
        self.entries
            .last()
            .is_none_or(|l| e.relative_offset > l.relative_offset && e.position > l.position)
    }

    /// Appends an entry; entries that would break monotonicity are ignored (they add nothing).
    pub fn append(&mut self, e: OffsetEntry) {
        if self.can_append(e) {
            self.entries.push(e);
        }
    }

    /// The last entry whose offset is at or below `relative_offset`.
    pub fn floor_by_offset(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let n = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    /// The last entry whose position is at or below `position`.
    pub fn floor_by_position(&self, position: u32) -> Option<OffsetEntry> {
        let n = self.entries.partition_point(|e| e.position <= position);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    /// Drops entries for batches at or after `position` (truncation cuts at batch starts).
    pub fn truncate_to_position(&mut self, position: u64) {
        let n = self
            .entries
            .partition_point(|e| (e.position as u64) < position);
        self.entries.truncate(n);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }
}

/// One time index entry: the largest timestamp seen so far in the segment and the relative
/// offset of the record that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl TimeEntry {
    /// The entries of a `.timeindex` file as written, checking nothing; stops at the zero tail
    /// and ignores a trailing partial entry, as [`OffsetEntry::decode_all`].
    pub fn decode_all(bytes: &[u8]) -> Vec<TimeEntry> {
        let mut out = Vec::with_capacity(bytes.len() / TIME_ENTRY_LEN);
        for e in bytes.chunks_exact(TIME_ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&e[0..8]);
            let entry = TimeEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
            };
            if entry.timestamp == 0 && entry.relative_offset == 0 && !out.is_empty() {
                break;
            }
            out.push(entry);
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(TIME_ENTRY_LEN) {
            return None;
        }
        let mut index = Self::default();
        for entry in TimeEntry::decode_all(bytes) {
            if !index.can_append(entry) {
                return None;
            }
            index.entries.push(entry);
        }
        Some(index)
    }

    pub fn encode_from(&self, first: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries[first.min(self.entries.len())..] {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    fn can_append(&self, e: TimeEntry) -> bool {
        self.entries
            .last()
            .is_none_or(|l| e.timestamp > l.timestamp && e.relative_offset >= l.relative_offset)
    }

    /// Appends an entry if its timestamp is newer than the last one, as Kafka's
    /// `TimeIndex.maybeAppend` does.
    pub fn maybe_append(&mut self, e: TimeEntry) {
        if self.can_append(e) {
            self.entries.push(e);
        }
    }

    /// The last entry with a timestamp strictly below `timestamp`: every record before its
    /// offset is older than `timestamp`, so a search may start there.
    pub fn floor_below(&self, timestamp: i64) -> Option<TimeEntry> {
        let n = self.entries.partition_point(|e| e.timestamp < timestamp);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let n = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        self.entries.truncate(n);
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(o: u32, p: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset: o,
            position: p,
        }
    }

    #[test]
    fn offset_index_round_trips_and_searches() {
        let mut i = OffsetIndex::default();
        for k in 1..=10u32 {
            i.append(e(k * 10, k * 1000));
        }
        i.append(e(5, 5)); // out of order: ignored
        assert_eq!(i.len(), 10);
        let bytes = i.encode_from(0);
        let back = OffsetIndex::decode(&bytes, 20_000).unwrap();
        assert_eq!(back, i);
        assert_eq!(i.floor_by_offset(9), None);
        assert_eq!(i.floor_by_offset(10), Some(e(10, 1000)));
        assert_eq!(i.floor_by_offset(55), Some(e(50, 5000)));
        assert_eq!(i.floor_by_position(5999), Some(e(50, 5000)));
        i.truncate_to_position(5000);
        assert_eq!(i.last(), Some(e(40, 4000)));
    }

    #[test]
    fn damaged_offset_index_is_refused() {
        let mut i = OffsetIndex::default();
        i.append(e(1, 100));
        i.append(e(2, 200));
        let mut bytes = i.encode_from(0);
        assert!(OffsetIndex::decode(&bytes[..7], 1000).is_none());
        assert!(
            OffsetIndex::decode(&bytes, 150).is_none(),
            "position past the log end"
        );
        bytes[15] = 50; // second entry's position now below the first
        assert!(OffsetIndex::decode(&bytes, 1000).is_none());
        // Preallocated zero tail is tolerated.
        let mut padded = i.encode_from(0);
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(OffsetIndex::decode(&padded, 1000).unwrap().len(), 2);
    }

    #[test]
    fn raw_entries_decode_without_checks_up_to_the_zero_tail() {
        // Out of order on purpose: decode_all reports what is written, decode refuses it.
        let mut bytes = Vec::new();
        for (o, p) in [(5u32, 500u32), (3, 300)] {
            bytes.extend_from_slice(&o.to_be_bytes());
            bytes.extend_from_slice(&p.to_be_bytes());
        }
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[1, 2, 3]); // partial entry
        assert_eq!(OffsetEntry::decode_all(&bytes), vec![e(5, 500), e(3, 300)]);
        assert!(OffsetIndex::decode(&bytes, 1000).is_none());
        let mut t = Vec::new();
        t.extend_from_slice(&9i64.to_be_bytes());
        t.extend_from_slice(&2u32.to_be_bytes());
        t.extend_from_slice(&[0; 12]);
        assert_eq!(
            TimeEntry::decode_all(&t),
            vec![TimeEntry {
                timestamp: 9,
                relative_offset: 2
            }]
        );
    }

    #[test]
    fn time_index_keeps_only_newer_timestamps() {
        let mut t = TimeIndex::default();
        t.maybe_append(TimeEntry {
            timestamp: 100,
            relative_offset: 0,
        });
        t.maybe_append(TimeEntry {
            timestamp: 90,
            relative_offset: 5,
        });
        t.maybe_append(TimeEntry {
            timestamp: 200,
            relative_offset: 9,
        });
        assert_eq!(t.len(), 2);
        assert_eq!(TimeIndex::decode(&t.encode_from(0)).unwrap(), t);
        assert_eq!(t.floor_below(100), None);
        assert_eq!(t.floor_below(150).unwrap().relative_offset, 0);
        assert_eq!(t.floor_below(201).unwrap().relative_offset, 9);
        t.truncate_to_offset(9);
        assert_eq!(t.len(), 1);
    }
}
