package dev.weir.javaclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.junit.jupiter.api.Test;

/**
 * What Weir does not offer yet must fail fast and clearly in the Java client, never hang:
 * the KIP-848 consumer group protocol and transactions. Against Kafka both work, which the
 * same tests check (-Dbroker.kind=kafka).
 */
class UnsupportedTest {
    private final TestBroker broker = TestBroker.get();

    /** A bound well under the test's timeout: the answer must come, not the client's retries. */
    private static final Duration ANSWER_WITHIN = Duration.ofSeconds(30);

    @Test
    void consumerGroupProtocolKip848() throws Exception {
        String topic = broker.createTopic("kip848", 1, Map.of());
        try (KafkaProducer<String, String> p = Clients.producer(Map.of())) {
            p.send(new ProducerRecord<>(topic, "k", "v")).get();
        }
        try (KafkaConsumer<String, String> c = Clients.consumer(Clients.group(),
                Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer"))) {
            c.subscribe(List.of(topic));
            if (broker.isWeir()) {
                // Weir has no ConsumerGroupHeartbeat: the client must say so at the first poll.
                UnsupportedVersionException e = assertThrows(UnsupportedVersionException.class, () -> {
                    long deadline = System.nanoTime() + ANSWER_WITHIN.toNanos();
                    while (System.nanoTime() < deadline) {
                        c.poll(Duration.ofMillis(200));
                    }
                });
                assertTrue(e.getMessage().contains("consumer"), "message names the protocol: " + e.getMessage());
            } else {
                long deadline = System.nanoTime() + ANSWER_WITHIN.toNanos();
                int n = 0;
                while (n == 0 && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        n++;
                    }
                }
                assertEquals(1, n);
            }
        }
    }

    @Test
    void transactionsInitFailsClearly() throws Exception {
        String topic = broker.createTopic("txn", 1, Map.of());
        try (KafkaProducer<String, String> p = Clients.producer(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, "tx-" + Clients.group(),
                ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) ANSWER_WITHIN.toMillis()))) {
            if (broker.isWeir()) {
                KafkaException e = assertThrows(KafkaException.class, p::initTransactions);
                // Not the client's own timeout: the broker answered, and the answer says why.
                assertTrue(!(e instanceof org.apache.kafka.common.errors.TimeoutException),
                        "initTransactions timed out instead of failing: " + e);
            } else {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, "k", "v"));
                p.commitTransaction();
            }
        }
    }
}
