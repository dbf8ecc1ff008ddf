package io.stanrs

import com.sun.jna.Pointer
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.future.future
import java.util.concurrent.ConcurrentHashMap

/**
 * The pipelined publishes of one client, coalesced: [enqueue] only queues a message here; a
 * flush on another thread takes everything queued by then and hands it to the native client in
 * one call (in call order), and one coroutine receives the acks of every batch in bursts. A
 * burst of publishes therefore costs one native call and a few ack wake-ups, not one each.
 */
internal class Publisher(private val native: NativeClient, maxInFlight: Int) {
    private class Pending(val subject: String, val data: ByteArray, val ack: PublishAck)

    /** The acks of one batch handed to the native client, and how many are still open. */
    private class Flushed(val acks: Array<PublishAck>) {
        var open = acks.size
    }

    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /** Bounds the publishes awaiting acks, as `maxPubAcksInFlight` does in the native client. */
    private val inFlight = Semaphore(maxInFlight)

    /** Channel names already checked (a publisher usually sticks to a few channels). */
    private val validChannels = ConcurrentHashMap.newKeySet<String>()

    /** Guards everything below. */
    private val lock = Any()
    private var queued = ArrayList<Pending>()
    private var flushScheduled = false
    private val flushed = HashMap<Long, Flushed>()
    private var nextBatchId = 1L
    private var receiving = false

    suspend fun enqueue(subject: String, data: ByteArray): PublishAck {
        checkChannel(subject)
        inFlight.acquire()
        val ack = PublishAck(inFlight)
        val schedule = synchronized(lock) {
            queued.add(Pending(subject, data, ack))
            !flushScheduled.also { flushScheduled = true }
        }
        if (schedule) scope.launch { flush() }
        return ack
    }

    private fun checkChannel(subject: String) {
        if (subject in validChannels) return
        native.checkChannel(subject)
        if (validChannels.size >= MAX_REMEMBERED_CHANNELS) validChannels.clear()
        validChannels.add(subject)
    }

    private fun flush() {
        while (true) {
            val batch = synchronized(lock) {
                if (queued.isEmpty()) {
                    flushScheduled = false
                    return
                }
                queued.also { queued = ArrayList() }
            }
            var start = 0
            while (start < batch.size) {
                // Up to MAX_BATCH messages and about MAX_BATCH_BYTES of payload per native call.
                var end = start
                var bytes = 0L
                while (end < batch.size && end - start < MAX_BATCH && (end == start || bytes < MAX_BATCH_BYTES)) {
                    bytes += batch[end].data.size
                    end++
                }
                send(batch.subList(start, end), bytes)
                start = end
            }
        }
    }

    private fun send(batch: List<Pending>, payloadBytes: Long) {
        val (id, startReceiving) = synchronized(lock) {
            val id = nextBatchId++
            flushed[id] = Flushed(Array(batch.size) { batch[it].ack })
            id to !receiving.also { receiving = true }
        }
        if (startReceiving) scope.launch { receive() }
        try {
            startNative(id, batch, payloadBytes)
        } catch (e: Exception) {
            synchronized(lock) { flushed.remove(id) }
            val error = e as? StanException ?: StanException.Generic("publish failed: $e")
            batch.forEach { it.ack.fail(error) }
        }
    }

    /**
     * Hand [batch] to the native client in one buffer (the publish layout of
     * `bindings/uniffi/src/buffer.rs`): one header word per message (channel index, length),
     * then the payloads, each copied across once.
     */
    private fun startNative(id: Long, batch: List<Pending>, payloadBytes: Long) {
        val channels = ArrayList<String>(1)
        val indices = HashMap<String, Int>()
        val header = LongArray(batch.size)
        var last: String? = null
        var lastIndex = 0
        for (i in batch.indices) {
            val subject = batch[i].subject
            if (subject != last) {
                lastIndex = indices.getOrPut(subject) { channels.add(subject); channels.size - 1 }
                last = subject
            }
            header[i] = (lastIndex.toLong() shl 32) or batch[i].data.size.toLong()
        }
        NativeBuffer((header.size * 8L + payloadBytes).toULong()).use { buffer ->
            val memory = Pointer(buffer.address().toLong())
            memory.write(0, header, 0, header.size)
            var offset = header.size * 8L
            for (p in batch) {
                memory.write(offset, p.data, 0, p.data.size)
                offset += p.data.size
            }
            native.startPublishBatch(id.toULong(), channels, batch.size.toUInt(), buffer)
        }
    }

    /** Completes the acks, one native call per burst of outcomes, while any batch is open. */
    private suspend fun receive() {
        while (true) {
            val outcomes = native.nextPublishOutcomes()
            val done = ArrayList<Pair<PublishAck, PublishOutcome>>(outcomes.size)
            val more = synchronized(lock) {
                for (o in outcomes) {
                    val key = o.batch.toLong()
                    val f = flushed[key] ?: continue
                    done.add(f.acks[o.index.toInt()] to o)
                    if (--f.open == 0) flushed.remove(key)
                }
                flushed.isNotEmpty().also { if (!it) receiving = false }
            }
            for ((ack, o) in done) {
                val code = o.errorCode
                if (code == null) ack.succeed(o.guid) else ack.fail(stanException(code, o.errorMessage))
            }
            if (!more) return
        }
    }

    private companion object {
        /** The most messages handed to the native client in one call. */
        const val MAX_BATCH = 1024

        /** About the most payload bytes handed to the native client in one call. */
        const val MAX_BATCH_BYTES = 4L * 1024 * 1024

        const val MAX_REMEMBERED_CHANNELS = 1024
    }
}

/** The pending acknowledgement of a [StanClient.publishAsync]. */
class PublishAck internal constructor(private val inFlight: Semaphore) {
    private val outcome = CompletableDeferred<String>()

    /** The guid of the publish: `null` until the server stored it; [await] returns it. */
    @Volatile
    var guid: String? = null
        internal set

    /**
     * Suspend until the server acknowledged the message; returns [guid].
     *
     * @throws StanException.PublishAckTimeout, [StanException.ConnectionLost], … as
     *   [StanClient.publish].
     */
    suspend fun await(): String = outcome.await()

    /** [await] for Java callers. */
    fun future(): java.util.concurrent.CompletableFuture<String> = JavaInterop.scope.future { await() }

    internal fun succeed(guid: String) {
        this.guid = guid
        if (outcome.complete(guid)) inFlight.release()
    }

    internal fun fail(e: StanException) {
        if (outcome.completeExceptionally(e)) inFlight.release()
    }
}
