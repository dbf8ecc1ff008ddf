package io.stanrs

import kotlinx.coroutines.future.future
import java.time.Instant
import java.util.concurrent.CompletableFuture

/**
 * A message delivered to a [Subscription].
 *
 * In auto-ack mode (the default) a message is acknowledged once the next one is taken (the next
 * element of [Subscription.messages], the next [Subscription.next]) or when the subscription
 * is closed; messages the subscription received but never handed out are not acknowledged, so
 * the server redelivers them. With `manualAcks = true` call [ack], or [Subscription.ackMany]
 * for many at once.
 */
class Message internal constructor(
    /** The channel the message was published on. */
    val subject: String,
    /** The channel's sequence number of this message (starts at 1). */
    val sequence: Long,
    /** The payload. */
    val data: ByteArray,
    private val timestampNanos: Long,
    /** True when this is not the first delivery of the message to this subscription. */
    val redelivered: Boolean,
    /** How many times the server redelivered the message (0 on the first delivery). */
    val redeliveryCount: Int,
    private val acker: NativeAcker?,
    private val index: Int,
    private val owner: Subscription,
) {
    /** When the server stored the message. */
    val timestamp: Instant
        get() = Instant.ofEpochSecond(
            Math.floorDiv(timestampNanos, NANOS_PER_SECOND),
            Math.floorMod(timestampNanos, NANOS_PER_SECOND),
        )

    /**
     * Acknowledge the message (manual-ack subscriptions only; acking twice does nothing). It
     * never waits: the ack is queued and sent, together with the acks made meanwhile, in one
     * native call shortly after (and always before the subscription closes).
     *
     * @throws StanException.InvalidState in auto-ack mode or after the subscription was closed.
     */
    suspend fun ack() {
        ackNow()
    }

    /** [ack] for Java callers. */
    fun ackFuture(): CompletableFuture<Unit> = JavaInterop.scope.future { ack() }

    /** The payload decoded as UTF-8. */
    fun dataAsString(): String = data.decodeToString()

    override fun toString(): String =
        "Message(subject=$subject, sequence=$sequence, size=${data.size}, redelivered=$redelivered)"

    internal fun ackNow() {
        requireAcker()
        owner.queueAck(this)
    }

    internal fun requireAcker(): NativeAcker =
        acker ?: throw StanException.InvalidState(MANUAL_ACK_IN_AUTO_MODE)

    internal val batchIndex: Int get() = index

    private companion object {
        const val NANOS_PER_SECOND = 1_000_000_000L
        const val MANUAL_ACK_IN_AUTO_MODE = "stan: cannot manually ack in auto-ack mode"
    }
}
