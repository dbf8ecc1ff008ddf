package io.stanrs

import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Test
import java.time.Duration
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlin.time.Duration.Companion.seconds

/**
 * The batch paths: messages cross from the native client [Subscription.BATCH_SIZE] at a time
 * and are handed out one by one; pipelined publishes cross in bursts.
 */
class BatchTest : SharedBrokerTest() {
    /** Publish `m1`..`m<n>` pipelined and wait for every ack. */
    private suspend fun StanClient.publishAll(ch: String, n: Int, from: Int = 1) {
        within { (from until from + n).map { publishAsync(ch, "m$it") }.forEach { it.await() } }
    }

    @Test
    fun orderAcrossBatchBoundaries() = test { sc ->
        val ch = unique("order")
        val n = 3 * Subscription.BATCH_SIZE + 17
        sc.publishAll(ch, n)
        val got = within { sc.subscribe(ch) { deliverAllAvailable(); maxInFlight = 10_000 }.messages().take(n).toList() }
        assertEquals((1L..n.toLong()).toList(), got.map { it.sequence })
        assertEquals((1..n).map { "m$it" }, got.map { it.dataAsString() })
        assertTrue(got.all { it.subject == ch && !it.redelivered })
    }

    @Test
    fun autoAckAtBatchEdges() = test { sc ->
        // With at most 3 unacked messages in flight every batch holds at most 3, and the server
        // sends more only once they are acked: reading all 12 needs the acks at each batch edge.
        val ch = unique("edges")
        val durable = unique("d")
        sc.publishAll(ch, 12)
        val sub = sc.subscribe(ch) { durableName = durable; deliverAllAvailable(); maxInFlight = 3 }
        val seqs = (1..12).map { sub.nextMsg().sequence }
        assertEquals((1L..12L).toList(), seqs)
        sub.shutdown() // acks m12, the last one taken
        sc.publishAll(ch, 1, from = 13)
        val again = sc.subscribe(ch) { durableName = durable }
        val next = again.nextMsg()
        assertEquals(13L, next.sequence, "nothing taken is redelivered")
        assertFalse(next.redelivered)
        again.shutdown()
    }

    @Test
    fun cancellingTheFlowMidBatchLeavesUnseenMessagesUnacked() = test { sc ->
        val ch = unique("cancel")
        val durable = unique("d")
        sc.publishAll(ch, 100)
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); maxInFlight = 1000 }
        // take(10) cancels the flow after the 10th message, in the middle of a batch whenever
        // more than 10 were buffered.
        val seen = within { sc.subscribe(ch, opts).messages().take(10).toList() }
        assertEquals((1L..10L).toList(), seen.map { it.sequence })
        // The 10 seen ones are acked (the 10th by the close); the unseen rest is not, so the
        // durable resumes at 11 and gets 11..100 again.
        val again = sc.subscribe(ch, opts)
        val rest = (11..100).map { again.nextMsg() }
        assertEquals((11L..100L).toList(), rest.map { it.sequence })
        again.shutdown()
    }

    @Test
    fun closeWithAPartlyConsumedBatch() = test { sc ->
        val ch = unique("close")
        val durable = unique("d")
        sc.publishAll(ch, 40)
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); maxInFlight = 1000 }
        val sub = sc.subscribe(ch, opts)
        repeat(5) { assertEquals(it + 1L, sub.nextMsg().sequence) }
        sub.close() // blocking close with messages 6.. still fetched
        assertTrue(runCatching { within { sub.next() } }.let { it.isFailure || it.getOrNull() == null })
        val again = sc.subscribe(ch, opts)
        assertEquals(6L, again.nextMsg().sequence, "the five taken are acked, the untaken ones are not")
        again.shutdown()
    }

    @Test
    fun slowCollectorLosesNothing() = test { sc ->
        val ch = unique("slow")
        val n = 2000
        val sub = sc.subscribe(ch) { maxInFlight = 64 }
        // The broker gets messages faster than the collector takes them.
        val publisher = launch { sc.publishAll(ch, n) }
        var count = 0
        within {
            sub.messages().take(n).collect { msg ->
                count++
                assertEquals(count.toLong(), msg.sequence)
                assertFalse(msg.redelivered)
                if (count % 50 == 0) Thread.sleep(2) // a slow handler, holding its thread
                yield()
            }
        }
        publisher.join()
        assertEquals(n, count)
    }

    @Test
    fun ackManyAcksInOneCall() = test { sc ->
        val ch = unique("many")
        val durable = unique("d")
        sc.publishAll(ch, 30)
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); manualAcks = true; maxInFlight = 10 }
        val sub = sc.subscribe(ch, opts)
        val all = ArrayList<Message>()
        // At most 10 unacked in flight: each group of 10 arrives only after ackMany of the one before.
        repeat(3) {
            val group = (1..10).map { sub.nextMsg() }
            sub.ackMany(group)
            sub.ackMany(group) // acking twice does nothing
            all += group
        }
        assertEquals((1L..30L).toList(), all.map { it.sequence })
        sub.shutdown()
        assertFailsWith<StanException.InvalidState> { sub.ackMany(all.take(1)) }
        sc.publishAll(ch, 1, from = 31)
        val again = sc.subscribe(ch, opts)
        val next = again.nextMsg()
        assertEquals(31L, next.sequence, "acked messages are not redelivered")
        next.ack()
        again.shutdown()

        val auto = sc.subscribe(ch) { deliverAllAvailable() }
        val m = auto.nextMsg()
        assertFailsWith<StanException.InvalidState> { auto.ackMany(listOf(m)) }
        auto.shutdown()
    }

    @Test
    fun acksQueuedByAckAreSentBeforeTheClose() = test { sc ->
        val ch = unique("acks")
        val durable = unique("d")
        sc.publishAll(ch, 20)
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); manualAcks = true; maxInFlight = 100 }
        val sub = sc.subscribe(ch, opts)
        val first = (1..10).map { sub.nextMsg() }
        first.forEach { it.ack() } // queued, sent in groups
        sub.shutdown() // sends the queued acks first
        assertFailsWith<StanException.InvalidState> { first[0].ack() }
        val again = sc.subscribe(ch, opts)
        val next = again.nextMsg()
        assertEquals(11L, next.sequence, "the ten acked messages are not redelivered")
        again.shutdown()
    }

    @Test
    fun clientCloseRightAfterTheLastMessageAcksWhatWasHandedOut() = test { sc ->
        val ch = unique("client-close")
        val durable = unique("d")
        val id = unique("kt")
        sc.publishAll(ch, 5)
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); maxInFlight = 1000 }
        val consumer = broker.connect(id)
        val sub = consumer.subscribe(ch, opts)
        // All five arrive in one batch; three are handed out, then the client closes at once
        // (no further next(), no subscription close).
        repeat(3) { assertEquals(it + 1L, sub.nextMsg().sequence) }
        within { consumer.shutdown() }
        consumer.close()
        assertEquals(null, within { sub.next() }, "nothing is handed out after the client closed")
        val again = broker.connect(id)
        val resumed = again.subscribe(ch, opts)
        assertEquals(4L, resumed.nextMsg().sequence, "the three handed out are acked, the rest is not")
        again.shutdown()
    }

    @Test
    fun manualAcksQueuedBeforeAClientCloseAreSent() = test { sc ->
        val ch = unique("client-close-acks")
        val durable = unique("d")
        val id = unique("kt")
        sc.publishAll(ch, 10)
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); manualAcks = true; maxInFlight = 100 }
        val consumer = broker.connect(id)
        val sub = consumer.subscribe(ch, opts)
        (1..6).map { sub.nextMsg() }.forEach { it.ack() } // queued, not yet sent
        within { consumer.shutdown() }
        consumer.close()
        val again = broker.connect(id)
        val resumed = again.subscribe(ch, opts)
        assertEquals(7L, resumed.nextMsg().sequence, "the six acked messages are not redelivered")
        again.shutdown()
    }

    @Test
    fun pipelinedPublishesKeepTheirOrder() = test { sc ->
        val ch = unique("pipeline")
        val other = unique("other")
        val n = 1500
        // Two coroutines publish to two channels concurrently; each keeps its own order.
        val acks = listOf(
            async { (1..n).map { sc.publishAsync(ch, "m$it") } },
            async { (1..n).map { sc.publishAsync(other, "o$it") } },
        ).awaitAll()
        val guids = within { acks.flatten().map { it.await() } }
        assertEquals(2 * n, guids.toSet().size, "one guid per publish")
        assertEquals(guids, acks.flatten().map { it.guid })
        val got = within { sc.subscribe(ch) { deliverAllAvailable(); maxInFlight = 10_000 }.messages().take(n).toList() }
        assertEquals((1..n).map { "m$it" }, got.map { it.dataAsString() })
        val gotOther = within { sc.subscribe(other) { deliverAllAvailable(); maxInFlight = 10_000 }.messages().take(n).toList() }
        assertEquals((1..n).map { "o$it" }, gotOther.map { it.dataAsString() })
    }

    @Test
    fun aBadChannelFailsOnlyItsOwnPublish() = test { sc ->
        val ch = unique("good")
        val first = sc.publishAsync(ch, "a")
        assertFailsWith<StanException.InvalidArgument> { sc.publishAsync("bad channel", "x") }
        assertFailsWith<StanException.InvalidArgument> { sc.publishAsync("", "x") }
        val last = sc.publishAsync(ch, "b")
        within { first.await(); last.await() }
        val got = within { sc.subscribe(ch) { deliverAllAvailable() }.messages().take(2).toList() }
        assertEquals(listOf("a", "b"), got.map { it.dataAsString() })
    }

    @Test
    fun eachPipelinedPublishReportsItsOwnError() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { own ->
            val sc = own.connect { pubAckWait = Duration.ofMillis(500) }
            val ch = unique("frozen")
            within { sc.publish(ch, "before") }
            own.freeze(true)
            val failed = try {
                val acks = (1..20).map { sc.publishAsync(ch, "lost $it") }
                acks.map { ack -> runCatching { within { ack.await() } }.exceptionOrNull() }
            } finally {
                own.freeze(false)
            }
            assertTrue(failed.all { it is StanException.PublishAckTimeout }, "outcomes: $failed")
            sc.publishAll(ch, 20)
            within { sc.shutdown() }
            val late = runCatching { within { sc.publishAsync(ch, "late").await() } }.exceptionOrNull()
            assertTrue(late is StanException.ConnectionClosed, "after close: $late")
            sc.close()
        }
    }
}
