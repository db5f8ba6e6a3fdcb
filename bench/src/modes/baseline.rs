//! `baseline`: the physical limit of this machine for the same bytes — a raw TCP sender into a
//! plain socket→page-cached-file sink over loopback, no protocol. Files roll every `SEGMENT`
//! bytes, as a broker's segments would, and are kept until the measurement ends.
//!
//! Measured the way produce is: bytes written during the warm-up are not counted. Why both
//! rules: the page cache takes the first gigabytes of a run at memory speed and then throttles
//! writers to what writeback sustains (buffered `dd` here: 711 MB/s over its first 3 s, ~380 MB/s
//! after 10 s), and a deleted file's dirty pages are dropped unwritten. A baseline counting its
//! first seconds, or deleting what it wrote, measured a limit no broker that keeps its data and
//! excludes its warm-up can reach.

use crate::cli::BaselineArgs;
use crate::report::Throughput;
use anyhow::Context;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEGMENT: u64 = 1 << 30;

/// Sends `chunk`-byte writes for `warmup` + `duration` from one thread into a sink thread that
/// appends what it reads to files in `dir`; returns what the sink wrote after the warm-up and
/// over how long.
pub fn measure(
    chunk: usize,
    warmup: Duration,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Throughput> {
    let listener = TcpListener::bind("127.0.0.1:0").context("baseline sink: bind")?;
    let addr = listener.local_addr()?;
    let dir = tempfile_dir(dir)?;
    let sink_dir = dir.clone();
    let sink = std::thread::spawn(move || -> anyhow::Result<(u64, Duration)> {
        let (mut sock, _) = listener.accept().context("baseline sink: accept")?;
        let mut buf = vec![0u8; chunk.max(4096)];
        let mut in_segment = 0u64;
        let mut segment = 0u32;
        let open = |n: u32| File::create(sink_dir.join(format!("{n:08}.log")));
        let mut file = open(segment).context("baseline sink: file")?;
        // (when counting started, bytes written since)
        let mut counted: Option<(Instant, u64)> = None;
        let mut first: Option<Instant> = None;
        loop {
            let n = sock.read(&mut buf).context("baseline sink: read")?;
            if n == 0 {
                break;
            }
            let now = Instant::now();
            let start = *first.get_or_insert(now);
            file.write_all(&buf[..n]).context("baseline sink: write")?;
            if now >= start + warmup {
                counted.get_or_insert((now, 0)).1 += n as u64;
            }
            in_segment += n as u64;
            if in_segment >= SEGMENT {
                segment += 1;
                file = open(segment)?;
                in_segment = 0;
            }
        }
        Ok(counted.map_or((0, Duration::ZERO), |(since, bytes)| {
            (bytes, since.elapsed())
        }))
    });
    let mut sock = TcpStream::connect(addr).context("baseline sender: connect")?;
    sock.set_nodelay(true)?;
    let data = vec![0x5au8; chunk];
    let end = Instant::now() + warmup + duration;
    while Instant::now() < end {
        sock.write_all(&data).context("baseline sender: write")?;
    }
    drop(sock);
    let outcome = sink
        .join()
        .map_err(|_| anyhow::anyhow!("baseline sink panicked"));
    let _ = std::fs::remove_dir_all(&dir);
    let (bytes, elapsed) = outcome??;
    Ok(Throughput {
        messages: 0,
        bytes,
        seconds: elapsed.as_secs_f64(),
    })
}

pub fn run(args: BaselineArgs) -> anyhow::Result<bool> {
    let t = measure(args.batch_size, args.warmup, args.duration, &args.dir)?;
    let text = format!(
        "baseline (raw TCP -> page-cached file, {} B writes): {:.1} MB in {:.2} s = {:.2} MB/s\n",
        args.batch_size,
        t.bytes as f64 / 1e6,
        t.seconds,
        t.mb_per_sec()
    );
    let summary = serde_json::json!({
        "mode": "baseline",
        "ok": true,
        "batch_size": args.batch_size,
        "baseline": t.json(),
    });
    if args.json {
        eprint!("{text}");
        println!("{summary}");
    } else {
        print!("{text}");
    }
    Ok(true)
}

fn tempfile_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    let dir = parent.join(format!("weir-bench-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_moves_bytes_into_files() {
        let dir = std::env::temp_dir();
        let t = measure(16 << 10, Duration::ZERO, Duration::from_millis(200), &dir).unwrap();
        assert!(t.bytes > 0 && t.bytes.is_multiple_of(16 << 10), "{t:?}");
        assert!(t.seconds > 0.0);
    }

    #[test]
    fn baseline_does_not_count_the_warmup() {
        let dir = std::env::temp_dir();
        let t = measure(
            16 << 10,
            Duration::from_millis(300),
            Duration::from_millis(200),
            &dir,
        )
        .unwrap();
        assert!(t.bytes > 0, "{t:?}");
        // Counting starts after the warm-up, so the counted time is about the duration, not
        // the whole run (generous bound: the sink may lag the sender a little).
        assert!(t.seconds < 0.45, "{t:?}");
    }
}
