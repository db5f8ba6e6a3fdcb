//! `weir-admin`: parses the command line, runs one command, prints its report, and turns the
//! outcome into an exit code scripts can trust.

use anyhow::Result;
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use weir_tools::cli::{Cli, ClusterCmd, Command, TopicCmd, TopicConfigCmd};
use weir_tools::client::Client;
use weir_tools::table::Report;
use weir_tools::{cluster, configs, topic};

/// The operation failed; the reason is printed on one line.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of causes joined, never a debug dump.
            eprintln!("weir-admin: {}", one_line(&e));
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

fn print(report: &Report, json: bool) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(report.render(json).as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let json = cli.json;
    match &cli.command {
        Command::Topic(cmd) => print(&run_topic(cmd)?, json),
        Command::Cluster(ClusterCmd::Describe {
            net,
            partition_warn_threshold,
        }) => {
            let mut client = Client::connect(&net.bootstrap_server)?;
            print(
                &cluster::describe(&mut client, *partition_warn_threshold)?,
                json,
            )
        }
        _ => todo!(),
    }
}

fn run_topic(cmd: &TopicCmd) -> Result<Report> {
    Ok(match cmd {
        TopicCmd::Create {
            net,
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => topic::create(
            &mut Client::connect(&net.bootstrap_server)?,
            &topic::CreateSpec {
                name: topic.get(),
                partitions: *partitions,
                replication_factor: *replication_factor,
                configs,
                if_not_exists: *if_not_exists,
            },
        )?,
        TopicCmd::List {
            net,
            exclude_internal,
        } => topic::list(
            &mut Client::connect(&net.bootstrap_server)?,
            *exclude_internal,
        )?,
        TopicCmd::Describe {
            net,
            topics,
            exclude_internal,
        } => topic::describe(
            &mut Client::connect(&net.bootstrap_server)?,
            &topics.get(),
            *exclude_internal,
        )?,
        TopicCmd::Delete {
            net,
            topics,
            if_exists,
        } => topic::delete(
            &mut Client::connect(&net.bootstrap_server)?,
            &topics.get(),
            *if_exists,
        )?,
        TopicCmd::AddPartitions {
            net,
            topic,
            partitions,
        } => topic::add_partitions(
            &mut Client::connect(&net.bootstrap_server)?,
            topic.get(),
            *partitions,
        )?,
        TopicCmd::Config(c) => match c {
            TopicConfigCmd::Get { net, topic, keys } => configs::get(
                &mut Client::connect(&net.bootstrap_server)?,
                topic.get(),
                keys,
            )?,
            TopicConfigCmd::Set {
                net,
                topic,
                configs,
            } => configs::set(
                &mut Client::connect(&net.bootstrap_server)?,
                topic.get(),
                configs,
            )?,
            TopicConfigCmd::Delete { net, topic, keys } => configs::delete(
                &mut Client::connect(&net.bootstrap_server)?,
                topic.get(),
                keys,
            )?,
        },
    })
}
