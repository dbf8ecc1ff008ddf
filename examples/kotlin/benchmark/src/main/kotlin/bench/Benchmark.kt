// Publish and consume throughput: io.stanrs:stan-client next to io.nats:java-nats-streaming,
// against the same broker, same message count and size. Prints one line per measurement.
package bench

import io.nats.streaming.AckHandler
import io.nats.streaming.NatsStreaming
import io.nats.streaming.Options
import io.nats.streaming.SubscriptionOptions
import io.stanrs.StanClient
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.runBlocking
import java.util.UUID
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

private fun report(client: String, what: String, n: Int, nanos: Long) {
    val secs = nanos / 1e9
    println(String.format("%-22s %-28s %8d msgs %8.2f s %10.0f msgs/s", client, what, n, secs, n / secs))
}

private inline fun timed(block: () -> Unit): Long {
    val start = System.nanoTime()
    block()
    return System.nanoTime() - start
}

fun main(args: Array<String>) {
    val url = args.getOrNull(0) ?: "nats://127.0.0.1:4222"
    val cluster = args.getOrNull(1) ?: "test-cluster"
    val n = args.getOrNull(2)?.toInt() ?: 20_000
    val syncN = n / 10
    val payload = ByteArray(args.getOrNull(3)?.toInt() ?: 128) { it.toByte() }
    println("$n messages of ${payload.size} bytes ($syncN for one-at-a-time publishes)")
    stanRs(url, cluster, n, syncN, payload)
    official(url, cluster, n, syncN, payload)
}

private fun stanRs(url: String, cluster: String, n: Int, syncN: Int, payload: ByteArray) = runBlocking {
    val name = "io.stanrs"
    StanClient.connect(cluster, "bench-rs-" + UUID.randomUUID().toString().take(8)) { this.url = url }.use { sc ->
        val ch = "bench-rs-" + UUID.randomUUID().toString().take(8)
        report(name, "publish, await each ack", syncN, timed { repeat(syncN) { sc.publish(ch, payload) } })
        val t = timed {
            val acks = List(n) { sc.publishAsync(ch, payload) }
            for (a in acks) a.await()
        }
        report(name, "publish pipelined", n, t)
        val total = syncN + n
        val sub = sc.subscribe(ch) { deliverAllAvailable(); maxInFlight = 4096 }
        report(name, "consume (auto ack)", total, timed { sub.messages().take(total).collect { } })
    }
}

private fun official(url: String, cluster: String, n: Int, syncN: Int, payload: ByteArray) {
    val name = "java-nats-streaming"
    val clientId = "bench-java-" + UUID.randomUUID().toString().take(8)
    val opts = Options.Builder().natsUrl(url).clusterId(cluster).clientId(clientId).build()
    val sc = NatsStreaming.connect(cluster, clientId, opts)
    try {
        val ch = "bench-java-" + UUID.randomUUID().toString().take(8)
        report(name, "publish, await each ack", syncN, timed { repeat(syncN) { sc.publish(ch, payload) } })
        val acked = CountDownLatch(n)
        val handler = AckHandler { _, err -> if (err == null) acked.countDown() else error(err) }
        val t = timed {
            repeat(n) { sc.publish(ch, payload, handler) }
            check(acked.await(120, TimeUnit.SECONDS)) { "acks missing" }
        }
        report(name, "publish pipelined", n, t)
        val total = syncN + n
        val received = CountDownLatch(total)
        val subOpts = SubscriptionOptions.Builder().deliverAllAvailable().maxInFlight(4096).build()
        val t2 = timed {
            val sub = sc.subscribe(ch, { received.countDown() }, subOpts)
            check(received.await(120, TimeUnit.SECONDS)) { "messages missing" }
            sub.close()
        }
        report(name, "consume (auto ack)", total, t2)
    } finally {
        sc.close()
    }
}
