#!/usr/bin/env bash
# Apache Kafka 4.4's command-line tools, run from the jars scripts/kafka-reference.sh fetches
# (Kafka's bin/*.sh scripts are not in Maven Central's jars; this maps their names to the main
# classes they run). Use them as Kafka's documentation shows, e.g.
#
#   scripts/kafka-tool.sh kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#   scripts/kafka-tool.sh kafka-producer-perf-test --topic t --num-records 100000 \
#       --record-size 1024 --throughput -1 --command-property bootstrap.servers=127.0.0.1:9092
#
# Env: KAFKA_HEAP_OPTS (default -Xmx512m), KAFKA_TOOL_CPUS (taskset CPU list, for benchmarks),
#      KAFKA_TOOL_JVM_OPTS (default: a quick start, the serial GC and the C1 compiler only, which
#      suits short runs; give e.g. -XX:+UseG1GC for performance tests)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"

tool="${1:-}"
case "$tool" in
  kafka-topics) main=org.apache.kafka.tools.TopicCommand ;;
  kafka-configs) main=org.apache.kafka.tools.ConfigCommand ;;
  kafka-console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-groups) main=org.apache.kafka.tools.GroupsCommand ;;
  kafka-get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
  kafka-producer-perf-test) main=org.apache.kafka.tools.ProducerPerformance ;;
  kafka-consumer-perf-test) main=org.apache.kafka.tools.ConsumerPerformance ;;
  kafka-verifiable-producer) main=org.apache.kafka.tools.VerifiableProducer ;;
  kafka-verifiable-consumer) main=org.apache.kafka.tools.VerifiableConsumer ;;
  kafka-dump-log) main=org.apache.kafka.tools.DumpLogSegments ;;
  kafka-delete-records) main=org.apache.kafka.tools.DeleteRecordsCommand ;;
  kafka-broker-api-versions) main=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  kafka-cluster) main=org.apache.kafka.tools.ClusterTool ;;
  kafka-log-dirs) main=org.apache.kafka.tools.LogDirsCommand ;;
  kafka-features) main=org.apache.kafka.tools.FeatureCommand ;;
  kafka-transactions) main=org.apache.kafka.tools.TransactionsCommand ;;
  kafka-leader-election) main=org.apache.kafka.tools.LeaderElectionCommand ;;
  kafka-metadata-quorum) main=org.apache.kafka.tools.MetadataQuorumCommand ;;
  kafka-storage) main=kafka.tools.StorageTool ;;
  *)
    echo "usage: $0 <kafka-tool> [args...]" >&2
    sed -n '/^  kafka-/s/^  \([a-z-]*\)).*/  \1/p' "$0" >&2
    exit 2 ;;
esac
shift
cp="$("$REPO/scripts/kafka-reference.sh" classpath)"
pre=()
if [ -n "${KAFKA_TOOL_CPUS:-}" ]; then pre=(taskset -c "$KAFKA_TOOL_CPUS"); fi
# Tools log warnings and errors to stderr only: their stdout stays what Kafka's docs show.
# shellcheck disable=SC2086
exec "${pre[@]}" java ${KAFKA_HEAP_OPTS:--Xmx512m} ${KAFKA_TOOL_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$REPO/tests/kafka-reference/log4j2.properties" \
  -Dweir.log.level=WARN -Dweir.log.target=SYSTEM_ERR -cp "$cp" "$main" "$@"
