//! `weir`: start a broker, as `kafka-server-start.sh` does:
//! `weir --config server.properties --override key=value ...`.

use clap::Parser;
use std::process::ExitCode;
use weir::config::{self, Cli};

fn main() -> ExitCode {
    weir::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let (config, warnings) = match config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weir: {e}");
            return ExitCode::from(2);
        }
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    match weir::runtime::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir: {e:#}");
            ExitCode::FAILURE
        }
    }
}
