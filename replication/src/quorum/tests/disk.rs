//! A simulated disk for one voter, holding what the broker's driver would: the metadata log as
//! Kafka record batches (`entry_batch`), the `quorum-state` file (`state_file`) and the latest
//! checkpoint. Writes are ordered; an fsync makes everything written so far durable; a crash
//! keeps the durable state plus a random prefix of the writes since (the page cache flushed
//! part of them, in order: the driver only writes the hard state after the log's fsync, and a
//! checkpoint before the log reset that follows it).

use crate::quorum::entry_batch;
use crate::quorum::rng::SplitMix64;
use crate::quorum::state_file::{self, QuorumStateFile};
use crate::quorum::{QuorumHardState, QuorumReady, RecoveredState, SnapshotData};
use crate::types::NodeId;
use bytes::Bytes;

/// One write, in the order the driver issues them.
#[derive(Debug, Clone)]
pub enum Write {
    Checkpoint(SnapshotData),
    /// Discard the log; it restarts empty at this offset.
    ResetLog(i64),
    /// Remove every batch at or after this offset.
    Truncate(i64),
    Append {
        offset: i64,
        batch: Vec<u8>,
    },
    QuorumState(Vec<u8>),
    /// Compaction: drop batches below this offset.
    AdvanceLogStart(i64),
}

#[derive(Debug, Clone, Default)]
pub struct Files {
    pub log_start: i64,
    /// (base offset, batch), in offset order.
    pub log: Vec<(i64, Vec<u8>)>,
    pub quorum_state: Option<Vec<u8>>,
    pub checkpoint: Option<SnapshotData>,
}

impl Files {
    pub fn log_end(&self) -> i64 {
        self.log.last().map_or(self.log_start, |(o, _)| o + 1)
    }

    fn apply(&mut self, w: &Write) {
        match w {
            Write::Checkpoint(s) => self.checkpoint = Some(s.clone()),
            Write::ResetLog(offset) => {
                self.log.clear();
                self.log_start = *offset;
            }
            Write::Truncate(offset) => {
                assert!(*offset >= self.log_start, "truncation below the log start");
                self.log.retain(|(o, _)| o < offset);
            }
            Write::Append { offset, batch } => {
                assert_eq!(
                    *offset,
                    self.log_end(),
                    "the node's entries must continue the log on disk"
                );
                self.log.push((*offset, batch.clone()));
            }
            Write::QuorumState(b) => self.quorum_state = Some(b.clone()),
            Write::AdvanceLogStart(offset) => {
                self.log.retain(|(o, _)| o >= offset);
                self.log_start = self.log_start.max(*offset);
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    durable: Files,
    /// Written, not yet fsynced, in order.
    unsynced: Vec<Write>,
    /// What the driver sees (durable + unsynced).
    visible: Files,
}

impl SimDisk {
    pub fn write(&mut self, w: Write) {
        self.visible.apply(&w);
        self.unsynced.push(w);
    }

    pub fn fsync(&mut self) {
        for w in self.unsynced.drain(..) {
            self.durable.apply(&w);
        }
    }

    /// A power loss: what survives is the durable state and a prefix of the unsynced writes.
    pub fn crash(&mut self, rng: &mut SplitMix64) {
        let kept = rng.range(0, self.unsynced.len() as u64 + 1) as usize;
        for w in self.unsynced.drain(..).take(kept) {
            self.durable.apply(&w);
        }
        self.visible = self.durable.clone();
    }

    /// Step 2 of a round up to the fsync, in `QuorumReady`'s order: checkpoint, log reset,
    /// truncation, entries. The fsync and the hard state follow in [`Self::finish`].
    pub fn write_log(&mut self, rd: &QuorumReady, now_ms: i64) {
        if let Some(s) = &rd.snapshot {
            self.write(Write::Checkpoint(s.clone()));
        }
        if let Some(after) = rd.log_reset_after {
            self.write(Write::ResetLog(after as i64));
        }
        if let Some(from) = rd.truncate_from {
            self.write(Write::Truncate(from as i64 - 1));
        }
        for e in &rd.entries {
            let batch = entry_batch::encode(e, now_ms).expect("entries encode");
            self.write(Write::Append {
                offset: e.index as i64 - 1,
                batch,
            });
        }
    }

    /// The rest of step 2: fsync the log, then write the hard state (durably if `must_sync`).
    pub fn finish(&mut self, rd: &QuorumReady, voters: &[NodeId]) {
        if rd.must_sync {
            self.fsync();
        }
        if let Some(hs) = rd.hard_state {
            let file = QuorumStateFile {
                hard_state: hs,
                voters: voters.to_vec(),
            };
            self.write(Write::QuorumState(state_file::encode(&file)));
            if rd.must_sync {
                self.fsync();
            }
        }
    }

    /// What a restarting driver reads back.
    pub fn recovered_state(&self) -> RecoveredState {
        let files = &self.visible;
        let (hard_state, recorded_voters) = match &files.quorum_state {
            Some(b) => {
                let f = state_file::decode(b).expect("the quorum-state file reads back");
                (f.hard_state, Some(f.voters))
            }
            None => (QuorumHardState::default(), None),
        };
        let entries = files
            .log
            .iter()
            .map(|(offset, b)| {
                let e = entry_batch::decode(b).expect("log batches read back");
                assert_eq!(e.index as i64 - 1, *offset);
                e
            })
            .collect();
        RecoveredState {
            hard_state,
            recorded_voters,
            snapshot: files.checkpoint.clone(),
            entries,
        }
    }
}

/// The simulated state machine: the data entries applied, by index. Its snapshot encoding is
/// what `compact` stores and a lagging voter installs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateMachine {
    pub applied_index: u64,
    pub entries: Vec<(u64, Bytes)>,
}

impl StateMachine {
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        out.extend_from_slice(&self.applied_index.to_be_bytes());
        for (i, d) in &self.entries {
            out.extend_from_slice(&i.to_be_bytes());
            out.extend_from_slice(&(d.len() as u32).to_be_bytes());
            out.extend_from_slice(d);
        }
        Bytes::from(out)
    }

    pub fn decode(b: &[u8]) -> Self {
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        let mut sm = StateMachine {
            applied_index: u64_at(0),
            entries: Vec::new(),
        };
        let mut pos = 8;
        while pos < b.len() {
            let index = u64_at(pos);
            let len = u32::from_be_bytes(b[pos + 8..pos + 12].try_into().unwrap()) as usize;
            let data = Bytes::copy_from_slice(&b[pos + 12..pos + 12 + len]);
            sm.entries.push((index, data));
            pos += 12 + len;
        }
        sm
    }
}
