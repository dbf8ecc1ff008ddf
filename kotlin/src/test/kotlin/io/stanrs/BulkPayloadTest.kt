package io.stanrs

import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import org.junit.jupiter.api.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/**
 * Payloads cross the native boundary in bulk buffers (one per publish burst, one per fetched
 * batch): every byte, length and channel must come out as it went in, whatever the sizes.
 */
class BulkPayloadTest : SharedBrokerTest() {
    /** A payload of [size] bytes that differs from message to message ([seed]). */
    private fun payload(seed: Int, size: Int) = ByteArray(size) { (it * 31 + seed * 7).toByte() }

    @Test
    fun largeAndSmallPayloadsOnSeveralChannelsCrossIntact() = test { sc ->
        val channels = List(3) { unique("bulk$it") }
        // 48 messages of 300 KiB (over 14 MB: several native publish calls, and batches read
        // message by message) mixed with small and empty ones (batches read in one copy).
        val sizes = List(96) { i -> if (i % 2 == 0) 300 * 1024 else (i * 13) % 200 }
        val acks = sizes.mapIndexed { i, size -> sc.publishAsync(channels[i % 3], payload(i, size)) }
        within { acks.forEach { it.await() } }
        for ((c, ch) in channels.withIndex()) {
            val expected = sizes.indices.filter { it % 3 == c }
            val got = within {
                sc.subscribe(ch) { deliverAllAvailable(); maxInFlight = 1000 }.messages().take(expected.size).toList()
            }
            assertEquals((1L..expected.size.toLong()).toList(), got.map { it.sequence })
            for ((m, i) in got.zip(expected)) {
                assertEquals(ch, m.subject)
                assertFalse(m.redelivered)
                assertEquals(0, m.redeliveryCount)
                assertContentEquals(payload(i, sizes[i]), m.data, "message $i on $ch")
            }
        }
    }

    @Test
    fun awaitedPublishesOfEverySizeCrossIntact() = test { sc ->
        // Awaited publishes below 2 KiB cross as a byte array, from 2 KiB on in a native buffer:
        // sizes on both sides of that edge, and an empty and a large one.
        val ch = unique("awaited")
        val sizes = listOf(0, 1, 2047, 2048, 2049, 64 * 1024, 512 * 1024, 100)
        val guids = sizes.mapIndexed { i, size -> within { sc.publish(ch, payload(i, size)) } }
        assertEquals(sizes.size, guids.toSet().size, "one guid per publish")
        val got = within { sc.subscribe(ch) { deliverAllAvailable() }.messages().take(sizes.size).toList() }
        for ((i, m) in got.withIndex()) {
            assertEquals(i + 1L, m.sequence)
            assertContentEquals(payload(i, sizes[i]), m.data, "message $i (${sizes[i]} bytes)")
        }
    }

    @Test
    fun awaitedPublishOfALargePayloadToABadChannelFails() = test { sc ->
        val error = assertFailsWith<StanException.InvalidArgument> { sc.publish("bad channel", payload(0, 4096)) }
        assertTrue("bad channel" in (error.message ?: ""), error.message)
    }

    @Test
    fun messagesKeptFromEarlierBatchesSurviveTheReuseOfTheNativeBuffer() = test { sc ->
        // The subscription refills one native buffer for every batch: 600 messages (at least
        // three batches of at most 256), large ones first and small ones after (so the buffer
        // grows, is overwritten and may shrink), all kept until the end and only then checked.
        val ch = unique("reuse")
        val sizes = List(600) { i -> if (i < 300) 8 * 1024 + i else i % 50 }
        within { sizes.mapIndexed { i, size -> sc.publishAsync(ch, payload(i, size)) }.forEach { it.await() } }
        val sub = sc.subscribe(ch) { deliverAllAvailable(); maxInFlight = 1000 }
        val got = within { sub.messages().take(sizes.size).toList() }
        assertEquals((1L..sizes.size.toLong()).toList(), got.map { it.sequence })
        for ((i, m) in got.withIndex()) {
            assertContentEquals(payload(i, sizes[i]), m.data, "message $i")
        }
    }

    @Test
    fun manualAcksOutOfOrderAreAllSent() = test { sc ->
        val ch = unique("scattered")
        val durable = unique("d")
        within { (1..20).map { sc.publishAsync(ch, "m$it") }.forEach { it.await() } }
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); manualAcks = true; maxInFlight = 100 }
        val sub = sc.subscribe(ch, opts)
        val got = (1..20).map { sub.nextMsg() }
        // Every other message one by one, backwards, then the rest in one call: no run of
        // consecutive messages, and the acks of one batch in several native calls.
        got.filterIndexed { i, _ -> i % 2 == 1 }.reversed().forEach { it.ack() }
        sub.ackMany(got.filterIndexed { i, _ -> i % 2 == 0 })
        sub.shutdown()
        within { sc.publish(ch, "m21") }
        val again = sc.subscribe(ch, opts)
        val next = again.nextMsg()
        assertEquals(21L, next.sequence, "none of the twenty acked messages is redelivered")
        next.ack()
        again.shutdown()
    }
}
