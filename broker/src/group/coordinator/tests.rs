//! The coordinator on a host of its own: a fake `__consumer_offsets` that records appends or
//! fails them, and a clock the test sets. What only the integration tests reached before (a
//! write that fails under a commit or a static member's takeover) is checked here directly.

use super::*;
use crate::group::state::JoinRequest;
use std::cell::Cell;

#[derive(Default)]
struct FakeHost {
    now: Cell<i64>,
    ids: Cell<u8>,
    /// (partition, batch) of every append that succeeded.
    appended: RefCell<Vec<(i32, Bytes)>>,
    /// The failure every append gets, while set.
    fail: RefCell<Option<AppendFailure>>,
}

impl GroupHost for FakeHost {
    fn now_ms(&self) -> i64 {
        self.now.get()
    }

    fn random_id(&self) -> [u8; 16] {
        self.ids.set(self.ids.get() + 1);
        [self.ids.get(); 16]
    }

    fn is_stopping(&self) -> bool {
        false
    }

    async fn append_offsets(
        &self,
        partition: i32,
        batch: Bytes,
        _now_ms: i64,
    ) -> Result<(), AppendFailure> {
        if let Some(f) = self.fail.borrow().clone() {
            return Err(f);
        }
        self.appended.borrow_mut().push((partition, batch));
        Ok(())
    }
}

fn settings() -> GroupSettings {
    GroupSettings {
        initial_rebalance_delay_ms: 0,
        ..GroupSettings::default()
    }
}

fn run(f: impl AsyncFnOnce(Coordinator, FakeHost) + Send + 'static) {
    weir_storage::heartbeat::run_on_executor(|| async {
        let host = FakeHost::default();
        host.now.set(1_000_000);
        f(Coordinator::new(settings()), host).await
    })
}

/// An OffsetCommit outside any generation (as the admin client sends it), for `g`.
fn commit_call(group: &str, partitions: Vec<CommitPartition>) -> GroupCall {
    GroupCall::Commit(CommitCall {
        member: MemberCall {
            group: group.into(),
            member_id: String::new(),
            instance_id: None,
            generation: -1,
        },
        topics: vec![("t".into(), partitions)],
    })
}

fn partition(partition: i32, offset: i64, metadata: &str) -> CommitPartition {
    CommitPartition {
        partition,
        check: Ok(()),
        offset: Some(CommitOffset {
            offset,
            leader_epoch: 3,
            metadata: metadata.into(),
        }),
    }
}

async fn fetch(c: &Coordinator, host: &FakeHost, group: &str) -> Vec<(i32, Option<i64>)> {
    let call = GroupCall::Fetch {
        group: group.into(),
        topics: Some(vec![("t".into(), vec![0, 1, 2])]),
    };
    let GroupReply::Fetch(Ok(found)) = c.handle(host, call).await else {
        panic!("a fetch is answered")
    };
    let (_, parts) = &found[0];
    parts
        .iter()
        .map(|(p, c)| (*p, c.as_ref().map(|c| c.offset)))
        .collect()
}

#[test]
fn a_commit_is_written_to_the_groups_partition_then_cached() {
    run(async |c, host| {
        let unknown = CommitPartition {
            check: Err(GroupError::UnknownTopicOrPartition),
            ..partition(1, 7, "")
        };
        let too_much = partition(2, 9, &"m".repeat(OFFSET_METADATA_MAX_BYTES + 1));
        let call = commit_call("g", vec![partition(0, 42, "meta"), unknown, too_much]);
        let GroupReply::Commit(results) = c.handle(&host, call).await else {
            panic!("a commit is answered")
        };
        assert_eq!(
            results,
            vec![(
                "t".to_string(),
                vec![
                    (0, Ok(())),
                    (1, Err(GroupError::UnknownTopicOrPartition)),
                    (2, Err(GroupError::OffsetMetadataTooLarge)),
                ]
            )]
        );
        let appended = host.appended.borrow().clone();
        assert_eq!(appended.len(), 1, "one batch for the commit");
        assert_eq!(appended[0].0, partition_for("g", c.offsets_partitions()));
        assert_eq!(
            fetch(&c, &host, "g").await,
            vec![(0, Some(42)), (1, None), (2, None)]
        );
    });
}

#[test]
fn a_commit_whose_write_fails_is_refused_and_not_cached() {
    run(async |c, host| {
        let refused = |too_large| AppendFailure::Refused {
            code: 10,
            message: None,
            too_large,
        };
        for (failure, expected) in [
            (AppendFailure::NotHere, GroupError::NotCoordinator),
            (refused(true), GroupError::InvalidCommitOffsetSize),
            (refused(false), GroupError::CoordinatorNotAvailable),
        ] {
            *host.fail.borrow_mut() = Some(failure);
            let unknown = CommitPartition {
                check: Err(GroupError::UnknownTopicOrPartition),
                ..partition(1, 7, "")
            };
            let call = commit_call("g", vec![partition(0, 42, ""), unknown]);
            let GroupReply::Commit(results) = c.handle(&host, call).await else {
                panic!("a commit is answered")
            };
            assert_eq!(
                results[0].1,
                vec![
                    (0, Err(expected)),
                    (1, Err(GroupError::UnknownTopicOrPartition))
                ]
            );
            assert_eq!(
                fetch(&c, &host, "g").await,
                vec![(0, None), (1, None), (2, None)]
            );
        }
    });
}

fn static_join(member_id: &str) -> GroupCall {
    GroupCall::Join {
        group: "g".into(),
        req: JoinRequest {
            member_id: member_id.into(),
            instance_id: Some("i1".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
            require_known_member_id: true,
            reason: None,
            supports_skip_assignment: false,
        },
    }
}

#[test]
fn a_static_takeover_whose_membership_cannot_be_stored_is_taken_back() {
    run(async |c, host| {
        let GroupReply::Join(joined) = c.handle(&host, static_join("")).await else {
            panic!("a join is answered")
        };
        assert_eq!((joined.error, joined.generation), (None, 1));
        let old = joined.member_id;
        let sync = SyncCall {
            member: MemberCall {
                group: "g".into(),
                member_id: old.clone(),
                instance_id: Some("i1".into()),
                generation: 1,
            },
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(old.clone(), Bytes::from_static(b"A"))],
        };
        let GroupReply::Sync(synced) = c.handle(&host, GroupCall::Sync(sync)).await else {
            panic!("a sync is answered")
        };
        assert_eq!((synced.error, &synced.assignment[..]), (None, &b"A"[..]));
        assert_eq!(
            host.appended.borrow().len(),
            1,
            "the Stable group is stored"
        );

        // The instance restarts while the log cannot be written: the takeover is refused
        // and taken back, so the old member id still holds the instance.
        *host.fail.borrow_mut() = Some(AppendFailure::Refused {
            code: 15,
            message: None,
            too_large: false,
        });
        let GroupReply::Join(refused) = c.handle(&host, static_join("")).await else {
            panic!("a join is answered")
        };
        assert_eq!(refused.error, Some(GroupError::CoordinatorNotAvailable));
        let heartbeat = MemberCall {
            group: "g".into(),
            member_id: old,
            instance_id: Some("i1".into()),
            generation: 1,
        };
        let GroupReply::Heartbeat(alive) = c.handle(&host, GroupCall::Heartbeat(heartbeat)).await
        else {
            panic!("a heartbeat is answered")
        };
        assert_eq!(alive, Ok(()));
    });
}
