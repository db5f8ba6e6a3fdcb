//! `weir-admin`: parses the command line, runs one command, prints its report, and turns the
//! outcome into an exit code scripts can trust.

use anyhow::Result;
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;
use weir_tools::cli::{
    Cli, ClusterCmd, Command, ConsumeArgs, GroupCmd, LogCmd, Net, ProduceArgs, ResetArgs, TopicCmd,
    TopicConfigCmd,
};
use weir_tools::client::Client;
use weir_tools::consume::{self, ConsumeOptions, KafkaFormat, Output, Start};
use weir_tools::error::AdminError;
use weir_tools::group::{self, ResetSpec, ResetTo};
use weir_tools::produce::{self, LineFormat, ProduceOptions};
use weir_tools::records::parse_compression;
use weir_tools::table::Report;
use weir_tools::timefmt::parse_time;
use weir_tools::{cluster, configs, logdump, logverify, topic};

/// The operation failed; the reason is printed on one line.
const EXIT_FAILED: u8 = 1;
/// `log verify` ran and found problems (what and where are printed on stdout).
const EXIT_CORRUPT: u8 = 3;

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

fn connect(net: &Net) -> Result<Client, AdminError> {
    Client::connect(&net.bootstrap_server)
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
            let mut client = connect(net)?;
            print(
                &cluster::describe(&mut client, *partition_warn_threshold)?,
                json,
            )
        }
        Command::Group(cmd) => print(&run_group(cmd)?, json),
        Command::Produce(args) => run_produce(args, json),
        Command::Consume(args) => run_consume(args, json),
        Command::Log(LogCmd::Dump { path, print_data }) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match logdump::dump(path, *print_data, json, &mut out) {
                // A reader that stopped early (`| head`) is not a failure.
                Err(logdump::DumpError::Output(e))
                    if e.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e.into()),
                Ok(_) => {
                    out.flush()?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Log(LogCmd::Verify { path }) => {
            let verified = logverify::verify(path)?;
            print(&verified.report(), json)?;
            if verified.ok() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "weir-admin: {}: {} problems found",
                    path.display(),
                    verified.problems_total
                );
                Ok(ExitCode::from(EXIT_CORRUPT))
            }
        }
    }
}

fn run_produce(args: &ProduceArgs, json: bool) -> Result<ExitCode> {
    let opts = ProduceOptions {
        topic: args.topic.get().to_string(),
        partition: args.partition,
        acks: produce::parse_acks(&args.acks)?,
        format: LineFormat::from_properties(&args.properties)?,
        extra_headers: args
            .headers
            .iter()
            .map(|h| produce::parse_header_arg(h))
            .collect::<Result<_, _>>()?,
        compression: parse_compression(&args.compression)?,
        batch_bytes: args.batch_size.max(1),
        linger: std::time::Duration::from_millis(args.linger_ms),
    };
    let mut client = connect(&args.net)?;
    let input = Box::new(std::io::BufReader::new(std::io::stdin()));
    let report = produce::run(&mut client, &opts, input)?;
    // Kafka's console producer prints nothing on success; the summary is for scripts.
    if json {
        print(&report, true)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn consume_start(args: &ConsumeArgs) -> Result<Start, AdminError> {
    if args.group.is_some() {
        return Ok(Start::Committed {
            reset_earliest: args.from_beginning,
        });
    }
    if args.from_beginning {
        return Ok(Start::Earliest);
    }
    if let Some(ts) = &args.from_timestamp {
        return Ok(Start::Timestamp(parse_time(ts)?));
    }
    match args.offset.as_deref() {
        None | Some("latest") => Ok(Start::Latest),
        Some("earliest") => Ok(Start::Earliest),
        Some(n) => match n.parse::<i64>() {
            Ok(o) if o >= 0 && args.partition.is_some() => Ok(Start::Offset(o)),
            Ok(o) if o >= 0 => Err(AdminError::Invalid(
                "--offset with a number needs --partition, as in Kafka".into(),
            )),
            _ => Err(AdminError::Invalid(format!(
                "--offset must be earliest, latest or a non-negative number, got '{n}'"
            ))),
        },
    }
}

fn run_consume(args: &ConsumeArgs, json: bool) -> Result<ExitCode> {
    let output = if json {
        Output::Json
    } else if let Some(f) = &args.format {
        Output::Template(consume::parse_template(f)?)
    } else {
        Output::Kafka(KafkaFormat::from_properties(&args.properties)?)
    };
    let opts = ConsumeOptions {
        topic: args.topic.get().to_string(),
        partition: args.partition,
        group: args.group.clone(),
        start: consume_start(args)?,
        max_messages: args.max_messages,
        exit_at_end: args.exit_at_end,
        timeout: args.timeout_ms.map(std::time::Duration::from_millis),
        output,
    };
    let mut client = connect(&args.net)?;
    let mut out = std::io::stdout().lock();
    let n = consume::run(&mut client, &opts, &mut out)?;
    // As Kafka's console consumer: the count goes to stderr, stdout holds only messages.
    eprintln!("Processed a total of {n} messages");
    Ok(ExitCode::SUCCESS)
}

fn run_group(cmd: &GroupCmd) -> Result<Report> {
    Ok(match cmd {
        GroupCmd::List { net, state } => group::list(&mut connect(net)?, state)?,
        GroupCmd::Describe { net, group } => group::describe(&mut connect(net)?, &group.group)?,
        GroupCmd::Delete { net, group } => group::delete(&mut connect(net)?, &group.group)?,
        GroupCmd::ResetOffsets(args) => run_reset(args)?,
    })
}

fn run_reset(args: &ResetArgs) -> Result<Report> {
    let to = if args.to_earliest {
        ResetTo::Earliest
    } else if args.to_latest {
        ResetTo::Latest
    } else if let Some(o) = args.to_offset {
        ResetTo::Offset(o)
    } else if let Some(t) = &args.to_datetime {
        ResetTo::Datetime(parse_time(t)?)
    } else if let Some(n) = args.shift_by {
        ResetTo::ShiftBy(n)
    } else {
        unreachable!("clap requires one reset target")
    };
    let mut client = connect(&args.net)?;
    Ok(group::reset_offsets(
        &mut client,
        &ResetSpec {
            group: &args.group,
            topics: &args.topic,
            all_topics: args.all_topics,
            to,
            execute: args.execute,
        },
    )?)
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
            &mut connect(net)?,
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
        } => topic::list(&mut connect(net)?, *exclude_internal)?,
        TopicCmd::Describe {
            net,
            topics,
            exclude_internal,
        } => topic::describe(&mut connect(net)?, &topics.get(), *exclude_internal)?,
        TopicCmd::Delete {
            net,
            topics,
            if_exists,
        } => topic::delete(&mut connect(net)?, &topics.get(), *if_exists)?,
        TopicCmd::AddPartitions {
            net,
            topic,
            partitions,
        } => topic::add_partitions(&mut connect(net)?, topic.get(), *partitions)?,
        TopicCmd::Unclean { net, topics } => {
            weir_tools::unclean::show(&mut connect(net)?, &topics.get())?
        }
        TopicCmd::Config(c) => match c {
            TopicConfigCmd::Get { net, topic, keys } => {
                configs::get(&mut connect(net)?, topic.get(), keys)?
            }
            TopicConfigCmd::Set {
                net,
                topic,
                configs,
            } => configs::set(&mut connect(net)?, topic.get(), configs)?,
            TopicConfigCmd::Delete { net, topic, keys } => {
                configs::delete(&mut connect(net)?, topic.get(), keys)?
            }
        },
    })
}
