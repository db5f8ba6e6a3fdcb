//! Starts the real `weir` broker on a free port in a temporary directory and runs short
//! `produce`, `consume` and `e2e` benches against it, checking counts, losses and duplicates.
//! The broker binary comes from `WEIR_BIN`, default `../target/debug/weir` next to this crate.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Broker {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Child::kill signals this child's own PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn weir_bin() -> PathBuf {
    match std::env::var_os("WEIR_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/weir"),
    }
}

fn start_broker() -> Option<Broker> {
    let bin = weir_bin();
    if !bin.exists() {
        // CI builds the broker first; there a missing binary is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "no broker binary at {} in CI",
            bin.display()
        );
        eprintln!(
            "SKIPPED: no broker binary at {} (build it with `cargo build -p weir` or set WEIR_BIN)",
            bin.display()
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let child = Command::new(&bin)
        .arg("--override")
        .arg(format!("log.dirs={}", dir.path().display()))
        .arg("--override")
        .arg(format!("listeners=PLAINTEXT://{addr}"))
        .arg("--override")
        .arg("weir.cores=1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the broker");
    let broker = Broker {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "broker did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(broker)
}

/// Runs weir-bench and returns its JSON summary (the last stdout line) and whether it exited 0.
fn bench(args: &[&str]) -> (serde_json::Value, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir-bench"))
        .args(args)
        .args(["--json", "--quiet", "--cores", "1"])
        .output()
        .expect("running weir-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The human-readable tables go to stderr with --json: the latency histograms in the CI log.
    eprintln!("$ weir-bench {}\n{stderr}", args.join(" "));
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr: {stderr}"));
    let summary = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    (summary, out.status.success())
}

#[test]
fn produce_consume_and_e2e_against_weir() {
    let Some(broker) = start_broker() else {
        return;
    };
    let server = broker.addr.to_string();

    let (p, ok) = bench(&[
        "produce",
        "--bootstrap-server",
        &server,
        "--topic",
        "bench-produce",
        "--partitions",
        "3",
        "--messages",
        "3000",
        "--message-size",
        "512",
        "--producers",
        "2",
    ]);
    assert!(ok, "produce failed: {p}");
    assert_eq!(p["produce"]["sent"], 3000);
    assert_eq!(p["produce"]["acked"], 3000);
    assert_eq!(p["produce"]["ack_latency"]["count"], 3000);

    let (c, ok) = bench(&[
        "consume",
        "--bootstrap-server",
        &server,
        "--topic",
        "bench-produce",
        "--partitions",
        "3",
        "--messages",
        "3000",
        "--consumers",
        "2",
        "--idle-timeout",
        "5s",
    ]);
    assert!(ok, "consume failed: {c}");
    assert_eq!(c["consume"]["messages_read"], 3000);
    assert_eq!(c["consume"]["lag"], 0);

    let (e, ok) = bench(&[
        "e2e",
        "--bootstrap-server",
        &server,
        "--topic",
        "bench-e2e",
        "--partitions",
        "4",
        "--rate",
        "2000",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--producers",
        "2",
        "--consumers",
        "2",
        "--idle-timeout",
        "5s",
    ]);
    assert!(ok, "e2e failed: {e}");
    let v = &e["verification"];
    assert_eq!(v["sent"], 5000, "{v}");
    assert_eq!(v["received_distinct"], 5000);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["duplicates"], 0);
    assert_eq!(e["e2e_latency"]["count"], 4000);

    // advise without given rates measures one partition (produce, then read back) first.
    let (a, ok) = bench(&[
        "advise",
        "--bootstrap-server",
        &server,
        "--topic",
        "bench-advise",
        "--target-mb-per-sec",
        "50",
        "--group-consumers",
        "3",
        "--duration",
        "1s",
    ]);
    assert!(ok, "advise failed: {a}");
    assert_eq!(a["measured"]["topic"], "bench-advise-advise");
    let producer = a["producer_mb_per_partition"].as_f64().expect("a rate");
    let consumer = a["consumer_mb_per_partition"].as_f64().expect("a rate");
    assert!(producer > 0.0 && consumer > 0.0, "{a}");
    let partitions = a["partitions"].as_u64().expect("a count");
    assert!(partitions >= 3, "at least one partition per consumer: {a}");
    assert!(partitions as f64 >= 50.0 / producer - 1.0, "{a}");

    // A sweep over two counts, two rounds, after settling: each count visited twice, every
    // message acknowledged, the settling load not counted.
    let (s, ok) = bench(&[
        "sweep",
        "--bootstrap-server",
        &server,
        "--topic",
        "bench-sweep",
        "--partition-counts",
        "1,5",
        "--rounds",
        "2",
        "--settle",
        "300ms",
        "--messages",
        "500",
        "--message-size",
        "256",
    ]);
    assert!(ok, "sweep failed: {s}");
    assert_eq!(s["settle_seconds"], 0.3, "{s}");
    let rows = s["sweep"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{s}");
    for (row, n) in rows.iter().zip([1, 5]) {
        assert_eq!(row["partitions"], n);
        assert_eq!(row["failed"], 0);
        assert_eq!(row["ack_latency"]["count"], 1000, "{row}");
        let visits = row["mb_per_sec_by_round"].as_array().expect("visits");
        assert_eq!(visits.len(), 2, "{row}");
        assert!(
            visits.iter().all(|v| v.as_f64().is_some_and(|x| x > 0.0)),
            "{row}"
        );
    }
}
