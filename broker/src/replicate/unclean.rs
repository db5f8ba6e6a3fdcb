//! What an unclean election cost, recorded by the replicas that know it (see
//! `docs/REPLICATION.md`, "Unclean elections on the record"). The controller writes who was
//! elected, at which epoch and when; only the replicas know what went:
//!
//! - the new leader reports its log end when it took over (the start of its epoch);
//! - a replica about to truncate records of epochs older than the partition's last unclean
//!   election (`weir_replication::partition::discard`) first appends the range to
//!   `weir-unclean-discards` next to its log and fsyncs it, then truncates, then reports it.
//!
//! Reports go to the active controller (`ReportUnclean`), which adds them to the partition's
//! unclean election in the metadata image, where every broker serves them (Metadata, see
//! `handlers::metadata`). A report that did not get through (no controller, a crash) is sent
//! again from the file the next time the partition's metadata changes or it is opened.

use crate::clock::now_ms;
use crate::replica::Replica;
use crate::runtime::core::Core;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use weir_replication::controller::{
    ControllerError, ControllerReply, ControllerRequest, UncleanReportRequest,
};
use weir_replication::metadata::records::{DiscardedRange, UncleanReport};
use weir_replication::metadata::UncleanElection;
use weir_replication::partition::discard::unclean_discard;
use weir_replication::types::LeaderEpoch;
use weir_storage::read_small_file;

/// The file, in the partition's directory, of what this replica discarded to unclean
/// elections: one line per truncation, `v1 <election epoch> <from> <to> <high watermark>
/// <time ms> <epoch>@<start>,...`. Appended and fsynced before the truncation it describes.
pub const DISCARDS_FILE: &str = "weir-unclean-discards";

/// Between attempts to reach the controller with a report.
const RETRY: Duration = Duration::from_secs(1);

fn file_of(r: &Replica) -> PathBuf {
    r.log.dir().join(DISCARDS_FILE)
}

fn format_line(election_epoch: LeaderEpoch, d: &DiscardedRange) -> String {
    let epochs: Vec<String> = d.epochs.iter().map(|(e, s)| format!("{e}@{s}")).collect();
    format!(
        "v1 {election_epoch} {} {} {} {} {}\n",
        d.from_offset,
        d.to_offset,
        d.high_watermark,
        d.time_ms,
        epochs.join(",")
    )
}

/// One line of the file; None for a line this version does not know or a torn last line.
fn parse_line(line: &str) -> Option<(LeaderEpoch, DiscardedRange)> {
    let mut f = line.split(' ');
    if f.next()? != "v1" {
        return None;
    }
    let mut num = || f.next()?.parse::<i64>().ok();
    let election_epoch = LeaderEpoch::try_from(num()?).ok()?;
    let (from_offset, to_offset, high_watermark, time_ms) = (num()?, num()?, num()?, num()?);
    let epochs = f
        .next()?
        .split(',')
        .map(|p| {
            let (e, s) = p.split_once('@')?;
            Some((e.parse().ok()?, s.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    if f.next().is_some() {
        return None;
    }
    Some((
        election_epoch,
        DiscardedRange {
            from_offset,
            to_offset,
            high_watermark,
            epochs,
            time_ms,
        },
    ))
}

/// Every entry of a replica's file (none if it has none).
async fn read_file(path: PathBuf) -> Vec<(LeaderEpoch, DiscardedRange)> {
    match read_small_file(&path).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes.unwrap_or_default())
            .lines()
            .filter_map(parse_line)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the unclean discards file failed");
            Vec::new()
        }
    }
}

fn append_durably(path: &Path, line: &str) -> std::io::Result<()> {
    let created = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.sync_data()?;
    if created {
        // The new name must survive a crash too.
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// Called by a follower before it truncates its log from `from` (its log end `end`, high
/// watermark `hw`). Logs the truncation; when it gives up records to the partition's last
/// unclean election, writes them down durably and reports them. False when that record could
/// not be written: the caller must not truncate yet (it backs off and the next fetch tries
/// again), so no loss goes unrecorded.
pub async fn before_truncation(
    core: &Rc<Core>,
    r: &Rc<Replica>,
    from: i64,
    end: i64,
    hw: i64,
) -> bool {
    let election = last_unclean(core, r);
    let epochs = r.log.epoch_entries();
    let discard = election
        .as_ref()
        .and_then(|u| unclean_discard(&epochs, from, end, hw, u.leader_epoch, now_ms()));
    if from < hw {
        tracing::warn!(partition = %r.tp, from, to = end, committed_lost = hw - from, ?epochs,
            "truncating records this replica had as committed: the leader was elected uncleanly");
    } else {
        tracing::info!(partition = %r.tp, from, to = end,
            "truncating records the leader does not have (never committed)");
    }
    let (Some(u), Some(d)) = (election, discard) else {
        return true;
    };
    let line = format_line(u.leader_epoch, &d);
    let path = file_of(r);
    // A blocking append and fsync: on glommio's blocking thread, never on the core's own.
    let written = glommio::executor()
        .spawn_blocking(move || append_durably(&path, &line))
        .await;
    if let Err(e) = written {
        tracing::error!(partition = %r.tp, error = %e,
            "recording what the unclean election discarded failed; not truncating yet");
        return false;
    }
    tracing::warn!(partition = %r.tp, election_epoch = u.leader_epoch, from = d.from_offset,
        to = d.to_offset, committed = d.committed_count(), epochs = ?d.epochs,
        "discarding records to an unclean election; recorded");
    start_reporting(core, r);
    true
}

fn last_unclean(core: &Core, r: &Replica) -> Option<UncleanElection> {
    core.image()
        .topic(&r.tp.topic)
        .and_then(|t| t.partitions.get(r.tp.partition as usize))
        .and_then(|p| p.last_unclean_election.clone())
}

/// Sends what the controller does not have yet about the partition's last unclean election,
/// in the background; one task per replica at a time.
pub fn start_reporting(core: &Rc<Core>, r: &Rc<Replica>) {
    if r.unclean_reporting.replace(true) {
        // The running task looks again before it ends.
        r.unclean_recheck.set(true);
        return;
    }
    let (core, r) = (core.clone(), r.clone());
    glommio::spawn_local(async move {
        report_pending(&core, &r).await;
        r.unclean_reporting.set(false);
    })
    .detach();
}

/// The reports this replica owes on `u`: its log end if it is the new leader, and every
/// discarded range in its file for that election the image does not cover yet.
async fn pending(core: &Core, r: &Replica, u: &UncleanElection) -> Vec<UncleanReport> {
    let me = core.settings().node_id;
    let mut out = Vec::new();
    if u.leader == me && u.leader_log_end.is_none() {
        if let Some((_, start)) = r
            .log
            .epoch_entries()
            .into_iter()
            .find(|(e, _)| *e == u.leader_epoch)
        {
            out.push(UncleanReport::LeaderLogEnd(start));
        }
    }
    for (epoch, d) in read_file(file_of(r)).await {
        let known = u
            .discarded
            .iter()
            .any(|(b, k)| *b == me && k.from_offset <= d.from_offset && d.to_offset <= k.to_offset);
        if epoch == u.leader_epoch && !known {
            out.push(UncleanReport::Discarded(d));
        }
    }
    out
}

async fn report_pending(core: &Rc<Core>, r: &Rc<Replica>) {
    let mut refused: Vec<UncleanReport> = Vec::new();
    loop {
        r.unclean_recheck.set(false);
        if core.is_stopping() || core.replica(&r.tp.topic, r.tp.partition).is_none() {
            return;
        }
        let Some(u) = last_unclean(core, r) else {
            return;
        };
        let todo: Vec<UncleanReport> = pending(core, r, &u)
            .await
            .into_iter()
            .filter(|p| !refused.contains(p))
            .collect();
        if todo.is_empty() && !r.unclean_recheck.get() {
            return;
        }
        let mut retry = false;
        for report in todo {
            let broker_epoch = core
                .image()
                .broker(core.settings().node_id)
                .map_or(-1, |b| b.epoch);
            let request = ControllerRequest::ReportUnclean(UncleanReportRequest {
                broker_id: core.settings().node_id,
                broker_epoch,
                topic_id: r.topic_id,
                partition: r.tp.partition,
                election_epoch: u.leader_epoch,
                report: report.clone(),
            });
            match core.controller_call(request).await {
                ControllerReply::ReportUnclean(Ok(())) => {
                    tracing::info!(partition = %r.tp, election_epoch = u.leader_epoch, ?report,
                        "unclean election report recorded by the controller");
                }
                ControllerReply::ReportUnclean(Err(
                    ControllerError::NotController(_) | ControllerError::StaleBrokerEpoch(_),
                )) => retry = true,
                ControllerReply::ReportUnclean(Err(e)) => {
                    tracing::warn!(partition = %r.tp, error = %e, ?report,
                        "the controller refused an unclean election report; it stays in this replica's file");
                    refused.push(report);
                }
                other => {
                    tracing::error!(?other, "controller answered with the wrong reply");
                    refused.push(report);
                }
            }
        }
        if retry {
            glommio::timer::sleep(RETRY).await;
        } else {
            // The image catches up with what was just committed before the next look.
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_torn_or_foreign_lines_are_skipped() {
        let d = DiscardedRange {
            from_offset: 120,
            to_offset: 200,
            high_watermark: 190,
            epochs: vec![(1, 120), (3, 150)],
            time_ms: 1_700_000_000_000,
        };
        let line = format_line(4, &d);
        assert_eq!(line, "v1 4 120 200 190 1700000000000 1@120,3@150\n");
        assert_eq!(parse_line(line.trim_end()), Some((4, d)));
        for bad in [
            "",
            "v2 4 120 200 190 1 1@120",
            "v1 4 120 200 190 1",
            "v1 4 120 200 190 1 1@",
            "v1 4 120 200 190 1 1@120 extra",
            "v1 x 120 200 190 1 1@120",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }
}
