package io.stanrs

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch

/**
 * The manual acks of one subscription, coalesced: [Message.ack] only queues the message here,
 * and a flush on a `Dispatchers.Default` thread sends everything queued by then with one native
 * call per fetched batch. [flush] also runs before the subscription closes, so every ack made
 * before a close is sent before it.
 */
internal class AckQueue {
    private val lock = Any()

    /** Held while acks are taken and sent, so that [flush] returns only once all are sent. */
    private val sending = Any()
    private var queued = ArrayList<Message>()
    private var flushScheduled = false

    fun add(message: Message) {
        val schedule = synchronized(lock) {
            queued.add(message)
            !flushScheduled.also { flushScheduled = true }
        }
        if (schedule) scope.launch { flush() }
    }

    /** Send every queued ack now; returns once they are sent (also by a flush running meanwhile). */
    fun flush() {
        synchronized(sending) { sendQueued() }
    }

    private fun sendQueued() {
        while (true) {
            val batch = synchronized(lock) {
                if (queued.isEmpty()) {
                    flushScheduled = false
                    return
                }
                queued.also { queued = ArrayList() }
            }
            var i = 0
            while (i < batch.size) {
                val acker = batch[i].requireAcker()
                val indices = ArrayList<UInt>()
                while (i < batch.size && batch[i].requireAcker() === acker) {
                    indices.add(batch[i].batchIndex.toUInt())
                    i++
                }
                try {
                    acker.ack(indices)
                } catch (_: StanException) {
                    // The client closed meanwhile: nothing can be acked any more, and the
                    // server redelivers to whoever subscribes again.
                }
            }
        }
    }

    private companion object {
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    }
}
