package io.stanrs

import kotlinx.coroutines.future.future
import java.time.Instant
import java.util.concurrent.CompletableFuture

/**
 * A message delivered to a [Subscription].
 *
 * In auto-ack mode (the default) a message is acknowledged when the next one is requested (the
 * next element of [Subscription.messages]) or when the subscription is closed. With
 * `manualAcks = true` call [ack].
 */
class Message internal constructor(delivery: Delivery) {
    private val native: NativeMessage = delivery.message

    /** The channel's sequence number of this message (starts at 1). */
    val sequence: Long = delivery.sequence.toLong()

    /** The channel the message was published on. */
    val subject: String = delivery.subject

    /** The payload. */
    val data: ByteArray = delivery.data

    /** When the server stored the message. */
    val timestamp: Instant = delivery.timestamp

    /** True when this is not the first delivery of the message to this subscription. */
    val redelivered: Boolean = delivery.redelivered

    /** How many times the server redelivered the message (0 on the first delivery). */
    val redeliveryCount: Int = delivery.redeliveryCount.toInt()

    /**
     * Acknowledge the message (manual-ack subscriptions only; acking twice does nothing).
     *
     * @throws StanException.InvalidState in auto-ack mode or after the subscription was closed.
     */
    suspend fun ack() {
        native.ack()
    }

    /** [ack] for Java callers. */
    fun ackFuture(): CompletableFuture<Unit> = JavaInterop.scope.future { ack() }

    /** The payload decoded as UTF-8. */
    fun dataAsString(): String = data.decodeToString()

    override fun toString(): String =
        "Message(subject=$subject, sequence=$sequence, size=${data.size}, redelivered=$redelivered)"
}
