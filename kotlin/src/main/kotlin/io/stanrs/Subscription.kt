package io.stanrs

import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.onCompletion
import kotlinx.coroutines.future.future
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.util.concurrent.CompletableFuture

/**
 * A subscription to a channel. Read it with [messages] (a [Flow]) or [next].
 *
 * [close] (or `use {}`) closes it on the server and keeps a durable subscription, so a later
 * subscribe with the same durable name resumes where it stopped; [unsubscribe] deletes the
 * durable.
 */
class Subscription internal constructor(private val native: NativeSubscription) : AutoCloseable {
    /** The channel this subscription reads. */
    val subject: String = native.subject()

    /** True when the subscription uses manual acks. */
    val manualAcks: Boolean = native.manualAcks()

    /**
     * The next message, or `null` once the subscription ended (closed, unsubscribed, client
     * closed). In auto-ack mode asking for the next message acks the previous one.
     *
     * @throws StanException when the subscription cannot go on (for example
     *   [StanException.ConnectionLost]); it has ended then.
     */
    suspend fun next(): Message? = native.next()?.let(::Message)

    /**
     * The messages as a [Flow]. The subscription is closed (durables kept) when the flow
     * completes, fails or is cancelled, e.g. by `take(n)` or by cancelling the collecting
     * coroutine. The flow can be collected once.
     */
    fun messages(): Flow<Message> = flow {
        while (true) {
            emit(next() ?: break)
        }
    }.onCompletion {
        withContext(NonCancellable) { closeQuietly() }
    }

    /** Remove the subscription on the server; a durable subscription is deleted with it. */
    suspend fun unsubscribe() {
        native.unsubscribe()
    }

    /**
     * Close the subscription without blocking a thread; the server keeps a durable.
     *
     * @throws StanException.InvalidState when already closed or unsubscribed.
     */
    suspend fun shutdown() {
        native.closeSubscription()
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
}
