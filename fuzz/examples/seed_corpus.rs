//! Writes the seed inputs of every target to `fuzz/corpus/<target>/seed-<n>`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`. Seeds are built with
//! Weir's and kafka-protocol's encoders, so they change only when a format does.

use std::path::Path;
use weir_fuzz::seeds;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let controller: Vec<Vec<u8>> = seeds::controller_requests()
        .into_iter()
        .map(|r| [vec![0u8], r].concat())
        .chain(
            seeds::controller_responses()
                .into_iter()
                .map(|r| [vec![1u8], r].concat()),
        )
        .collect();
    let raft: Vec<Vec<u8>> = [0u8, 1]
        .into_iter()
        .flat_map(|leader| {
            seeds::raft_messages().into_iter().map(move |m| {
                let mut v = vec![leader];
                v.extend_from_slice(&(m.len() as u16 | 0x8000).to_be_bytes());
                v.extend_from_slice(&m);
                v
            })
        })
        .collect();
    let config = [
        (
            "config/server.properties",
            include_str!("../../config/server.properties"),
            "",
        ),
        (
            "",
            "num.partitions = 3\nlog.dirs:/tmp/w\\\n  eir\n# c\n! c\nlisteners=PLAINTEXT://:9092",
            "log.retention.hours=24\ncleanup.policy=compact\nmin.insync.replicas=2\n",
        ),
        (
            "",
            "",
            "compression.type=zstd\nmessage.timestamp.type=LogAppendTime\nsegment.bytes=1048576\n",
        ),
    ]
    .iter()
    .map(|(_, props, overrides)| {
        let mut v = (props.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(props.as_bytes());
        v.extend_from_slice(overrides.as_bytes());
        v
    })
    .collect();
    let sets: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("kafka_request", seeds::kafka_request_inputs()),
        ("records", seeds::records_inputs()),
        ("follower_fetch", seeds::follower_fetch_inputs()),
        ("config", config),
        ("controller_wire", controller),
        ("raft", raft),
        ("metadata", weir_fuzz::metadata_inputs()),
        ("disk_files", weir_fuzz::disk_files_inputs()),
    ];
    for (target, inputs) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), input)?;
        }
        println!("{target}: {} seeds", inputs.len());
    }
    Ok(())
}
