package io.stanrs

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import java.io.File
import java.util.UUID
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/**
 * A `stan-broker` process on a free port. The broker binary is `STAN_BROKER_BIN`, else the
 * `stan.brokerBin` system property (set by the pom to `target/debug/stan-broker`). Readiness is
 * read from the broker's own startup lines, never guessed.
 */
class TestBroker private constructor(
    val clusterId: String,
    private val extraArgs: List<String>,
) : AutoCloseable {
    private var process: Process? = null

    /** The NATS URL clients connect to. */
    lateinit var url: String
        private set

    private val port: Int get() = url.substringAfterLast(':').toInt()

    private fun launch(port: Int) {
        val bin = System.getenv("STAN_BROKER_BIN") ?: System.getProperty("stan.brokerBin")
            ?: error("set STAN_BROKER_BIN to the stan-broker binary")
        check(File(bin).canExecute()) { "broker binary $bin not found (cargo build -p stan-broker)" }
        val cmd = mutableListOf(bin, "-p", port.toString(), "-a", "127.0.0.1", "-cid", clusterId) + extraArgs
        val p = ProcessBuilder(cmd).redirectErrorStream(true).start()
        val ready = CompletableFuture<String>()
        val reader = Thread {
            var listenUrl: String? = null
            p.inputStream.bufferedReader().useLines { lines ->
                for (line in lines) {
                    if (System.getenv("STAN_TEST_VERBOSE") != null) println("[broker] $line")
                    LISTEN.find(line)?.let { listenUrl = it.groupValues[1] }
                    if (line.contains("Server is ready") && listenUrl != null) ready.complete(listenUrl)
                }
            }
            ready.completeExceptionally(IllegalStateException("broker exited before it was ready"))
        }
        reader.isDaemon = true
        reader.start()
        try {
            url = ready.get(20, TimeUnit.SECONDS)
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

    /** Freeze (SIGSTOP) or thaw (SIGCONT) the broker: connections stay up, nothing answers. */
    fun freeze(frozen: Boolean) {
        val pid = process?.pid() ?: error("broker not running")
        val kill = ProcessBuilder("kill", if (frozen) "-STOP" else "-CONT", pid.toString()).start()
        check(kill.waitFor() == 0) { "kill failed" }
    }

    /** Start the broker again on the same port (after [kill]). */
    fun restart() {
        kill()
        var last: Exception? = null
        repeat(50) {
            try {
                launch(port)
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

    companion object {
        private val LISTEN = Regex("""Listening for client connections on (\S+)""")

        /** Start a broker (memory store) on a free port, with extra command-line [args]. */
        fun start(vararg args: String): TestBroker {
            val b = TestBroker("kt-" + unique("cluster"), args.toList())
            b.launch(0)
            return b
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
