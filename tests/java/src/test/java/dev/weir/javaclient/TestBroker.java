package dev.weir.javaclient;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

/**
 * The broker the tests run against: one Weir started for the whole run (target/debug/weir, or
 * WEIR_BIN) on a free loopback port with a fresh data directory, or, with -Dbootstrap=host:port,
 * an already running broker (e.g. the reference Kafka 4.4 of scripts/kafka-reference.sh, which
 * checks that the tests expect what Kafka does).
 *
 * <p>Weir runs under a small shell that reads its standard input: when this JVM exits, even
 * killed, the pipe closes and the shell stops Weir by its PID, so no broker is left behind.
 */
public final class TestBroker {
    /** A bound on waiting for the broker to serve requests (a slow CI disk can slow a start). */
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);

    private static TestBroker instance;

    public final String bootstrap;
    /** "weir" or "kafka": the few tests of what Weir lacks on purpose check Weir's answer. */
    public final String kind;
    private final Process process;
    private final Path log;

    private TestBroker(String bootstrap, String kind, Process process, Path log) {
        this.bootstrap = bootstrap;
        this.kind = kind;
        this.process = process;
        this.log = log;
    }

    public static synchronized TestBroker get() {
        if (instance == null) {
            instance = start();
        }
        return instance;
    }

    public boolean isWeir() {
        return kind.equals("weir");
    }

    private static TestBroker start() {
        String external = System.getProperty("bootstrap", "");
        String kind = System.getProperty("broker.kind", "weir");
        if (!external.isEmpty()) {
            return new TestBroker(external, kind, null, null);
        }
        try {
            Path repo = Path.of(System.getProperty("weir.repo", "../..")).toAbsolutePath().normalize();
            String bin = System.getenv().getOrDefault("WEIR_BIN", repo.resolve("target/debug/weir").toString());
            if (!Files.isExecutable(Path.of(bin))) {
                throw new IllegalStateException("broker binary " + bin
                        + " not found: build it with `cargo build -p weir` or set WEIR_BIN");
            }
            Path dir = Files.createTempDirectory("weir-java-");
            Path data = Files.createDirectories(dir.resolve("data"));
            int port = freePort();
            String bootstrap = "127.0.0.1:" + port;
            // The same base configuration as the Python harness (tests/integration/conftest.py).
            String config = String.join("\n",
                    "node.id=1",
                    "num.partitions=1",
                    "default.replication.factor=1",
                    "auto.create.topics.enable=true",
                    "group.initial.rebalance.delay.ms=0",
                    "weir.cores=2",
                    "listeners=PLAINTEXT://" + bootstrap,
                    "log.dirs=" + data,
                    "");
            Path props = dir.resolve("server.properties");
            Files.writeString(props, config);
            Path log = dir.resolve("weir.log");
            List<String> cmd = new ArrayList<>(List.of("sh", "-c",
                    "\"$0\" \"$@\" & pid=$!; read _ignored; kill -TERM $pid; wait $pid",
                    bin, "--config", props.toString()));
            Process p = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .directory(dir.toFile())
                    .start();
            TestBroker b = new TestBroker(bootstrap, kind, p, log);
            Runtime.getRuntime().addShutdownHook(new Thread(b::stop));
            b.awaitReady();
            return b;
        } catch (IOException e) {
            throw new IllegalStateException("could not start weir", e);
        }
    }

    private void awaitReady() {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("weir exited with " + process.exitValue()
                        + " before serving requests\n" + logTail());
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1",
                        Integer.parseInt(bootstrap.substring(bootstrap.indexOf(':') + 1))), 1000);
                try (Admin admin = admin()) {
                    admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                    return;
                }
            } catch (Exception e) {
                sleep(100);
            }
        }
        throw new IllegalStateException("weir not ready on " + bootstrap + "\n" + logTail());
    }

    /** Closing the wrapper's stdin makes it SIGTERM Weir; bounded wait, then kill. */
    private void stop() {
        if (process == null) {
            return;
        }
        try (OutputStream in = process.getOutputStream()) {
            in.write('\n');
        } catch (IOException ignored) {
            // the wrapper is already gone
        }
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public String logTail() {
        if (log == null) {
            return "(external broker)";
        }
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    public Properties clientProps() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        return p;
    }

    public Admin admin() {
        return Admin.create(clientProps());
    }

    /** A topic of its own for each test: the broker is shared by the whole run. */
    public String createTopic(String prefix, int partitions, Map<String, String> configs) throws Exception {
        String name = prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
        try (Admin admin = admin()) {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs)))
                    .all().get(30, TimeUnit.SECONDS);
        }
        return name;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeException(e);
        }
    }
}
