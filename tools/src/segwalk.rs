//! Reading Weir's (and Kafka's) data directories offline: which segments a path names, and a
//! batch-by-batch walk of one `.log` file with storage's header parsing and CRC check, reading
//! through a buffer so a segment of any size takes constant memory.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};
use weir_storage::batch::{compute_crc, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use weir_storage::error::BatchError;
use weir_storage::segment::{
    file_path, parse_file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// Read buffer of a segment walk.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// Errors reading a data directory. Problems *in* the data are not errors: they are findings.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a partition directory, a log directory or a .log segment")]
    NotALog(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One segment: its base offset (from its name) and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFiles {
    pub base_offset: i64,
    pub log: PathBuf,
    pub index: PathBuf,
    pub time_index: PathBuf,
}

impl SegmentFiles {
    fn new(dir: &Path, base_offset: i64) -> Self {
        SegmentFiles {
            base_offset,
            log: file_path(dir, base_offset, LOG_SUFFIX),
            index: file_path(dir, base_offset, INDEX_SUFFIX),
            time_index: file_path(dir, base_offset, TIME_INDEX_SUFFIX),
        }
    }
}

/// The segments of a partition directory, by base offset.
pub fn segments_of(dir: &Path) -> Result<Vec<SegmentFiles>, LogError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        if let Some((base, LOG_SUFFIX)) = parse_file_name(&name.to_string_lossy()) {
            out.push(SegmentFiles::new(dir, base));
        }
    }
    out.sort_by_key(|s| s.base_offset);
    Ok(out)
}

/// What a path names: partitions, each a list of segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub path: PathBuf,
    pub segments: Vec<SegmentFiles>,
}

/// A `.log` file (one segment), a partition directory, or a log directory of partitions.
pub fn resolve(path: &Path) -> Result<Vec<Partition>, LogError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_file() {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let Some((base, LOG_SUFFIX)) = name.as_deref().and_then(parse_file_name) else {
            return Err(LogError::NotALog(path.to_path_buf()));
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        return Ok(vec![Partition {
            path: path.to_path_buf(),
            segments: vec![SegmentFiles::new(dir, base)],
        }]);
    }
    let own = segments_of(path)?;
    if !own.is_empty() {
        return Ok(vec![Partition {
            path: path.to_path_buf(),
            segments: own,
        }]);
    }
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let segments = segments_of(&d)?;
        if !segments.is_empty() {
            out.push(Partition { path: d, segments });
        }
    }
    if out.is_empty() {
        // An empty partition directory (no segment yet) is a partition with nothing to check.
        if path
            .file_name()
            .and_then(|n| weir_storage::TopicPartition::from_dir_name(&n.to_string_lossy()))
            .is_some()
        {
            return Ok(vec![Partition {
                path: path.to_path_buf(),
                segments: Vec::new(),
            }]);
        }
        return Err(LogError::NotALog(path.to_path_buf()));
    }
    Ok(out)
}

/// One batch met by a walk.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Byte position in the `.log` file.
    pub position: u64,
    pub header: BatchHeader,
    /// The CRC computed over the bytes (equal to `header.crc` when intact).
    pub computed_crc: u32,
    /// Shape problems that still let the walk continue (record count vs lastOffsetDelta).
    pub shape_error: Option<BatchError>,
}

impl Batch {
    pub fn crc_ok(&self) -> bool {
        self.computed_crc == self.header.crc
    }
}

/// Why a walk stopped before the end of the file: past such a point batch boundaries are lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    pub position: u64,
    pub reason: String,
}

/// Walks `log` from the start. `on_batch` gets each batch and its bytes; `on_bytes` the bytes
/// read so far (for a progress bar). Returns where the walk stopped early, if it did.
pub fn walk(
    log: &Path,
    mut on_batch: impl FnMut(&Batch, &[u8]),
    mut on_bytes: impl FnMut(u64),
) -> Result<Option<Torn>, LogError> {
    let file = File::open(log).map_err(io(log))?;
    let len = file.metadata().map_err(io(log))?.len();
    let mut r = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut position = 0u64;
    let mut buf = Vec::new();
    while position < len {
        let left = len - position;
        if left < HEADER_LEN as u64 {
            return Ok(Some(Torn {
                position,
                reason: format!(
                    "{left} bytes at the end of the file, too few for a {HEADER_LEN}-byte batch header"
                ),
            }));
        }
        buf.resize(HEADER_LEN, 0);
        read_exact(&mut r, &mut buf, log)?;
        let header = BatchHeader::parse(&buf).expect("a whole header was read");
        if header.magic != 2 {
            return Ok(Some(Torn {
                position,
                reason: format!(
                    "magic byte {} where a v2 batch (magic 2) should start",
                    header.magic
                ),
            }));
        }
        let total = LOG_OVERHEAD as u64 + header.batch_length.max(0) as u64;
        if (header.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 || total > left {
            return Ok(Some(Torn {
                position,
                reason: format!(
                    "batchLength {} does not fit: {left} bytes remain in the file",
                    header.batch_length
                ),
            }));
        }
        buf.resize(total as usize, 0);
        read_exact(&mut r, &mut buf[HEADER_LEN..], log)?;
        let batch = Batch {
            position,
            header,
            computed_crc: compute_crc(&buf),
            shape_error: header.check_shape().err(),
        };
        on_batch(&batch, &buf);
        position += total;
        on_bytes(position);
    }
    Ok(None)
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<(), LogError> {
    r.read_exact(buf).map_err(|e| {
        let e = if e.kind() == ErrorKind::UnexpectedEof {
            std::io::Error::new(ErrorKind::UnexpectedEof, "file shrank while being read")
        } else {
            e
        };
        io(path)(e)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use weir_storage::batch::{assign, build_batch, ProducerFields, Record};

    /// A batch of `n` records at `base`, as the broker stores it.
    pub fn stored_batch(base: i64, n: usize, ts: i64) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'x'; 20]),
                headers: vec![],
                timestamp_delta: i as i64,
            })
            .collect();
        let mut b = build_batch(&records, ts, ProducerFields::NONE);
        assign(&mut b, base, 0);
        b
    }

    #[test]
    fn walks_batches_and_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("00000000000000000000.log");
        let mut data = stored_batch(0, 2, 1000);
        data.extend(stored_batch(2, 3, 2000));
        let whole = data.len();
        data.extend_from_slice(&stored_batch(5, 1, 3000)[..30]);
        std::fs::write(&log, &data).unwrap();
        let mut seen = Vec::new();
        let mut read = 0;
        let torn = walk(
            &log,
            |b, _| seen.push((b.position, b.header.base_offset, b.crc_ok())),
            |n| read = n,
        )
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].1, 2);
        assert!(seen.iter().all(|s| s.2));
        assert_eq!(read, whole as u64);
        let torn = torn.expect("the tail is torn");
        assert_eq!(torn.position, whole as u64);
        assert!(torn.reason.contains("too few"), "{}", torn.reason);
    }

    #[test]
    fn resolves_files_partitions_and_log_dirs() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("orders-0");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("00000000000000000010.log"), b"").unwrap();
        std::fs::write(p.join("00000000000000000000.log"), b"").unwrap();
        std::fs::write(p.join("00000000000000000000.index"), b"").unwrap();
        std::fs::write(p.join("leader-epoch-checkpoint"), b"0\n0\n").unwrap();
        let parts = resolve(root.path()).unwrap();
        assert_eq!(parts.len(), 1);
        let bases: Vec<i64> = parts[0].segments.iter().map(|s| s.base_offset).collect();
        assert_eq!(bases, vec![0, 10]);
        assert_eq!(resolve(&p).unwrap(), parts);
        let one = resolve(&p.join("00000000000000000010.log")).unwrap();
        assert_eq!(one[0].segments.len(), 1);
        assert!(resolve(&p.join("leader-epoch-checkpoint")).is_err());
    }
}
