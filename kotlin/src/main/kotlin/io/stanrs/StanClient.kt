package io.stanrs

import com.sun.jna.Pointer
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.future.future
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.lang.ref.Cleaner
import java.util.Collections
import java.util.WeakHashMap
import java.util.concurrent.CompletableFuture

/**
 * A connection to a NATS Streaming server.
 *
 * ```kotlin
 * StanClient.connect("test-cluster", "me") { url = "nats://127.0.0.1:4222" }.use { sc ->
 *     val guid = sc.publish("orders", "hello".encodeToByteArray())   // suspends until acked
 *     sc.subscribe("orders") { durableName = "audit"; startAt = StartPosition.First; manualAcks = true }
 *         .messages()
 *         .collect { msg -> println(msg.dataAsString()); msg.ack() }
 * }
 * ```
 *
 * All failures are [StanException]s. [close] (or `use {}`) unregisters from the server and
 * blocks until done; [shutdown] does the same without blocking a thread.
 *
 * The connection stays open while the client or any of its subscriptions or messages is
 * reachable. A client that becomes unreachable without being closed (and with no subscription
 * or message left) is closed in the background once the garbage collector finds it, as
 * [shutdown] does: publishes still awaiting their acks fail with
 * [StanException.ConnectionClosed]. Await them, or close the client, when their outcome matters.
 *
 * Java callers use the `…Future` methods, which return [CompletableFuture]s:
 * ```java
 * try (StanClient sc = StanClient.connectFuture("test-cluster", "me", options).get()) {
 *     String guid = sc.publishFuture("orders", bytes).get();
 * }
 * ```
 */
class StanClient private constructor(private val native: NativeClient, maxPubAcksInFlight: Int) : AutoCloseable {
    private val publisher = Publisher(native, maxPubAcksInFlight)

    /** Closes the connection if this client becomes unreachable without [shutdown]. */
    private val unclosed = Unclosed(native)

    init {
        CLEANER.register(this, unclosed)
    }

    /** The subscriptions made by this client, told before it closes (weakly held). */
    private val subscriptions: MutableSet<Subscription> = Collections.newSetFromMap(WeakHashMap())

    /** The client ID. */
    val clientId: String get() = native.clientId()

    /** The cluster ID. */
    val clusterId: String get() = native.clusterId()

    /** True once the client is closed for good (by [close], or a lost session not resumed). */
    val isClosed: Boolean get() = native.isClosed()

    /**
     * Publish [data] on channel [subject] and suspend until the server stored it; returns the
     * publish guid.
     *
     * @throws StanException.PublishAckTimeout when no ack came in time (the message may still
     *   have been stored), [StanException.ConnectionLost] when the session was lost meanwhile.
     */
    suspend fun publish(subject: String, data: ByteArray): String {
        if (data.size < BULK_PAYLOAD) return native.publish(subject, data)
        // A larger payload crosses in one copy into native memory; as a ByteArray argument it
        // would be read on the native side one byte at a time.
        return NativeBuffer(data.size.toULong()).use { buffer ->
            Pointer(buffer.address().toLong()).write(0, data, 0, data.size)
            native.publishBuffer(subject, buffer)
        }
    }

    /** Publish the UTF-8 bytes of [data]. */
    suspend fun publish(subject: String, data: String): String = publish(subject, data.encodeToByteArray())

    /**
     * Publish without waiting for the ack: suspends only while `maxPubAcksInFlight` publishes
     * already await acks. Await the returned [PublishAck] for the outcome.
     *
     * Publishes are stored in the order of the calls (calls from one coroutine, or ordered by
     * the caller). Calls made in a burst are handed to the native client together, in one
     * call, and their acks come back in bursts too, so keeping many publishes in flight is
     * cheap. A closed client fails the returned ack.
     *
     * @throws StanException.InvalidArgument for a bad channel name (nothing is published).
     */
    suspend fun publishAsync(subject: String, data: ByteArray): PublishAck = publisher.enqueue(subject, data)

    /** Publish the UTF-8 bytes of [data] without waiting for the ack; see [publishAsync]. */
    suspend fun publishAsync(subject: String, data: String): PublishAck = publishAsync(subject, data.encodeToByteArray())

    /** Subscribe to channel [subject]; see [SubscribeOptions]. */
    suspend fun subscribe(subject: String, configure: SubscribeOptions.() -> Unit = {}): Subscription =
        subscribe(subject, SubscribeOptions().apply(configure))

    /** Subscribe to channel [subject] with [options]. */
    suspend fun subscribe(subject: String, options: SubscribeOptions): Subscription =
        Subscription(native.subscribe(subject, options.toNative()), this).also { sub ->
            synchronized(subscriptions) { subscriptions.add(sub) }
        }

    /**
     * The connection events emitted from this call on, as a [Flow] that completes after
     * [Event.Closed]. Call it right after connecting so that no event is missed. The flow can be
     * collected once.
     */
    fun events(): Flow<Event> {
        val events = native.events()
        return flow {
            events.use {
                while (true) {
                    emit(it.next() ?: break)
                }
            }
        }
    }

    /**
     * Close the connection without blocking a thread: fail pending publishes, end every
     * subscription (durables are kept), unregister from the server. Closing twice does nothing.
     *
     * Every ack made before the close is sent before it, and in auto-ack mode the messages a
     * subscription handed out count as handled (acknowledged); messages it fetched but never
     * handed out stay unacknowledged and are redelivered.
     */
    suspend fun shutdown() {
        unclosed.closed = true
        val open = synchronized(subscriptions) { subscriptions.toList().also { subscriptions.clear() } }
        open.forEach { it.stopForClientClose() }
        native.closeConnection()
    }

    /** [shutdown], blocking the calling thread, then release the native handle. */
    override fun close() {
        try {
            runBlocking { shutdown() }
        } finally {
            native.close()
        }
    }

    /** [publish] for Java callers. */
    fun publishFuture(subject: String, data: ByteArray): CompletableFuture<String> =
        JavaInterop.scope.future { publish(subject, data) }

    /** [subscribe] for Java callers. */
    fun subscribeFuture(subject: String, options: SubscribeOptions): CompletableFuture<Subscription> =
        JavaInterop.scope.future { subscribe(subject, options) }

    /** [shutdown] for Java callers. */
    fun shutdownFuture(): CompletableFuture<Unit> = JavaInterop.scope.future { shutdown() }

    override fun toString(): String = "StanClient(clusterId=$clusterId, clientId=$clientId, closed=$isClosed)"

    /**
     * The garbage collector's close of an unreachable client that was not closed: the close
     * runs in the background (publishes awaiting acks fail, the server is told). It holds only
     * the native handle, never the client.
     */
    private class Unclosed(private val native: NativeClient) : Runnable {
        @Volatile
        var closed = false

        override fun run() {
            if (closed) return
            JavaInterop.scope.launch {
                try {
                    native.closeConnection()
                } catch (_: StanException) {
                    // the close request failed: the client is closed anyway
                } catch (_: IllegalStateException) {
                    // the native handle was released meanwhile
                }
            }
        }
    }

    /** Connecting. */
    companion object {
        /** Runs [Unclosed] for clients that became unreachable. */
        private val CLEANER: Cleaner = Cleaner.create()

        /**
         * Connect to the streaming server of cluster [clusterId] as [clientId].
         *
         * @throws StanException.ConnectTimeout when no streaming server answered (wrong cluster
         *   ID?), [StanException.Transport] when NATS cannot be reached,
         *   [StanException.InvalidArgument] for bad options.
         */
        suspend fun connect(
            clusterId: String,
            clientId: String,
            configure: ConnectOptions.() -> Unit = {},
        ): StanClient = connect(clusterId, clientId, ConnectOptions().apply(configure))

        /** Connect with [options]. */
        suspend fun connect(clusterId: String, clientId: String, options: ConnectOptions): StanClient {
            NativeSetup.ensure()
            val native = NativeClient.connect(options.toNative(clusterId, clientId))
            return StanClient(native, options.maxPubAcksInFlight ?: DEFAULT_MAX_PUB_ACKS_IN_FLIGHT)
        }

        /** The package's version (the same for every stan-rs crate and package). */
        @JvmField
        val VERSION: String = StanClient::class.java.getResourceAsStream("stan-client.properties")
            ?.use { java.util.Properties().apply { load(it) }.getProperty("version") }
            ?: "unknown"

        /** The native client's default `maxPubAcksInFlight`. */
        private const val DEFAULT_MAX_PUB_ACKS_IN_FLIGHT = 16384

        /** Payloads of this many bytes or more cross to the native client in a [NativeBuffer]. */
        private const val BULK_PAYLOAD = 2048

        /** [connect] for Java callers. */
        @JvmStatic
        @JvmOverloads
        fun connectFuture(
            clusterId: String,
            clientId: String,
            options: ConnectOptions = ConnectOptions(),
        ): CompletableFuture<StanClient> = JavaInterop.scope.future { connect(clusterId, clientId, options) }
    }
}
