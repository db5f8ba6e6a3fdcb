package dev.weir.javaclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Test;

/** The AdminClient: topics, partitions, configs, offsets, records, groups, cluster. */
class AdminTest {
    private static final long T = 30; // seconds: a bound on each admin call, never a speed check
    private final TestBroker broker = TestBroker.get();

    private static <V> V get(org.apache.kafka.common.KafkaFuture<V> f) throws Exception {
        return f.get(T, TimeUnit.SECONDS);
    }

    private void produce(String topic, int partition, int n, long baseTs) throws Exception {
        try (KafkaProducer<String, String> p = Clients.producer(Map.of())) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, partition, baseTs + i, "k" + i, "v" + i));
            }
            p.flush();
        }
    }

    @Test
    void createDescribeDeleteTopics() throws Exception {
        String name = "adm-" + Clients.group();
        try (Admin a = broker.admin()) {
            get(a.createTopics(List.of(new NewTopic(name, 3, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all());
            ExecutionException dup = assertThrows(ExecutionException.class,
                    () -> get(a.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all()));
            assertInstanceOf(TopicExistsException.class, dup.getCause());

            assertTrue(get(a.listTopics().names()).contains(name));
            TopicDescription d = get(a.describeTopics(List.of(name)).allTopicNames()).get(name);
            assertEquals(3, d.partitions().size());
            assertNotNull(d.topicId());
            assertEquals(1, d.partitions().get(0).replicas().size());
            assertEquals(d.topicId(), get(a.describeTopics(
                    org.apache.kafka.common.TopicCollection.ofTopicIds(List.of(d.topicId())))
                    .allTopicIds()).get(d.topicId()).topicId());

            get(a.deleteTopics(List.of(name)).all());
            long deadline = System.nanoTime() + Duration.ofSeconds(T).toNanos();
            while (get(a.listTopics().names()).contains(name) && System.nanoTime() < deadline) {
                TestBroker.sleep(100);
            }
            assertFalse(get(a.listTopics().names()).contains(name));
            ExecutionException gone = assertThrows(ExecutionException.class,
                    () -> get(a.describeTopics(List.of(name)).allTopicNames()));
            assertInstanceOf(UnknownTopicOrPartitionException.class, gone.getCause());
        }
    }

    @Test
    void createPartitions() throws Exception {
        String topic = broker.createTopic("parts", 2, Map.of());
        try (Admin a = broker.admin()) {
            get(a.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
            assertEquals(5, get(a.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size());
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> get(a.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all()));
            assertInstanceOf(InvalidPartitionsException.class, e.getCause());
        }
        produce(topic, 4, 3, System.currentTimeMillis());
        assertEquals(3, Clients.readAll(new TopicPartition(topic, 4), 3).size());
    }

    @Test
    void describeAndAlterConfigs() throws Exception {
        String topic = broker.createTopic("cfg", 1, Map.of("retention.ms", "100000"));
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin a = broker.admin()) {
            Config c = get(a.describeConfigs(List.of(res)).all()).get(res);
            assertEquals("100000", c.get("retention.ms").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());
            assertEquals("delete", c.get("cleanup.policy").value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("cleanup.policy").source());
            assertEquals("1048588", c.get("max.message.bytes").value());

            get(a.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("segment.bytes", "10485760"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
            c = get(a.describeConfigs(List.of(res)).all()).get(res);
            assertEquals("10485760", c.get("segment.bytes").value());
            assertEquals("604800000", c.get("retention.ms").value(), "deleted override falls back to the default");
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("retention.ms").source());

            ExecutionException bad = assertThrows(ExecutionException.class, () -> get(a.incrementalAlterConfigs(
                    Map.of(res, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "soon"),
                            AlterConfigOp.OpType.SET)))).all()));
            assertInstanceOf(org.apache.kafka.common.errors.InvalidConfigurationException.class, bad.getCause());

            ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER,
                    Integer.toString(get(a.describeCluster().nodes()).iterator().next().id()));
            Config b = get(a.describeConfigs(List.of(brokerRes)).all()).get(brokerRes);
            assertEquals("1048588", b.get("message.max.bytes").value());
            assertNotNull(b.get("log.retention.hours"));
        }
    }

    /** Kafka's synonyms: a topic config names the broker key it falls back to. */
    @Test
    void describeConfigsSynonyms() throws Exception {
        String topic = broker.createTopic("syn", 1, Map.of("cleanup.policy", "compact"));
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin a = broker.admin()) {
            Config c = get(a.describeConfigs(List.of(res),
                    new org.apache.kafka.clients.admin.DescribeConfigsOptions().includeSynonyms(true)).all()).get(res);
            List<ConfigEntry.ConfigSynonym> syn = c.get("cleanup.policy").synonyms();
            assertEquals(2, syn.size(), "the topic's override, then the broker default: " + syn);
            assertEquals("cleanup.policy", syn.get(0).name());
            assertEquals("compact", syn.get(0).value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, syn.get(0).source());
            assertEquals("log.cleanup.policy", syn.get(1).name());
            assertEquals("delete", syn.get(1).value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, syn.get(1).source());
        }
    }

    @Test
    void listOffsets() throws Exception {
        String topic = broker.createTopic("lo", 1, Map.of());
        long base = 1_700_000_000_000L;
        produce(topic, 0, 10, base);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.admin()) {
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r;
            r = get(a.listOffsets(Map.of(tp, OffsetSpec.earliest())).all());
            assertEquals(0, r.get(tp).offset());
            r = get(a.listOffsets(Map.of(tp, OffsetSpec.latest())).all());
            assertEquals(10, r.get(tp).offset());
            r = get(a.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 3))).all());
            assertEquals(3, r.get(tp).offset());
            assertEquals(base + 3, r.get(tp).timestamp());
            r = get(a.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).all());
            assertEquals(9, r.get(tp).offset());
            assertEquals(base + 9, r.get(tp).timestamp());
            r = get(a.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 100))).all());
            assertEquals(-1, r.get(tp).offset(), "no record at or after: -1, as Kafka answers");
        }
    }

    @Test
    void deleteRecords() throws Exception {
        String topic = broker.createTopic("dr", 1, Map.of());
        produce(topic, 0, 10, System.currentTimeMillis());
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = broker.admin()) {
            long low = get(a.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp)).lowWatermark();
            assertEquals(4, low);
            assertEquals(4, get(a.listOffsets(Map.of(tp, OffsetSpec.earliest())).all()).get(tp).offset());
        }
        try (KafkaConsumer<String, String> c = Clients.consumer(null, Map.of())) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            List<ConsumerRecord<String, String>> got = Clients.readN(c, tp, c.position(tp, Duration.ofSeconds(T)), 6);
            assertEquals(6, got.size());
            assertEquals(4, got.get(0).offset());
        }
    }

    @Test
    void consumerGroupsAndTheirOffsets() throws Exception {
        String topic = broker.createTopic("grp", 2, Map.of());
        produce(topic, 0, 5, System.currentTimeMillis());
        produce(topic, 1, 5, System.currentTimeMillis());
        String group = Clients.group();
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (Admin a = broker.admin();
                KafkaConsumer<String, String> c = Clients.consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(T).toNanos();
            int n = 0;
            while (n < 10 && System.nanoTime() < deadline) {
                n += c.poll(Duration.ofMillis(200)).count();
            }
            assertEquals(10, n);
            c.commitSync(Duration.ofSeconds(T));

            Collection<GroupListing> groups = get(a.listGroups().all());
            assertTrue(groups.stream().anyMatch(g -> g.groupId().equals(group)), "listGroups has " + group);
            ConsumerGroupDescription d = get(a.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals(GroupState.STABLE, d.groupState());
            assertEquals(1, d.members().size());
            assertEquals(Set.of(p0, p1), d.members().iterator().next().assignment().topicPartitions());
            assertEquals("range", d.partitionAssignor(), "the Java consumer's first assignor");

            Map<TopicPartition, OffsetAndMetadata> offs = get(a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(5, offs.get(p0).offset());
            assertEquals(5, offs.get(p1).offset());
        }
        // The member left: offsets of an empty group can be altered and deleted, then the group.
        try (Admin a = broker.admin()) {
            long deadline = System.nanoTime() + Duration.ofSeconds(T).toNanos();
            while (get(a.describeConsumerGroups(List.of(group)).all()).get(group).groupState() != GroupState.EMPTY
                    && System.nanoTime() < deadline) {
                TestBroker.sleep(100);
            }
            assertEquals(GroupState.EMPTY, get(a.describeConsumerGroups(List.of(group)).all()).get(group).groupState());
            get(a.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(2))).all());
            Map<TopicPartition, OffsetAndMetadata> offs = get(a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(2, offs.get(p0).offset());
            get(a.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
            Map<TopicPartition, OffsetAndMetadata> left = get(a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(Set.of(p0), left.keySet().stream().filter(tp -> left.get(tp) != null).collect(Collectors.toSet()));
            get(a.deleteConsumerGroups(List.of(group)).all());
            assertFalse(get(a.listGroups().all()).stream().anyMatch(g -> g.groupId().equals(group)));
        }
    }

    @Test
    void describeCluster() throws Exception {
        try (Admin a = broker.admin()) {
            DescribeClusterResult r = a.describeCluster();
            assertEquals(1, get(r.nodes()).size());
            assertNotNull(get(r.clusterId()));
            assertEquals(get(r.nodes()).iterator().next().id(), get(r.controller()).id());
            assertEquals(broker.bootstrap, get(r.nodes()).iterator().next().host() + ":"
                    + get(r.nodes()).iterator().next().port());
        }
    }
}
