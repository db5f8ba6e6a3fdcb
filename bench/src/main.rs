//! weir-bench: a thread-per-core Kafka load generator with HdrHistogram latencies.

mod cli;
mod client;
mod modes;
mod pacing;
mod payload;
mod plot;
mod report;
mod runtime;

use clap::Parser;
use cli::{Cli, Mode};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Produce(a) => modes::produce::run(a),
        Mode::Consume(a) => modes::consume::run(a),
        Mode::E2e(a) => modes::e2e::run(a),
        Mode::Sweep(a) => modes::sweep::run(a),
        Mode::Advise(a) => modes::advise::run(a),
        Mode::Baseline(a) => modes::baseline::run(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("weir-bench: FAILED (see the summary above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("weir-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
