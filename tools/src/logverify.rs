//! `log verify`: checks a data directory offline and says exactly what is wrong and where:
//! every batch's framing, shape and CRC-32C, offsets increasing within and across segments, and
//! every `.index` and `.timeindex` entry against the batches it points at.

use crate::segwalk::{self, Batch, LogError, Partition, SegmentFiles};
use crate::table::{Cell, Report, Table};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::Path;
use weir_storage::index::{OffsetEntry, TimeEntry, OFFSET_ENTRY_LEN, TIME_ENTRY_LEN};

/// Findings kept in full; past this they are only counted, so a wholly garbage directory does
/// not exhaust memory.
const PROBLEMS_KEPT_MAX: usize = 10_000;

/// One thing wrong, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// Byte position in `file`, when the problem has one.
    pub position: Option<u64>,
    /// The offset concerned, when there is one.
    pub offset: Option<i64>,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Verified {
    pub partitions: usize,
    pub segments: usize,
    pub batches: u64,
    pub records: u64,
    pub index_entries: u64,
    pub time_index_entries: u64,
    pub problems: Vec<Problem>,
    pub problems_total: u64,
}

impl Verified {
    fn problem(&mut self, file: &Path, position: Option<u64>, offset: Option<i64>, what: String) {
        self.problems_total += 1;
        if self.problems.len() < PROBLEMS_KEPT_MAX {
            self.problems.push(Problem {
                file: file.display().to_string(),
                position,
                offset,
                what,
            });
        }
    }

    pub fn ok(&self) -> bool {
        self.problems_total == 0
    }

    pub fn report(&self) -> Report {
        let mut table = Table::new(&["FILE", "POSITION", "OFFSET", "PROBLEM"]);
        for p in &self.problems {
            table.push(vec![
                p.file.clone().into(),
                p.position.map(|p| p as i64).into(),
                p.offset.into(),
                p.what.clone().into(),
            ]);
        }
        let mut r = Report::new();
        r.fields(
            "summary",
            vec![
                ("Partitions", self.partitions.into()),
                ("Segments", self.segments.into()),
                ("Batches", (self.batches as i64).into()),
                ("Records", (self.records as i64).into()),
                ("IndexEntries", (self.index_entries as i64).into()),
                ("TimeIndexEntries", (self.time_index_entries as i64).into()),
                ("Problems", (self.problems_total as i64).into()),
                (
                    "Result",
                    Cell::from(if self.ok() { "OK" } else { "CORRUPT" }),
                ),
            ],
        );
        r.table("problems", None, table);
        if self.problems_total > self.problems.len() as u64 {
            r.warn(format!(
                "{} more problems not listed",
                self.problems_total - self.problems.len() as u64
            ));
        }
        r
    }
}

/// What the walk learned of a segment's batches, for checking its indexes.
struct SegmentBatches {
    /// Batch start position → (base offset, last offset, max timestamp).
    by_position: BTreeMap<u64, (i64, i64, i64)>,
    /// End of the last readable batch.
    readable_end: u64,
    /// One past the last offset, or `None` when the segment holds no batch.
    next_offset: Option<i64>,
}

fn check_batches(
    seg: &SegmentFiles,
    expected_next: Option<i64>,
    v: &mut Verified,
    progress: &ProgressBar,
    done_before: u64,
) -> Result<SegmentBatches, LogError> {
    let mut by_position = BTreeMap::new();
    let mut next: Option<i64> = None;
    let mut findings: Vec<(Option<u64>, Option<i64>, String)> = Vec::new();
    let base = seg.base_offset;
    let mut batches = 0u64;
    let mut records = 0u64;
    let torn = segwalk::walk(
        &seg.log,
        |b: &Batch, _| {
            let h = &b.header;
            batches += 1;
            records += h.record_count.max(0) as u64;
            let at = Some(b.position);
            let off = Some(h.base_offset);
            if !b.crc_ok() {
                findings.push((
                    at,
                    off,
                    format!(
                        "CRC-32C mismatch: batch says {:#010x}, its bytes give {:#010x}",
                        h.crc, b.computed_crc
                    ),
                ));
            }
            if let Some(e) = &b.shape_error {
                findings.push((at, off, e.to_string()));
            }
            if h.base_offset < base {
                findings.push((
                    at,
                    off,
                    format!(
                        "batch offset {} is below the segment's base offset {base}",
                        h.base_offset
                    ),
                ));
            }
            let previous_end = next.or(expected_next);
            if let Some(n) = previous_end.filter(|n| h.base_offset < *n) {
                findings.push((
                    at,
                    off,
                    format!(
                        "offsets go back: batch starts at {} but offsets up to {} came before",
                        h.base_offset,
                        n - 1
                    ),
                ));
            }
            if h.last_offset() - base > u32::MAX as i64 {
                findings.push((
                    at,
                    off,
                    format!(
                        "offset {} is too far from the segment base {base} for the index",
                        h.last_offset()
                    ),
                ));
            }
            by_position.insert(
                b.position,
                (h.base_offset, h.last_offset(), h.max_timestamp),
            );
            next = Some(next.map_or(h.last_offset() + 1, |n| n.max(h.last_offset() + 1)));
        },
        |read| progress.set_position(done_before + read),
    )?;
    v.batches += batches;
    v.records += records;
    for (position, offset, what) in findings {
        v.problem(&seg.log, position, offset, what);
    }
    let readable_end = match &torn {
        Some(t) => {
            v.problem(
                &seg.log,
                Some(t.position),
                None,
                format!(
                    "batches end here: {} (the rest of the file is unreadable)",
                    t.reason
                ),
            );
            t.position
        }
        None => std::fs::metadata(&seg.log).map(|m| m.len()).unwrap_or(0),
    };
    Ok(SegmentBatches {
        by_position,
        readable_end,
        next_offset: next,
    })
}

/// Reads an index file; a missing one is not a problem (the broker rebuilds missing indexes).
fn read_index(path: &Path) -> Result<Option<Vec<u8>>, LogError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An index file holds whole entries; a partial one at the end is reported where it starts.
fn check_whole_entries(path: &Path, bytes: &[u8], entry_len: usize, v: &mut Verified) {
    let extra = bytes.len() % entry_len;
    if extra != 0 {
        v.problem(
            path,
            Some((bytes.len() - extra) as u64),
            None,
            format!("{extra} trailing bytes: not a whole {entry_len}-byte entry"),
        );
    }
}

fn check_offset_index(
    seg: &SegmentFiles,
    b: &SegmentBatches,
    v: &mut Verified,
) -> Result<(), LogError> {
    let Some(bytes) = read_index(&seg.index)? else {
        return Ok(());
    };
    let base = seg.base_offset;
    check_whole_entries(&seg.index, &bytes, OFFSET_ENTRY_LEN, v);
    let entries = OffsetEntry::decode_all(&bytes);
    v.index_entries += entries.len() as u64;
    let mut previous: Option<OffsetEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        let at = Some((i * OFFSET_ENTRY_LEN) as u64);
        let offset = base + e.relative_offset as i64;
        let pos = e.position as u64;
        if let Some(p) = previous {
            if e.relative_offset <= p.relative_offset || e.position <= p.position {
                v.problem(
                    &seg.index,
                    at,
                    Some(offset),
                    format!(
                        "entry {i} (offset {offset} → position {pos}) does not increase on entry {} (offset {} → position {})",
                        i - 1,
                        base + p.relative_offset as i64,
                        p.position
                    ),
                );
            }
        }
        previous = Some(*e);
        match b.by_position.get(&pos) {
            Some(&(first, last, _)) if last != offset => v.problem(
                &seg.index,
                at,
                Some(offset),
                format!(
                    "entry {i} says offset {offset} is at position {pos}, but the batch there holds offsets {first}..={last}"
                ),
            ),
            Some(_) => {}
            None if pos >= b.readable_end => v.problem(
                &seg.index,
                at,
                Some(offset),
                format!(
                    "entry {i} points at position {pos}, past the last readable batch (which ends at {})",
                    b.readable_end
                ),
            ),
            None => v.problem(
                &seg.index,
                at,
                Some(offset),
                format!("entry {i} points at position {pos}, which is not the start of a batch"),
            ),
        }
    }
    Ok(())
}

fn check_time_index(
    seg: &SegmentFiles,
    b: &SegmentBatches,
    v: &mut Verified,
) -> Result<(), LogError> {
    let Some(bytes) = read_index(&seg.time_index)? else {
        return Ok(());
    };
    let base = seg.base_offset;
    check_whole_entries(&seg.time_index, &bytes, TIME_ENTRY_LEN, v);
    let entries = TimeEntry::decode_all(&bytes);
    v.time_index_entries += entries.len() as u64;
    // Batches by last offset, to find the one an entry names.
    let by_offset: BTreeMap<i64, (i64, i64)> = b
        .by_position
        .values()
        .map(|&(first, last, max_ts)| (last, (first, max_ts)))
        .collect();
    let mut previous: Option<TimeEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        let at = Some((i * TIME_ENTRY_LEN) as u64);
        let offset = base + e.relative_offset as i64;
        if let Some(p) = previous {
            if e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset {
                v.problem(
                    &seg.time_index,
                    at,
                    Some(offset),
                    format!(
                        "entry {i} (timestamp {} → offset {offset}) does not follow entry {} (timestamp {} → offset {}): timestamps must increase, offsets must not decrease",
                        e.timestamp,
                        i - 1,
                        p.timestamp,
                        base + p.relative_offset as i64
                    ),
                );
            }
        }
        previous = Some(*e);
        // The batch holding the offset: the first whose last offset is at or after it.
        match by_offset.range(offset..).next() {
            Some((_, &(first, max_ts))) if first <= offset => {
                if max_ts != e.timestamp {
                    v.problem(
                        &seg.time_index,
                        at,
                        Some(offset),
                        format!(
                            "entry {i} says timestamp {} at offset {offset}, but the batch holding it has max timestamp {max_ts}",
                            e.timestamp
                        ),
                    );
                }
            }
            _ => v.problem(
                &seg.time_index,
                at,
                Some(offset),
                format!(
                    "entry {i} names offset {offset}, which no readable batch of the segment holds"
                ),
            ),
        }
    }
    Ok(())
}

fn total_bytes(partitions: &[Partition]) -> u64 {
    partitions
        .iter()
        .flat_map(|p| &p.segments)
        .map(|s| std::fs::metadata(&s.log).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Verifies everything `path` names (a segment, a partition directory, or a log directory).
pub fn verify(path: &Path) -> Result<Verified, LogError> {
    let partitions = segwalk::resolve(path)?;
    // Drawn on stderr only when it is a terminal; hidden for pipes and tests.
    let progress = ProgressBar::new(total_bytes(&partitions));
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut v = Verified {
        partitions: partitions.len(),
        ..Verified::default()
    };
    let mut done = 0u64;
    for p in &partitions {
        progress.set_message(p.path.display().to_string());
        let mut expected_next: Option<i64> = None;
        for seg in &p.segments {
            v.segments += 1;
            if let Some(n) = expected_next.filter(|n| seg.base_offset < *n) {
                v.problem(
                    &seg.log,
                    None,
                    Some(seg.base_offset),
                    format!(
                        "segment starts at offset {} but the previous segment holds offsets up to {}",
                        seg.base_offset,
                        n - 1
                    ),
                );
            }
            let batches = check_batches(seg, expected_next, &mut v, &progress, done)?;
            check_offset_index(seg, &batches, &mut v)?;
            check_time_index(seg, &batches, &mut v)?;
            expected_next = batches.next_offset.or(expected_next);
            done += std::fs::metadata(&seg.log).map(|m| m.len()).unwrap_or(0);
            progress.set_position(done);
        }
    }
    progress.finish_and_clear();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segwalk::tests::stored_batch;
    use weir_storage::batch::CRC_AT;

    /// A segment of three batches (offsets 0-1, 2-4, 5) with a correct index entry for the
    /// second batch and time entries for all three, as the broker writes them.
    fn segment(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let b0 = stored_batch(0, 2, 1000);
        let b1 = stored_batch(2, 3, 2000);
        let b2 = stored_batch(5, 1, 3000);
        let mut log = b0.clone();
        log.extend(&b1);
        log.extend(&b2);
        let mut index = Vec::new();
        index.extend_from_slice(&4u32.to_be_bytes());
        index.extend_from_slice(&(b0.len() as u32).to_be_bytes());
        let mut time = Vec::new();
        for (ts, rel) in [(1001i64, 1u32), (2002, 4), (3000, 5)] {
            time.extend_from_slice(&ts.to_be_bytes());
            time.extend_from_slice(&rel.to_be_bytes());
        }
        std::fs::write(dir.join("00000000000000000000.log"), &log).unwrap();
        std::fs::write(dir.join("00000000000000000000.index"), &index).unwrap();
        std::fs::write(dir.join("00000000000000000000.timeindex"), &time).unwrap();
        (log, index, time)
    }

    fn problems(dir: &Path) -> Vec<Problem> {
        let v = verify(dir).unwrap();
        assert_eq!(v.problems_total as usize, v.problems.len());
        v.problems
    }

    #[test]
    fn an_intact_segment_verifies() {
        let dir = tempfile::tempdir().unwrap();
        segment(dir.path());
        let v = verify(dir.path()).unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!((v.segments, v.batches, v.records), (1, 3, 6));
        assert_eq!((v.index_entries, v.time_index_entries), (1, 3));
    }

    #[test]
    fn a_flipped_byte_is_a_crc_mismatch_at_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = segment(dir.path());
        let second = stored_batch(0, 2, 1000).len();
        log[second + 70] ^= 0x01; // inside the second batch's records
        std::fs::write(dir.path().join("00000000000000000000.log"), &log).unwrap();
        let p = problems(dir.path());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].position, p[0].offset), (Some(second as u64), Some(2)));
        assert!(p[0].what.starts_with("CRC-32C mismatch"), "{}", p[0].what);
        // A damaged stored CRC is caught the same way.
        let (mut log, _, _) = segment(dir.path());
        log[CRC_AT] ^= 0xff;
        std::fs::write(dir.path().join("00000000000000000000.log"), &log).unwrap();
        let p = problems(dir.path());
        assert_eq!((p.len(), p[0].position), (1, Some(0)));
    }

    #[test]
    fn a_torn_tail_and_bad_index_entries_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut index, mut time) = segment(dir.path());
        let cut = log.len() - 10;
        log.truncate(cut); // the last batch is torn
        std::fs::write(dir.path().join("00000000000000000000.log"), &log).unwrap();
        index.extend_from_slice(&3u32.to_be_bytes()); // goes back
        index.extend_from_slice(&7u32.to_be_bytes()); // and is not a batch start
        std::fs::write(dir.path().join("00000000000000000000.index"), &index).unwrap();
        time[7] ^= 0x01; // first entry's timestamp no longer matches its batch
        std::fs::write(dir.path().join("00000000000000000000.timeindex"), &time).unwrap();
        let p = problems(dir.path());
        let whats: Vec<&str> = p.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(p.len(), 5, "{whats:#?}");
        let last_batch_at =
            (stored_batch(0, 2, 1000).len() + stored_batch(2, 3, 2000).len()) as u64;
        assert!(p[0].what.starts_with("batches end here"), "{}", p[0].what);
        assert_eq!(p[0].position, Some(last_batch_at));
        assert!(p[1].what.contains("does not increase"), "{}", p[1].what);
        assert!(
            p[2].what.contains("not the start of a batch"),
            "{}",
            p[2].what
        );
        assert!(p[3].what.contains("max timestamp 1001"), "{}", p[3].what);
        assert!(p[4].what.contains("no readable batch"), "{}", p[4].what);
        assert_eq!(p[4].offset, Some(5));
    }

    #[test]
    fn overlapping_segments_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        segment(dir.path());
        // A second segment claiming base offset 3 while the first holds up to 5.
        std::fs::write(
            dir.path().join("00000000000000000003.log"),
            stored_batch(3, 1, 5000),
        )
        .unwrap();
        let p = problems(dir.path());
        assert!(
            p.iter()
                .any(|p| p.what.contains("previous segment holds offsets up to 5")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.what.contains("offsets go back")),
            "{p:?}"
        );
    }
}
