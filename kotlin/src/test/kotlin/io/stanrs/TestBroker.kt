package io.stanrs

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.util.UUID
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/**
 * A `stan-broker` process on a free port. The broker binary is `STAN_BROKER_BIN`, else the
 * `stan.brokerBin` system property (set by the pom to `target/debug/stan-broker`). Readiness is
 * the broker's ready line (`STAN_BROKER_READY {"nats":[...],"monitoring":[...],...}` on its
 * standard output), never guessed; its logs (standard error) are drained and echoed with
 * `STAN_TEST_VERBOSE` set.
 */
class TestBroker private constructor(
    val clusterId: String,
    private val extraArgs: List<String>,
) : AutoCloseable {
    private var process: Process? = null

    /** The NATS URL clients connect to. */
    lateinit var url: String
        private set

    /** The monitoring base URL (`http://127.0.0.1:<port>`) when started with monitoring. */
    var monitoringUrl: String? = null
        private set

    private val port: Int get() = url.substringAfterLast(':').toInt()

    private fun launch(port: Int, monitoringPort: Int?) {
        val bin = System.getenv("STAN_BROKER_BIN") ?: System.getProperty("stan.brokerBin")
            ?: error("set STAN_BROKER_BIN to the stan-broker binary")
        check(File(bin).canExecute()) { "broker binary $bin not found (cargo build -p stan-broker)" }
        val cmd = mutableListOf(bin, "-p", port.toString(), "-a", "127.0.0.1", "-cid", clusterId)
        if (monitoringPort != null) cmd += listOf("-m", monitoringPort.toString())
        cmd += extraArgs
        val p = ProcessBuilder(cmd).start()
        val verbose = System.getenv("STAN_TEST_VERBOSE") != null
        val ready = CompletableFuture<ReadyLine>()
        // Both streams are drained for as long as the broker runs, so it never blocks on a full pipe.
        val out = Thread {
            p.inputStream.bufferedReader().useLines { lines ->
                for (line in lines) {
                    if (verbose) println("[broker stdout] $line")
                    ReadyLine.parse(line)?.let { ready.complete(it) }
                }
            }
            ready.completeExceptionally(IllegalStateException("broker exited before it was ready"))
        }
        val err = Thread {
            p.errorStream.bufferedReader().useLines { lines ->
                for (line in lines) if (verbose) println("[broker] $line")
            }
        }
        for (t in listOf(out, err)) {
            t.isDaemon = true
            t.start()
        }
        try {
            val line = ready.get(20, TimeUnit.SECONDS)
            url = line.nats
            monitoringUrl = line.monitoring
            process = p
        } catch (e: Exception) {
            p.destroyForcibly()
            throw e
        }
    }

    /** Kill the broker (SIGKILL, like a crash) and wait until it is gone. */
    fun kill() {
        process?.let {
            it.destroyForcibly()
            it.waitFor(20, TimeUnit.SECONDS)
        }
        process = null
    }

    /**
     * Freeze (SIGSTOP) or thaw (SIGCONT) the broker: connections stay up, nothing answers.
     * Freezing returns once every thread of the broker is stopped (signal delivery alone does
     * not wait for that), so nothing sent afterwards is processed before the thaw.
     */
    fun freeze(frozen: Boolean) {
        val pid = process?.pid() ?: error("broker not running")
        val kill = ProcessBuilder("kill", if (frozen) "-STOP" else "-CONT", pid.toString()).start()
        check(kill.waitFor() == 0) { "kill failed" }
        if (frozen) awaitStopped(pid)
    }

    private fun awaitStopped(pid: Long) {
        val tasks = File("/proc/$pid/task")
        if (!tasks.isDirectory) return // no procfs: signal delivery is all there is
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (true) {
            val states = tasks.listFiles().orEmpty().mapNotNull { task ->
                // "pid (comm) S ...": the state follows the last ')'.
                runCatching { File(task, "stat").readText() }.getOrNull()
                    ?.substringAfterLast(')')?.trim()?.firstOrNull()
            }
            if (states.all { it == 'T' || it == 't' }) return
            check(System.nanoTime() < deadline) { "broker $pid did not stop: $states" }
            Thread.sleep(1) // polling /proc: there is no event for another process stopping
        }
    }

    /** Start the broker again on the same port and monitoring port (after [kill]). */
    fun restart() {
        kill()
        val monitoringPort = monitoringUrl?.substringAfterLast(':')?.toInt()
        var last: Exception? = null
        repeat(50) {
            try {
                launch(port, monitoringPort)
                return
            } catch (e: Exception) {
                // the old listener may hold the port for a moment
                last = e
            }
        }
        throw IllegalStateException("broker restart failed", last)
    }

    override fun close() {
        kill()
    }

    /** The URLs of the broker's ready line. */
    private class ReadyLine(val nats: String, val monitoring: String?) {
        companion object {
            private const val PREFIX = "STAN_BROKER_READY "
            private val NATS = Regex("\"nats\"\\s*:\\s*\\[\\s*\"([^\"]+)\"")
            private val MONITORING = Regex("\"monitoring\"\\s*:\\s*\\[\\s*\"([^\"]+)\"")

            /** The URLs of [line], or null if it is not a ready line. */
            fun parse(line: String): ReadyLine? {
                if (!line.startsWith(PREFIX)) return null
                val json = line.removePrefix(PREFIX)
                val nats = NATS.find(json)?.groupValues?.get(1) ?: return null
                return ReadyLine(nats, MONITORING.find(json)?.groupValues?.get(1))
            }
        }
    }

    /**
     * The first launch, on ports from [freePort] (outside the ephemeral range, so that no
     * outgoing connection can hold them when [restart] binds them again); other ports are
     * tried if another process takes one first.
     */
    private fun launchOnFreePorts(monitoring: Boolean) {
        var attempt = 0
        while (true) {
            try {
                launch(freePort(), if (monitoring) freePort() else null)
                return
            } catch (e: Exception) {
                if (++attempt > 5) throw e
            }
        }
    }

    companion object {
        /** Start a broker (memory store) on a free port, with extra command-line [args]. */
        fun start(vararg args: String): TestBroker {
            val b = TestBroker("kt-" + unique("cluster"), args.toList())
            b.launchOnFreePorts(monitoring = false)
            return b
        }

        /** Like [start], with the monitoring endpoints on a free port ([monitoringUrl]). */
        fun startWithMonitoring(vararg args: String): TestBroker {
            val b = TestBroker("kt-" + unique("cluster"), args.toList())
            b.launchOnFreePorts(monitoring = true)
            return b
        }

        /**
         * A loopback port that was free a moment ago, below the kernel's ephemeral range
         * (`/proc/sys/net/ipv4/ip_local_port_range`) where there is room: a port of that range
         * can be taken at any moment as the local port of an outgoing connection.
         */
        fun freePort(): Int {
            val low = runCatching {
                File("/proc/sys/net/ipv4/ip_local_port_range").readText().trim().split(Regex("\\s+"))[0].toInt()
            }.getOrDefault(32768)
            if (low > 11024) {
                repeat(64) {
                    val port = low - 1 - Random.nextInt(10000)
                    val free = runCatching { ServerSocket(port, 1, InetAddress.getLoopbackAddress()).close() }.isSuccess
                    if (free) return port
                }
            }
            return ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }
        }
    }
}

/** Upper bound for anything a test awaits. */
val WAIT: Duration = 20.seconds

/** A unique, valid name (channel, client ID, durable). */
fun unique(prefix: String): String = prefix + "-" + UUID.randomUUID().toString().replace("-", "").take(12)

/**
 * Await [block] in real time (not the virtual time of `runTest`), failing after [WAIT].
 */
suspend fun <T> within(block: suspend () -> T): T = withContext(Dispatchers.Default) { withTimeout(WAIT) { block() } }

/** Null when [block] does not finish within [quiet] of real time (absence checks only). */
suspend fun <T> quietFor(quiet: Duration, block: suspend () -> T): T? =
    withContext(Dispatchers.Default) { withTimeoutOrNull(quiet) { block() } }

/** The first element of [flow] that matches [predicate], within [WAIT]. */
suspend fun <T> Flow<T>.awaitFirst(predicate: (T) -> Boolean): T = within { first(predicate) }

/** Connect a client to [broker]. */
suspend fun TestBroker.connect(clientId: String = unique("kt"), configure: ConnectOptions.() -> Unit = {}): StanClient {
    val brokerUrl = url
    return within {
        StanClient.connect(clusterId, clientId) {
            url = brokerUrl
            configure()
        }
    }
}
