use super::*;
use crate::controller::testkit::image_with_brokers;
use crate::metadata::records::{MetadataRecord, PartitionRecord, TopicRecord};

#[test]
fn an_even_cluster_gets_the_striped_pattern() {
    let img = image_with_brokers(&[(1, false), (2, false), (3, false)]);
    let mut p = Placer::new(&img);
    let got: Vec<_> = (0..3).map(|_| p.place(3).unwrap()).collect();
    assert_eq!(got, vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]]);
}

#[test]
fn leaders_and_replicas_spread_evenly_also_across_topics() {
    let mut img = image_with_brokers(&[(1, false), (2, false), (3, false), (4, false)]);
    // Five topics of three partitions, RF 2: each placed against the image the previous built.
    for t in 0..5u8 {
        let id = [t + 1; 16];
        img.apply(&MetadataRecord::Topic(TopicRecord {
            name: format!("t{t}"),
            id,
        }));
        let mut placer = Placer::new(&img);
        for partition in 0..3 {
            let replicas = placer.place(2).unwrap();
            assert_ne!(replicas[0], replicas[1]);
            img.apply(&MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition,
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                elr: vec![],
                last_known_elr: vec![],
                leader_epoch: 0,
                partition_epoch: 0,
            }));
        }
    }
    let mut leaders = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    for p in img.topics().flat_map(|t| t.partitions.iter()) {
        *leaders.entry(p.replicas[0]).or_insert(0) += 1;
        for r in &p.replicas {
            *replicas.entry(*r).or_insert(0) += 1;
        }
    }
    // 15 leaderships and 30 replicas over 4 brokers: at most one apart.
    let spread = |m: &BTreeMap<i32, i32>| m.values().max().unwrap() - m.values().min().unwrap();
    assert_eq!(leaders.len(), 4);
    assert!(spread(&leaders) <= 1, "{leaders:?}");
    assert!(spread(&replicas) <= 1, "{replicas:?}");
}

#[test]
fn fenced_brokers_never_lead_and_follow_last() {
    let img = image_with_brokers(&[(1, true), (2, false), (3, false)]);
    let mut p = Placer::new(&img);
    for _ in 0..6 {
        let r = p.place(2).unwrap();
        assert!(!r.contains(&1), "{r:?}: unfenced brokers suffice");
    }
    let r = p.place(3).unwrap();
    assert_ne!(r[0], 1);
    assert!(r.contains(&1), "RF 3 needs the fenced broker as a follower");
}

#[test]
fn too_few_brokers_is_kafkas_invalid_replication_factor() {
    let img = image_with_brokers(&[(1, false), (2, false)]);
    let mut p = Placer::new(&img);
    assert_eq!(
        p.place(3).unwrap_err(),
        "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
    );
    assert!(p.place(0).unwrap_err().contains("must be positive"));
    let fenced = image_with_brokers(&[(1, true)]);
    assert_eq!(
        Placer::new(&fenced).place(1).unwrap_err(),
        "All brokers are currently fenced."
    );
    assert!(Placer::new(&MetadataImage::default()).place(1).is_err());
}

#[test]
fn manual_assignments_are_checked_as_kafka_does() {
    let img = image_with_brokers(&[(1, false), (2, true)]);
    assert!(validate_manual(&img, &[1, 2], Some(2)).is_ok());
    let msg = |r: Result<(), ControllerError>| r.unwrap_err().message().to_string();
    assert!(msg(validate_manual(&img, &[], None)).contains("empty replica list"));
    assert!(msg(validate_manual(&img, &[1, 7], None)).contains("broker 7, but no such broker"));
    assert!(msg(validate_manual(&img, &[1, 1], None)).contains("broker 1 more than once"));
    assert!(msg(validate_manual(&img, &[1], Some(2))).contains("1 replica(s)"));
    assert_eq!(initial_isr(&img, &[2, 1]), vec![1]);
}
