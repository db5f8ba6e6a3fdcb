package dev.weir.javaclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/** The Java consumer with the classic group protocol. */
class ConsumerTest {
    private final TestBroker broker = TestBroker.get();

    private void produce(String topic, int partitions, int perPartition, long baseTimestamp) throws Exception {
        try (KafkaProducer<String, String> p = Clients.producer(Map.of())) {
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < perPartition; i++) {
                    p.send(new ProducerRecord<>(topic, part, baseTimestamp + i, "k" + i, "p" + part + "-" + i));
                }
            }
            p.flush();
        }
    }

    /** Polls until {@code cond} holds or 30 s passed; returns everything polled meanwhile. */
    private static <K, V> List<ConsumerRecord<K, V>> pollUntil(KafkaConsumer<K, V> c,
            java.util.function.Predicate<List<ConsumerRecord<K, V>>> cond) {
        List<ConsumerRecord<K, V>> got = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!cond.test(got) && System.nanoTime() < deadline) {
            for (ConsumerRecord<K, V> r : c.poll(Duration.ofMillis(200))) {
                got.add(r);
            }
        }
        return got;
    }

    @Test
    void subscribeAndCommitSync() throws Exception {
        String topic = broker.createTopic("sub", 2, Map.of());
        produce(topic, 2, 50, System.currentTimeMillis());
        String group = Clients.group();
        try (KafkaConsumer<String, String> c = Clients.consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollUntil(c, l -> l.size() >= 100);
            assertEquals(100, got.size());
            c.commitSync(Duration.ofSeconds(30));
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(
                    Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)), Duration.ofSeconds(30));
            assertEquals(50, committed.get(new TopicPartition(topic, 0)).offset());
            assertEquals(50, committed.get(new TopicPartition(topic, 1)).offset());
        }
        // A new member of the same group resumes from the committed offsets.
        produce(topic, 1, 1, System.currentTimeMillis());
        try (KafkaConsumer<String, String> c = Clients.consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollUntil(c, l -> l.size() >= 1);
            assertEquals(1, got.size());
            assertEquals(50, got.get(0).offset());
        }
    }

    @Test
    void commitAsyncWithMetadata() throws Exception {
        String topic = broker.createTopic("async", 1, Map.of());
        produce(topic, 1, 10, System.currentTimeMillis());
        String group = Clients.group();
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = Clients.consumer(group, Map.of())) {
            c.subscribe(List.of(topic));
            pollUntil(c, l -> l.size() >= 10);
            CompletableFuture<Exception> done = new CompletableFuture<>();
            c.commitAsync(Map.of(tp, new OffsetAndMetadata(7, "seven")), (offsets, e) -> done.complete(e));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!done.isDone() && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(100)); // callbacks run inside poll
            }
            assertTrue(done.isDone(), "commitAsync callback never ran");
            assertNull(done.get(), "commitAsync failed");
            OffsetAndMetadata om = c.committed(Set.of(tp), Duration.ofSeconds(30)).get(tp);
            assertEquals(7, om.offset());
            assertEquals("seven", om.metadata());
        }
    }

    /** Two members of one group split four partitions; when one leaves, the other gets all. */
    @Test
    void rebalanceBetweenTwoMembers() throws Exception {
        String topic = broker.createTopic("rebal", 4, Map.of());
        String group = Clients.group();
        Map<String, Object> conf = Map.of(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        KafkaConsumer<String, String> a = Clients.consumer(group, conf);
        KafkaConsumer<String, String> b = Clients.consumer(group, conf);
        try {
            Set<TopicPartition> revokedFromA = new HashSet<>();
            a.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    revokedFromA.addAll(parts);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {}
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (a.assignment().size() < 4 && System.nanoTime() < deadline) {
                a.poll(Duration.ofMillis(100));
            }
            assertEquals(4, a.assignment().size(), "the only member gets every partition");

            b.subscribe(List.of(topic));
            deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while ((a.assignment().size() != 2 || b.assignment().size() != 2) && System.nanoTime() < deadline) {
                a.poll(Duration.ofMillis(50));
                b.poll(Duration.ofMillis(50));
            }
            assertEquals(2, a.assignment().size(), "a after b joined");
            assertEquals(2, b.assignment().size(), "b after b joined");
            Set<TopicPartition> union = new HashSet<>(a.assignment());
            union.addAll(b.assignment());
            assertEquals(4, union.size(), "the members' assignments are disjoint and cover the topic");
            assertTrue(!revokedFromA.isEmpty(), "a saw partitions revoked");

            b.close(Duration.ofSeconds(10)); // leaves the group (LeaveGroup)
            deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (a.assignment().size() < 4 && System.nanoTime() < deadline) {
                a.poll(Duration.ofMillis(100));
            }
            assertEquals(4, a.assignment().size(), "a gets everything back after b left");
        } finally {
            a.close(Duration.ofSeconds(10));
            b.close(Duration.ofSeconds(10));
        }
    }

    @Test
    void seekAndSeekToEnd() throws Exception {
        String topic = broker.createTopic("seek", 1, Map.of());
        produce(topic, 1, 20, System.currentTimeMillis());
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = Clients.consumer(null, Map.of())) {
            c.assign(List.of(tp));
            c.seek(tp, 15);
            List<ConsumerRecord<String, String>> got = pollUntil(c, l -> l.size() >= 5);
            assertEquals(15, got.get(0).offset());
            assertEquals(5, got.size());
            c.seekToBeginning(List.of(tp));
            assertEquals(0, c.position(tp, Duration.ofSeconds(30)));
            c.seekToEnd(List.of(tp));
            assertEquals(20, c.position(tp, Duration.ofSeconds(30)));
            assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp), Duration.ofSeconds(30)));
            assertEquals(Map.of(tp, 20L), c.endOffsets(List.of(tp), Duration.ofSeconds(30)));
        }
    }

    @Test
    void offsetsForTimes() throws Exception {
        String topic = broker.createTopic("times", 1, Map.of());
        long base = 1_700_000_000_000L;
        produce(topic, 1, 10, base); // timestamps base .. base+9 at offsets 0..9
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = Clients.consumer(null, Map.of())) {
            Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, base + 4), Duration.ofSeconds(30));
            assertEquals(4, r.get(tp).offset());
            assertEquals(base + 4, r.get(tp).timestamp());
            r = c.offsetsForTimes(Map.of(tp, base - 1000), Duration.ofSeconds(30));
            assertEquals(0, r.get(tp).offset());
            r = c.offsetsForTimes(Map.of(tp, base + 1000), Duration.ofSeconds(30));
            assertNull(r.get(tp), "no record at or after the timestamp: null, as Kafka answers");
        }
    }

    @Test
    void pauseAndResume() throws Exception {
        String topic = broker.createTopic("pause", 2, Map.of());
        produce(topic, 2, 10, System.currentTimeMillis());
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = Clients.consumer(null, Map.of())) {
            c.assign(List.of(p0, p1));
            c.pause(List.of(p1));
            assertEquals(Set.of(p1), c.paused());
            List<ConsumerRecord<String, String>> got = pollUntil(c, l -> l.size() >= 10);
            // A few more polls: nothing of the paused partition may arrive.
            for (int i = 0; i < 5; i++) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                    got.add(r);
                }
            }
            assertEquals(10, got.size());
            assertTrue(got.stream().allMatch(r -> r.partition() == 0), "only the unpaused partition");
            c.resume(List.of(p1));
            List<ConsumerRecord<String, String>> more = pollUntil(c, l -> l.size() >= 10);
            assertEquals(10, more.size());
            assertTrue(more.stream().allMatch(r -> r.partition() == 1));
        }
    }

    /** Auto commit (the Java default when a group is set) commits what poll returned. */
    @Test
    void autoCommit() throws Exception {
        String topic = broker.createTopic("autocommit", 1, Map.of());
        produce(topic, 1, 5, System.currentTimeMillis());
        String group = Clients.group();
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = Clients.consumer(group, Map.of(
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true,
                ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 100))) {
            c.subscribe(List.of(topic));
            pollUntil(c, l -> l.size() >= 5);
        } // close commits the consumed position
        try (KafkaConsumer<String, String> c = Clients.consumer(group, Map.of())) {
            OffsetAndMetadata om = c.committed(Set.of(tp), Duration.ofSeconds(30)).get(tp);
            assertNotNull(om);
            assertEquals(5, om.offset());
        }
    }

    @Test
    void pollReturnsNothingPastTheEnd() throws Exception {
        String topic = broker.createTopic("empty", 1, Map.of());
        try (KafkaConsumer<String, String> c = Clients.consumer(null, Map.of())) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            ConsumerRecords<String, String> r = c.poll(Duration.ofMillis(500));
            assertTrue(r.isEmpty());
        }
    }
}
