package io.stanrs

import com.sun.jna.Pointer
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.onCompletion
import kotlinx.coroutines.future.future
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import java.util.concurrent.CompletableFuture

/**
 * A subscription to a channel. Read it with [messages] (a [Flow]) or [next].
 *
 * Messages cross from the native client in batches: one call brings everything the
 * subscription has buffered (up to [BATCH_SIZE] messages), and [next] / [messages] hand them
 * out one by one from memory. In auto-ack mode a message is acknowledged once the next one is
 * taken or the subscription is closed; messages of a batch that were never handed out (the
 * flow was cancelled, the subscription closed) stay unacknowledged and are redelivered by the
 * server.
 *
 * [close] (or `use {}`) closes it on the server and keeps a durable subscription, so a later
 * subscribe with the same durable name resumes where it stopped; [unsubscribe] deletes the
 * durable.
 */
class Subscription internal constructor(
    private val native: NativeSubscription,
    /** The client: a reachable subscription keeps it reachable, so it is not closed under it. */
    @Suppress("unused") private val client: StanClient,
) : AutoCloseable {
    /** The channel this subscription reads. */
    val subject: String = native.subject()

    /** True when the subscription uses manual acks. */
    val manualAcks: Boolean = native.manualAcks()

    /** The manual acks of [Message.ack], sent in groups. */
    private val ackQueue = AckQueue()

    /** Set once the application closed or unsubscribed this subscription. */
    @Volatile
    private var closedByApp = false

    /** Set once this subscription or its client closed: nothing more is handed out. */
    @Volatile
    private var stopped = false

    /** Serialises the native fetches. */
    private val fetching = Mutex()

    /** Guards the current batch and how much of it was handed out. */
    private val lock = Any()
    private var batchId: ULong = 0u
    private var batch: List<Message> = emptyList()
    private var taken = 0

    /**
     * The next message, or `null` once the subscription ended (closed, unsubscribed, client
     * closed). In auto-ack mode taking a message acknowledges the one taken before it.
     *
     * @throws StanException when the subscription cannot go on (for example
     *   [StanException.ConnectionLost]); it has ended then.
     */
    suspend fun next(): Message? {
        takeBuffered()?.let { return it }
        return fetching.withLock {
            takeBuffered() ?: fetch()
        }
    }

    /** The next message already fetched, or `null`. */
    private fun takeBuffered(): Message? = synchronized(lock) {
        if (!stopped && taken < batch.size) {
            batch[taken++]
        } else {
            null
        }
    }

    /**
     * One native call (two when nothing is buffered): report the batch handed out, get the next
     * one, take its first message.
     */
    private suspend fun fetch(): Message? {
        if (manualAcks) ackQueue.flush() // the acks of the batch read so far, in one go
        val (doneId, doneTaken) = synchronized(lock) { batchId to taken }
        // What is buffered already comes with a plain call; only an empty buffer suspends.
        val next = native.tryNextBatch(BATCH_SIZE.toUInt(), doneId, doneTaken.toUInt())
            ?: native.nextBatch(BATCH_SIZE.toUInt(), doneId, doneTaken.toUInt())
            ?: return null
        val messages = next.buffer.use { unpack(next.address.toLong(), next.count.toInt(), next.acker) }
        synchronized(lock) {
            // Closed while the batch was on its way: it is never handed out (stays unacked).
            if (stopped) return null
            batchId = next.id
            batch = messages
            taken = 0
        }
        return takeBuffered()
    }

    /**
     * The [count] messages laid out at [address] (in a native buffer the caller holds; see
     * `bindings/uniffi/src/buffer.rs`).
     */
    private fun unpack(address: Long, count: Int, acker: NativeAcker?): List<Message> {
        val memory = Pointer(address)
        val header = LongArray(count * DELIVERY_WORDS)
        memory.read(0, header, 0, header.size)
        var total = 0L
        for (i in 0 until count) total += header[i * DELIVERY_WORDS + 3]
        var offset = header.size * 8L
        // Small payloads: one copy across, then one per message; large ones: one copy each.
        val all = if (total <= BULK_READ_LIMIT) ByteArray(total.toInt()) else null
        all?.let { memory.read(offset, it, 0, it.size) }
        var at = 0
        val messages = ArrayList<Message>(count)
        for (i in 0 until count) {
            val h = i * DELIVERY_WORDS
            val len = header[h + 3].toInt()
            val data: ByteArray
            if (all != null) {
                data = all.copyOfRange(at, at + len)
                at += len
            } else {
                data = ByteArray(len)
                memory.read(offset, data, 0, len)
                offset += len
            }
            val flags = header[h + 2]
            messages.add(
                Message(
                    subject, header[h], data, header[h + 1],
                    redelivered = (flags ushr 32) != 0L,
                    redeliveryCount = flags.toInt(),
                    acker = acker, index = i, owner = this,
                ),
            )
        }
        return messages
    }

    /**
     * The current batch's id and how many of its messages were handed out, dropping the rest
     * of it (for a close: the rest stays unacknowledged and is never handed out).
     */
    private fun detach(): Pair<ULong, UInt> {
        closedByApp = true
        return dropBatch()
    }

    /** Send the queued acks, then drop the current batch: returns its id and how much was handed out. */
    private fun dropBatch(): Pair<ULong, UInt> {
        ackQueue.flush()
        return synchronized(lock) {
            stopped = true
            val progress = batchId to taken.toUInt()
            batch = emptyList()
            taken = 0
            progress
        }
    }

    /**
     * The client is closing: send the queued acks, report how far the current batch was
     * handed out (auto-ack mode: those messages are acked before the client's close request)
     * and hand out nothing more.
     */
    internal fun stopForClientClose() {
        if (closedByApp) return // closed already, everything reported
        val (id, n) = dropBatch()
        try {
            native.settle(id, n)
        } catch (_: IllegalStateException) {
            // closed and released by another thread meanwhile, which reported the batch
        }
    }

    internal fun queueAck(message: Message) {
        if (closedByApp) throw StanException.InvalidState(INVALID_SUBSCRIPTION)
        ackQueue.add(message)
    }

    /**
     * The messages as a [Flow]. The subscription is closed (durables kept) when the flow
     * completes, fails or is cancelled, e.g. by `take(n)` or by cancelling the collecting
     * coroutine; messages fetched but not yet emitted then stay unacknowledged. The flow can be
     * collected once.
     */
    fun messages(): Flow<Message> = flow {
        while (true) {
            emit(next() ?: break)
        }
    }.onCompletion {
        withContext(NonCancellable) { closeQuietly() }
    }

    /**
     * Acknowledge [messages] of this manual-ack subscription in as few native calls as possible
     * (one per run of consecutive messages of a fetched batch). It never waits: the acks are
     * queued to the connection. Acking a message twice does nothing.
     *
     * @throws StanException.InvalidState in auto-ack mode or after the subscription was closed
     *   (the messages before the failing one are acknowledged).
     */
    fun ackMany(messages: Iterable<Message>) {
        ackQueue.flush() // keep the order of earlier ack() calls
        var current: NativeAcker? = null
        var start = 0
        var end = 0
        for (m in messages) {
            val a = m.requireAcker()
            val i = m.batchIndex
            if (a !== current || i != end) {
                current?.ackRange(start.toUInt(), end.toUInt())
                current = a
                start = i
            }
            end = i + 1
        }
        current?.ackRange(start.toUInt(), end.toUInt())
    }

    /** Remove the subscription on the server; a durable subscription is deleted with it. */
    suspend fun unsubscribe() {
        val (id, n) = detach()
        native.unsubscribe(id, n)
    }

    /**
     * Close the subscription without blocking a thread; the server keeps a durable.
     *
     * @throws StanException.InvalidState when already closed or unsubscribed.
     */
    suspend fun shutdown() {
        val (id, n) = detach()
        native.closeSubscription(id, n)
    }

    /** Close on the server unless already closed or ended, then release the native handle. */
    override fun close() {
        try {
            runBlocking { closeQuietly() }
        } finally {
            native.close()
        }
    }

    private suspend fun closeQuietly() {
        try {
            shutdown()
        } catch (_: StanException.InvalidState) {
            // already closed or unsubscribed
        } catch (_: StanException.ConnectionClosed) {
            // the client is closed, so is the subscription
        } catch (_: StanException.ConnectionLost) {
            // the session is gone, so is the subscription
        }
    }

    /** [next] for Java callers. */
    fun nextFuture(): CompletableFuture<Message?> = JavaInterop.scope.future { next() }

    /** [unsubscribe] for Java callers. */
    fun unsubscribeFuture(): CompletableFuture<Unit> = JavaInterop.scope.future { unsubscribe() }

    override fun toString(): String = "Subscription(subject=$subject, manualAcks=$manualAcks)"

    /** Batch size. */
    companion object {
        /** The most messages one native call brings over. */
        const val BATCH_SIZE: Int = 256

        private const val INVALID_SUBSCRIPTION = "stan: invalid subscription"

        /** 64-bit header words per message in a native batch. */
        private const val DELIVERY_WORDS = 4

        /** Batches with at most this many payload bytes cross in one copy. */
        private const val BULK_READ_LIMIT = 256L * 1024
    }
}
