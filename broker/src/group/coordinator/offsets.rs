//! OffsetCommit, OffsetFetch and OffsetDelete on the group's core: committed offsets are
//! records in `__consumer_offsets`, answered once written, and cached in the group.

use super::{CommitCall, Coordinator, GroupHost, Slot, TopicResults, OFFSET_METADATA_MAX_BYTES};
use crate::group::records::{self, Committed};
use crate::group::state::State;
use crate::group::GroupError;
use weir_storage::batch::Record;

impl Coordinator {
    pub(super) async fn commit(
        &self,
        host: &impl GroupHost,
        call: CommitCall,
    ) -> TopicResults<Result<(), GroupError>> {
        let CommitCall { member: m, topics } = call;
        let group_id = m.group;
        let all = |e: GroupError| -> TopicResults<Result<(), GroupError>> {
            topics
                .iter()
                .map(|(t, ps)| {
                    (
                        t.clone(),
                        ps.iter().map(|p| (p.partition, Err(e))).collect(),
                    )
                })
                .collect()
        };
        let valid = {
            let mut groups = self.groups.borrow_mut();
            let slot = groups
                .entry(group_id.clone())
                .or_insert_with(|| Slot::new(&group_id));
            slot.group.validate_commit(
                &m.member_id,
                m.instance_id.as_deref(),
                m.generation,
                host.now_ms(),
            )
        };
        if let Err(e) = valid {
            return all(e);
        }
        let now = host.now_ms();
        let mut records = Vec::new();
        let mut commits = Vec::new();
        let mut results: TopicResults<Result<(), GroupError>> = Vec::new();
        for (topic, parts) in &topics {
            let mut outcomes = Vec::new();
            for p in parts {
                let Some(o) = &p.offset else {
                    continue;
                };
                let outcome = match p.check {
                    Err(e) => Err(e),
                    Ok(()) if o.metadata.len() > OFFSET_METADATA_MAX_BYTES => {
                        Err(GroupError::OffsetMetadataTooLarge)
                    }
                    Ok(()) => {
                        let c = Committed {
                            offset: o.offset,
                            leader_epoch: o.leader_epoch,
                            metadata: o.metadata.clone(),
                            commit_timestamp: now,
                        };
                        records.push(Record {
                            key: Some(records::offset_key(&group_id, topic, p.partition)),
                            value: Some(records::offset_value(&c)),
                            ..Record::default()
                        });
                        commits.push(((topic.clone(), p.partition), c));
                        Ok(())
                    }
                };
                outcomes.push((p.partition, outcome));
            }
            results.push((topic.clone(), outcomes));
        }
        if let Err(e) = self.write(host, &group_id, records).await {
            for (_, parts) in results.iter_mut() {
                for (_, c) in parts.iter_mut().filter(|(_, c)| c.is_ok()) {
                    *c = Err(e);
                }
            }
            return results;
        }
        let mut groups = self.groups.borrow_mut();
        let slot = groups
            .entry(group_id.clone())
            .or_insert_with(|| Slot::new(&group_id));
        slot.group.offsets.extend(commits);
        results
    }

    /// The committed offsets of the given partitions (`None` where nothing is committed), or
    /// of every partition the group has committed.
    pub(super) fn fetch(
        &self,
        group: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> TopicResults<Option<Committed>> {
        let groups = self.groups.borrow();
        let offsets = groups.get(group).map(|s| &s.group.offsets);
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, parts)| {
                    let found = parts
                        .into_iter()
                        .map(|p| {
                            let c = offsets.and_then(|o| o.get(&(t.clone(), p)).cloned());
                            (p, c)
                        })
                        .collect();
                    (t, found)
                })
                .collect(),
            None => {
                let mut all: TopicResults<Option<Committed>> = Vec::new();
                for ((t, p), c) in offsets.into_iter().flatten() {
                    match all.last_mut() {
                        Some((last, parts)) if last == t => parts.push((*p, Some(c.clone()))),
                        _ => all.push((t.clone(), vec![(*p, Some(c.clone()))])),
                    }
                }
                all
            }
        }
    }

    /// OffsetDelete: an empty group's offsets, or a consumer group's offsets of topics no
    /// member subscribes to.
    pub(super) async fn offset_delete(
        &self,
        host: &impl GroupHost,
        group: String,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<TopicResults<Result<(), GroupError>>, GroupError> {
        let (results, removed) = {
            let mut groups = self.groups.borrow_mut();
            let Some(slot) = groups.get_mut(&group).filter(|s| !s.group.is_gone()) else {
                return Err(GroupError::GroupIdNotFound);
            };
            let g = &mut slot.group;
            if g.state != State::Empty && g.protocol_type.as_deref() != Some("consumer") {
                return Err(GroupError::NonEmptyGroup);
            }
            let subscribed: Vec<String> = if g.state == State::Empty {
                vec![]
            } else {
                let protocol = g.protocol.clone().unwrap_or_default();
                g.members
                    .values()
                    .flat_map(|m| {
                        m.protocols
                            .iter()
                            .find(|(n, _)| *n == protocol)
                            .and_then(|(_, b)| subscribed_topics(b))
                            .unwrap_or_default()
                    })
                    .collect()
            };
            let mut results = Vec::new();
            let mut removed = Vec::new();
            for (name, partitions) in topics {
                let busy = subscribed.contains(&name);
                let mut outcomes = Vec::new();
                for p in partitions {
                    if busy {
                        outcomes.push((p, Err(GroupError::GroupSubscribedToTopic)));
                    } else {
                        if g.offsets.remove(&(name.clone(), p)).is_some() {
                            removed.push((name.clone(), p));
                        }
                        outcomes.push((p, Ok(())));
                    }
                }
                results.push((name, outcomes));
            }
            (results, removed)
        };
        let tombstones = removed
            .iter()
            .map(|(t, p)| Record {
                key: Some(records::offset_key(&group, t, *p)),
                value: None,
                ..Record::default()
            })
            .collect();
        self.write(host, &group, tombstones).await?;
        Ok(results)
    }
}

/// Topics a consumer-protocol member subscribes to (ConsumerProtocolSubscription: version,
/// then an array of topic names).
fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut pos = 2;
    let count = i32::from_be_bytes(metadata.get(pos..pos + 4)?.try_into().ok()?);
    pos += 4;
    let mut out = Vec::new();
    for _ in 0..count.clamp(0, 100_000) {
        let len = i16::from_be_bytes(metadata.get(pos..pos + 2)?.try_into().ok()?);
        pos += 2;
        let len = usize::try_from(len).ok()?;
        out.push(String::from_utf8(metadata.get(pos..pos + len)?.to_vec()).ok()?);
        pos += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_parsed_from_consumer_metadata() {
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        assert_eq!(subscribed_topics(&m), Some(vec!["a".into(), "bc".into()]));
        m.truncate(10);
        assert_eq!(subscribed_topics(&m), None);
    }
}
