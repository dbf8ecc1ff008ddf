package io.stanrs

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
    private var batch: List<Delivery> = emptyList()
    private var acker: NativeAcker? = null
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
            val i = taken++
            Message(subject, batch[i], acker, i, this)
        } else {
            null
        }
    }

    /**
     * One native call (two when nothing is buffered): report the batch handed out, get the next
     * one, take its first message.
     */
    private suspend fun fetch(): Message? {
        val (doneId, doneTaken) = synchronized(lock) { batchId to taken }
        // What is buffered already comes with a plain call; only an empty buffer suspends.
        val next = native.tryNextBatch(BATCH_SIZE.toUInt(), doneId, doneTaken.toUInt())
            ?: native.nextBatch(BATCH_SIZE.toUInt(), doneId, doneTaken.toUInt())
            ?: return null
        synchronized(lock) {
            // Closed while the batch was on its way: it is never handed out (stays unacked).
            if (stopped) return null
            batchId = next.id
            batch = next.messages
            acker = next.acker
            taken = 0
        }
        return takeBuffered()
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
            acker = null
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
     * (one per batch they were fetched in). It never waits: the acks are queued to the
     * connection. Acking a message twice does nothing.
     *
     * @throws StanException.InvalidState in auto-ack mode or after the subscription was closed
     *   (the messages before the failing one are acknowledged).
     */
    fun ackMany(messages: Iterable<Message>) {
        ackQueue.flush() // keep the order of earlier ack() calls
        var current: NativeAcker? = null
        val indices = ArrayList<UInt>()
        for (m in messages) {
            val a = m.requireAcker()
            if (a !== current) {
                current?.ack(indices)
                indices.clear()
                current = a
            }
            indices.add(m.batchIndex.toUInt())
        }
        current?.ack(indices)
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
    }
}
