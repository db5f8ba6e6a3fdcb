package dev.weir.javaclient;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Producers and consumers with bounded timeouts, and a bounded read of a whole partition. */
final class Clients {
    /** A bound on reading what a test wrote; never a speed assertion. */
    static final Duration READ_TIMEOUT = Duration.ofSeconds(30);

    private Clients() {}

    static KafkaProducer<String, String> producer(Map<String, Object> extra) {
        Properties p = TestBroker.get().clientProps();
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaProducer<byte[], byte[]> bytesProducer(Map<String, Object> extra) {
        Properties p = TestBroker.get().clientProps();
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String group, Map<String, Object> extra) {
        Properties p = TestBroker.get().clientProps();
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> bytesConsumer(Map<String, Object> extra) {
        Properties p = TestBroker.get().clientProps();
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static String group() {
        return "g-" + UUID.randomUUID().toString().substring(0, 8);
    }

    /** Reads partition {@code tp} from {@code from} until {@code count} records arrived (bounded). */
    static <K, V> List<ConsumerRecord<K, V>> readN(KafkaConsumer<K, V> c, TopicPartition tp, long from, int count) {
        c.assign(List.of(tp));
        c.seek(tp, from);
        List<ConsumerRecord<K, V>> out = new ArrayList<>();
        long deadline = System.nanoTime() + READ_TIMEOUT.toNanos();
        while (out.size() < count && System.nanoTime() < deadline) {
            for (ConsumerRecord<K, V> r : c.poll(Duration.ofMillis(200)).records(tp)) {
                out.add(r);
            }
        }
        return out;
    }

    static List<ConsumerRecord<String, String>> readAll(TopicPartition tp, int count) {
        try (KafkaConsumer<String, String> c = consumer(null, Map.of())) {
            return readN(c, tp, 0, count);
        }
    }
}
