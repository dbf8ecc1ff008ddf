// One throughput or latency measurement of io.stanrs:stan-client ("ours") or the official
// io.nats:java-nats-streaming ("official") against a running broker. Prints exactly one JSON
// line on stdout; everything else goes to stderr.
//
//   java -jar target/benchmark.jar --client ours|official \
//       --scenario pub-pipelined|pub-awaited|consume-auto|consume-manual \
//       --messages N --size BYTES --url nats://HOST:PORT --cluster-id ID --channel NAME \
//       [--warmup N]
//
// --warmup N runs the same scenario with N messages first, untimed, on the channel NAME.warmup
// (same client, same connection), so that the measurement sees code the JIT compiler has
// already compiled, as in a long-running service; both clients get the same warm-up.
package bench

import io.nats.streaming.AckHandler
import io.nats.streaming.NatsStreaming
import io.nats.streaming.Options
import io.nats.streaming.StreamingConnection
import io.nats.streaming.SubscriptionOptions
import io.stanrs.StanClient
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.runBlocking
import java.io.File
import java.util.UUID
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference
import kotlin.system.exitProcess

private class Args(
    val client: String,
    val scenario: String,
    val messages: Int,
    val size: Int,
    val url: String,
    val clusterId: String,
    val channel: String,
    val warmup: Int,
)

/** What one run measured. */
private class Result(val nanos: Long, val latenciesNanos: LongArray? = null)

private val SCENARIOS = setOf("pub-pipelined", "pub-awaited", "consume-auto", "consume-manual")

private fun usage(problem: String): Nothing {
    System.err.println("benchmark: $problem")
    System.err.println(
        "usage: --client ours|official --scenario ${SCENARIOS.joinToString("|")} --messages N " +
            "--size BYTES --url nats://HOST:PORT --cluster-id ID --channel NAME [--warmup N]",
    )
    exitProcess(2)
}

private fun parse(argv: Array<String>): Args {
    val values = HashMap<String, String>()
    var i = 0
    while (i < argv.size) {
        val key = argv[i]
        if (!key.startsWith("--") || i + 1 >= argv.size) usage("bad argument '$key'")
        values[key.removePrefix("--")] = argv[i + 1]
        i += 2
    }
    fun get(name: String) = values.remove(name) ?: usage("--$name is required")
    fun int(name: String) = get(name).toIntOrNull()?.takeIf { it >= 0 } ?: usage("--$name must be a number")
    val args = Args(
        client = get("client").also { if (it != "ours" && it != "official") usage("--client must be ours or official") },
        scenario = get("scenario").also { if (it !in SCENARIOS) usage("unknown scenario '$it'") },
        messages = int("messages").also { if (it < 1) usage("--messages must be at least 1") },
        size = int("size"),
        url = get("url"),
        clusterId = get("cluster-id"),
        channel = get("channel"),
        warmup = values["warmup"]?.let { int("warmup") } ?: 0,
    )
    if (values.isNotEmpty()) usage("unknown arguments ${values.keys}")
    return args
}

private fun clientId(): String = "bench-kt-" + UUID.randomUUID().toString().take(8)

/** Peak resident set of this process (VmHWM), in KiB. */
private fun peakRssKb(): Long =
    File("/proc/self/status").readLines().firstOrNull { it.startsWith("VmHWM:") }
        ?.split(Regex("\\s+"))?.getOrNull(1)?.toLongOrNull() ?: 0L

private fun percentileMicros(sorted: LongArray, p: Double): Double {
    val idx = Math.min(sorted.size - 1, Math.ceil(p / 100.0 * sorted.size).toInt() - 1).coerceAtLeast(0)
    return sorted[idx] / 1000.0
}

fun main(argv: Array<String>) {
    val args = parse(argv)
    val payload = ByteArray(args.size) { (it % 251).toByte() }
    val result = try {
        if (args.client == "ours") Ours(args, payload).run() else Official(args, payload).run()
    } catch (e: Exception) {
        System.err.println("benchmark failed: $e")
        e.printStackTrace()
        exitProcess(1)
    }
    val seconds = result.nanos / 1e9
    val lat = result.latenciesNanos?.sortedArray()
    val p50 = lat?.let { "%.1f".format(percentileMicros(it, 50.0)) } ?: "null"
    val p99 = lat?.let { "%.1f".format(percentileMicros(it, 99.0)) } ?: "null"
    println(
        """{"lang": "kotlin", "client": "${args.client}", "scenario": "${args.scenario}", """ +
            """"size": ${args.size}, "messages": ${args.messages}, "seconds": ${"%.6f".format(seconds)}, """ +
            """"msgs_per_sec": ${"%.1f".format(args.messages / seconds)}, "p50_us": $p50, "p99_us": $p99, """ +
            """"rss_kb": ${peakRssKb()}}""",
    )
    exitProcess(0)
}

/** io.stanrs:stan-client, written as its README shows. */
private class Ours(val args: Args, val payload: ByteArray) {
    fun run(): Result = runBlocking {
        StanClient.connect(args.clusterId, clientId()) {
            url = args.url
            maxPubAcksInFlight = maxOf(args.messages, args.warmup, 16384)
        }.use { sc ->
            if (args.warmup > 0) scenario(sc, "${args.channel}.warmup", args.warmup)
            scenario(sc, args.channel, args.messages)
        }
    }

    private suspend fun scenario(sc: StanClient, channel: String, messages: Int): Result =
        when (args.scenario) {
            "pub-pipelined" -> Result(timed { pipelined(sc, channel, messages) })
            "pub-awaited" -> awaited(messages) { sc.publish(channel, payload) }
            else -> {
                pipelined(sc, channel, messages) // untimed
                val manual = args.scenario == "consume-manual"
                val start = System.nanoTime()
                val sub = sc.subscribe(channel) {
                    deliverAllAvailable()
                    maxInFlight = 10_000
                    manualAcks = manual
                }
                var received = 0
                var end = 0L
                sub.messages().take(messages).collect { msg ->
                    if (manual) msg.ack()
                    if (++received == messages) end = System.nanoTime()
                }
                sub.close()
                Result(end - start)
            }
        }

    private suspend fun pipelined(sc: StanClient, channel: String, messages: Int) {
        val acks = List(messages) { sc.publishAsync(channel, payload) }
        for (ack in acks) ack.await()
    }
}

/** io.nats:java-nats-streaming, written as its README shows. */
private class Official(val args: Args, val payload: ByteArray) {
    fun run(): Result {
        val id = clientId()
        val opts = Options.Builder()
            .natsUrl(args.url)
            .clusterId(args.clusterId)
            .clientId(id)
            .maxPubAcksInFlight(maxOf(args.messages, args.warmup, 16384))
            .build()
        val sc = NatsStreaming.connect(args.clusterId, id, opts)
        try {
            if (args.warmup > 0) scenario(sc, "${args.channel}.warmup", args.warmup)
            return scenario(sc, args.channel, args.messages)
        } finally {
            sc.close()
        }
    }

    private fun scenario(sc: StreamingConnection, channel: String, messages: Int): Result =
        when (args.scenario) {
            "pub-pipelined" -> Result(timed { pipelined(sc, channel, messages) })
            "pub-awaited" -> awaited(messages) { sc.publish(channel, payload) }
            else -> consume(sc, channel, messages, args.scenario == "consume-manual")
        }

    private fun pipelined(sc: StreamingConnection, channel: String, messages: Int) {
        val acked = CountDownLatch(messages)
        val failure = AtomicReference<Exception?>()
        val handler = object : AckHandler {
            override fun onAck(guid: String?, err: Exception?) {
                if (err != null) failure.compareAndSet(null, err)
                acked.countDown()
            }
        }
        repeat(messages) { sc.publish(channel, payload, handler) }
        check(acked.await(300, TimeUnit.SECONDS)) { "acks missing" }
        failure.get()?.let { throw it }
    }

    private fun consume(sc: StreamingConnection, channel: String, messages: Int, manual: Boolean): Result {
        pipelined(sc, channel, messages) // untimed
        val received = AtomicInteger()
        val end = AtomicLong()
        val done = CountDownLatch(1)
        val builder = SubscriptionOptions.Builder().deliverAllAvailable().maxInFlight(10_000)
        if (manual) builder.manualAcks()
        val start = System.nanoTime()
        val sub = sc.subscribe(channel, { msg ->
            if (manual) msg.ack()
            if (received.incrementAndGet() == messages) {
                end.set(System.nanoTime())
                done.countDown()
            }
        }, builder.build())
        check(done.await(300, TimeUnit.SECONDS)) { "messages missing" }
        sub.close()
        return Result(end.get() - start)
    }
}

/** [messages] calls of [publish] one after the other: the total time and each call's. */
private inline fun awaited(messages: Int, publish: () -> Unit): Result {
    val lat = LongArray(messages)
    val total = timed {
        for (i in 0 until messages) {
            val t = System.nanoTime()
            publish()
            lat[i] = System.nanoTime() - t
        }
    }
    return Result(total, lat)
}

private inline fun timed(block: () -> Unit): Long {
    val start = System.nanoTime()
    block()
    return System.nanoTime() - start
}
