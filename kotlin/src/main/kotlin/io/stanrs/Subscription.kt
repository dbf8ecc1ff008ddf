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
 * subscription has buffered (up to [BATCH_SIZE] messages, or about [BATCH_BYTES] of payload),
 * and [next] / [messages] hand them out one by one from memory. In auto-ack mode a message is acknowledged once the next one is
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

    /**
     * Held while a fetched batch is read from the native delivery buffer, and by [close] while
     * it releases the native handle (which frees that buffer).
     */
    private val reading = Any()

    /** Set by [close] once the native handle is released: no batch is read after it. */
    private var released = false

    /** The header words of the batch being read (reused; guarded by [reading]). */
    private var header = LongArray(0)

    /** How many messages the next fetch asks for (see [BATCH_BYTES]); guarded by `fetching`. */
    private var fetchMax = FIRST_BATCH_SIZE

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
        val max = fetchMax.toUInt()
        val next = native.tryNextBatch(max, doneId, doneTaken.toUInt())
            ?: native.nextBatch(max, doneId, doneTaken.toUInt())
            ?: return null
        // The batch is valid until the next fetch (serialised by `fetching`) or the release of
        // the native handle (see `close`).
        val messages = synchronized(reading) {
            if (released) return null
            unpack(next.address.toLong(), next.len.toLong(), next.count.toInt(), next.acker)
        }
        // Size the next batch after this one's payloads: up to BATCH_SIZE small messages, or
        // about BATCH_BYTES of large ones.
        val count = next.count.toInt()
        val average = messages.sumOf { it.data.size.toLong() } / maxOf(count, 1)
        fetchMax = (BATCH_BYTES / maxOf(average, 1L)).coerceIn(MIN_BATCH_SIZE.toLong(), BATCH_SIZE.toLong()).toInt()
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
     * The [count] messages laid out in the [len] bytes at [address] (the subscription's native
     * delivery buffer; see `bindings/uniffi/src/buffer.rs`): the headers in one read; small
     * payloads through one direct `ByteBuffer` over the rest of the buffer, large ones read
     * where the native message holds them. Each payload is copied once, into its `ByteArray`.
     * Called under [reading].
     */
    private fun unpack(address: Long, len: Long, count: Int, acker: NativeAcker?): List<Message> {
        val memory = Pointer(address)
        val words = count * DELIVERY_WORDS
        if (header.size < words) header = LongArray(maxOf(words, FIRST_BATCH_SIZE * DELIVERY_WORDS))
        val header = header
        memory.read(0, header, 0, words)
        val packed = len - words * 8L
        val payloads = if (packed > 0) memory.getByteBuffer(words * 8L, packed) else null
        val messages = ArrayList<Message>(count)
        for (i in 0 until count) {
            val h = i * DELIVERY_WORDS
            val data = ByteArray(header[h + 3].toInt())
            val at = header[h + 4]
            if (at == 0L) payloads?.get(data) else Pointer(at).read(0, data, 0, data.size)
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
            synchronized(reading) {
                released = true
                native.close()
            }
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

    /** Batch sizes. */
    companion object {
        /** The most messages one native call brings over. */
        const val BATCH_SIZE: Int = 1024

        /**
         * About how many payload bytes one native call brings over: after a batch whose
         * payloads averaged `n` bytes the next one asks for `BATCH_BYTES / n` messages (at least
         * 16, at most [BATCH_SIZE]), so 16 KiB payloads come 256 at a time and payloads of 4 KiB
         * or less [BATCH_SIZE] at a time. The first fetch asks for 256.
         */
        const val BATCH_BYTES: Long = 4L * 1024 * 1024

        private const val FIRST_BATCH_SIZE = 256
        private const val MIN_BATCH_SIZE = 16

        private const val INVALID_SUBSCRIPTION = "stan: invalid subscription"

        /** 64-bit header words per message in a native batch. */
        private const val DELIVERY_WORDS = 5
    }
}
