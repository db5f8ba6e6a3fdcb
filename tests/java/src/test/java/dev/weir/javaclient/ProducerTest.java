package dev.weir.javaclient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java producer: acks levels, idempotence, every codec, headers, large records, ordering. */
class ProducerTest {
    private final TestBroker broker = TestBroker.get();

    @ParameterizedTest(name = "acks={0}")
    @ValueSource(strings = {"0", "1", "all"})
    void acksLevels(String acks) throws Exception {
        String topic = broker.createTopic("acks", 1, Map.of());
        // acks=0 and acks=1 need idempotence off (the Java default is on, which requires all).
        boolean idempotent = acks.equals("all");
        try (KafkaProducer<String, String> p = Clients.producer(Map.of(
                ProducerConfig.ACKS_CONFIG, acks,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, idempotent))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                sent.add(p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
            }
            p.flush();
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata md = sent.get(i).get(30, TimeUnit.SECONDS);
                // acks=0 gets no answer, so the client reports offset -1 (Kafka's behaviour).
                assertEquals(acks.equals("0") ? -1 : i, md.offset(), "offset of record " + i);
            }
        }
        List<ConsumerRecord<String, String>> got = Clients.readAll(new TopicPartition(topic, 0), 100);
        assertEquals(100, got.size());
        for (int i = 0; i < 100; i++) {
            assertEquals(i, got.get(i).offset());
            assertEquals("k" + i, got.get(i).key());
            assertEquals("v" + i, got.get(i).value());
        }
    }

    /** The Java producer is idempotent by default: InitProducerId, sequence numbers, no dups. */
    @Test
    void idempotentByDefault() throws Exception {
        String topic = broker.createTopic("idem", 3, Map.of());
        try (KafkaProducer<String, String> p = Clients.producer(Map.of())) {
            for (int i = 0; i < 300; i++) {
                p.send(new ProducerRecord<>(topic, i % 3, null, "v" + i));
            }
            p.flush();
        }
        for (int part = 0; part < 3; part++) {
            List<ConsumerRecord<String, String>> got = Clients.readAll(new TopicPartition(topic, part), 100);
            assertEquals(100, got.size(), "partition " + part);
            for (int j = 0; j < 100; j++) {
                assertEquals("v" + (j * 3 + part), got.get(j).value());
            }
        }
    }

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void everyCodec(String codec) throws Exception {
        String topic = broker.createTopic("codec-" + codec, 1, Map.of());
        try (KafkaProducer<String, String> p = Clients.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, 20))) {
            for (int i = 0; i < 500; i++) {
                p.send(new ProducerRecord<>(topic, "key-" + i, "value-" + i + "-" + "x".repeat(100)));
            }
            p.flush();
        }
        List<ConsumerRecord<String, String>> got = Clients.readAll(new TopicPartition(topic, 0), 500);
        assertEquals(500, got.size());
        for (int i = 0; i < 500; i++) {
            assertEquals(i, got.get(i).offset());
            assertEquals("key-" + i, got.get(i).key());
            assertEquals("value-" + i + "-" + "x".repeat(100), got.get(i).value());
        }
    }

    @Test
    void headers() throws Exception {
        String topic = broker.createTopic("headers", 1, Map.of());
        try (KafkaProducer<String, String> p = Clients.producer(Map.of())) {
            ProducerRecord<String, String> r = new ProducerRecord<>(topic, null, "k", "v",
                    List.of(new RecordHeader("trace", "abc".getBytes(StandardCharsets.UTF_8)),
                            new RecordHeader("empty", new byte[0]),
                            new RecordHeader("null", null),
                            new RecordHeader("trace", "second".getBytes(StandardCharsets.UTF_8))));
            p.send(r).get(30, TimeUnit.SECONDS);
        }
        ConsumerRecord<String, String> got = Clients.readAll(new TopicPartition(topic, 0), 1).get(0);
        Header[] hs = got.headers().toArray();
        assertEquals(4, hs.length);
        assertEquals("trace", hs[0].key());
        assertArrayEquals("abc".getBytes(StandardCharsets.UTF_8), hs[0].value());
        assertEquals("empty", hs[1].key());
        assertArrayEquals(new byte[0], hs[1].value());
        assertEquals("null", hs[2].key());
        assertEquals(null, hs[2].value());
        assertArrayEquals("second".getBytes(StandardCharsets.UTF_8), got.headers().lastHeader("trace").value());
    }

    /** A record close to the default max.message.bytes (1048588) passes; one above is refused. */
    @Test
    void largeMessages() throws Exception {
        String topic = broker.createTopic("large", 1, Map.of());
        byte[] big = new byte[1_000_000];
        Arrays.fill(big, (byte) 'a');
        big[big.length - 1] = 'z';
        try (KafkaProducer<byte[], byte[]> p = Clients.bytesProducer(Map.of(
                ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 4 * 1024 * 1024))) {
            RecordMetadata md = p.send(new ProducerRecord<>(topic, big)).get(30, TimeUnit.SECONDS);
            assertEquals(0, md.offset());
            Exception tooBig = null;
            try {
                p.send(new ProducerRecord<>(topic, new byte[1_100_000])).get(30, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                tooBig = e;
            }
            assertNotNull(tooBig, "a record above max.message.bytes must be refused");
            assertTrue(tooBig.getCause() instanceof org.apache.kafka.common.errors.RecordTooLargeException,
                    "expected RecordTooLargeException, got " + tooBig.getCause());
        }
        try (KafkaConsumer<byte[], byte[]> c = Clients.bytesConsumer(Map.of())) {
            List<ConsumerRecord<byte[], byte[]>> got = Clients.readN(c, new TopicPartition(topic, 0), 0, 1);
            assertEquals(1, got.size());
            assertArrayEquals(big, got.get(0).value());
        }
    }

    /**
     * Five requests in flight on one partition with idempotence: the broker must keep the order
     * the producer sent in (the client relies on sequence numbers; Kafka's guarantee).
     */
    @Test
    void maxInFlightFiveKeepsOrder() throws Exception {
        String topic = broker.createTopic("order", 1, Map.of());
        int n = 20_000;
        try (KafkaProducer<String, String> p = Clients.producer(Map.of(
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5,
                ProducerConfig.BATCH_SIZE_CONFIG, 2048,
                ProducerConfig.LINGER_MS_CONFIG, 0))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                sent.add(p.send(new ProducerRecord<>(topic, Integer.toString(i))));
            }
            p.flush();
            for (int i = 0; i < n; i++) {
                assertEquals(i, sent.get(i).get(30, TimeUnit.SECONDS).offset(), "offset of send " + i);
            }
        }
        List<ConsumerRecord<String, String>> got = Clients.readAll(new TopicPartition(topic, 0), n);
        assertEquals(n, got.size());
        for (int i = 0; i < n; i++) {
            assertEquals(Integer.toString(i), got.get(i).value());
        }
    }
}
