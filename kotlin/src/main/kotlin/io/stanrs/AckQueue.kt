package io.stanrs

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch

/**
 * The manual acks of one subscription, coalesced: [Message.ack] only queues the message here;
 * [flush] sends everything queued by then with one native call per run of consecutive messages
 * of a fetched batch (usually one per batch). The subscription flushes before it fetches the
 * next batch and before it closes, so the acks of a batch read in a loop go out together and
 * every ack made before a close is sent before it; acks made meanwhile (from another coroutine,
 * or while the reader waits) are flushed on a `Dispatchers.Default` thread [FLUSH_DELAY_MS]
 * after the first of them.
 */
internal class AckQueue {
    /** Messages [start], [start] + 1, … [end] - 1 of the batch [acker] acks. */
    private class Run(val acker: NativeAcker, val start: Int, var end: Int)

    private val lock = Any()

    /** Held while acks are taken and sent, so that [flush] returns only once all are sent. */
    private val sending = Any()
    private var queued = ArrayList<Run>()
    private var flushScheduled = false

    fun add(message: Message) {
        val acker = message.requireAcker()
        val index = message.batchIndex
        val schedule = synchronized(lock) {
            val last = queued.lastOrNull()
            if (last != null && last.acker === acker && last.end == index) {
                last.end = index + 1
            } else {
                queued.add(Run(acker, index, index + 1))
            }
            !flushScheduled.also { flushScheduled = true }
        }
        if (schedule) {
            scope.launch {
                delay(FLUSH_DELAY_MS)
                flush()
            }
        }
    }

    /** Send every queued ack now; returns once they are sent (also by a flush running meanwhile). */
    fun flush() {
        synchronized(sending) { sendQueued() }
    }

    private fun sendQueued() {
        while (true) {
            val runs = synchronized(lock) {
                if (queued.isEmpty()) {
                    flushScheduled = false
                    return
                }
                queued.also { queued = ArrayList() }
            }
            for (run in runs) {
                try {
                    run.acker.ackRange(run.start.toUInt(), run.end.toUInt())
                } catch (_: StanException) {
                    // The client closed meanwhile: nothing can be acked any more, and the
                    // server redelivers to whoever subscribes again.
                }
            }
        }
    }

    private companion object {
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

        /** How long an ack waits for others to join it when no fetch or close sends it first. */
        const val FLUSH_DELAY_MS = 1L
    }
}
