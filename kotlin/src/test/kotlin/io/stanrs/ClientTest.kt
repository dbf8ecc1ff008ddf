package io.stanrs

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.flow.onStart
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.merge
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Test
import java.time.Duration
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** Publish/subscribe behaviour through the Kotlin layer, against one broker. */
class ClientTest : SharedBrokerTest() {
    @Test
    fun publishReturnsGuidAndIsDelivered() = test { sc ->
        val ch = unique("pub")
        val sub = sc.subscribe(ch)
        val g1 = within { sc.publish(ch, "hello".encodeToByteArray()) }
        val g2 = within { sc.publish(ch, "world") }
        assertTrue(g1.isNotEmpty())
        assertNotEquals(g1, g2)
        val ack = within { sc.publishAsync(ch, byteArrayOf(0, 1, 2)) }
        val guid = within { ack.await() }
        assertEquals(guid, ack.guid, "the guid is known once handed to the client")
        assertEquals(guid, within { ack.await() }, "awaiting twice gives the same outcome")
        val m1 = sub.nextMsg()
        assertEquals("hello", m1.dataAsString())
        assertEquals(ch, m1.subject)
        assertEquals(1L, m1.sequence)
        assertFalse(m1.redelivered)
        assertEquals("world", sub.nextMsg().dataAsString())
        val m3 = sub.nextMsg()
        assertEquals(listOf<Byte>(0, 1, 2), m3.data.toList())
        assertEquals(3L, m3.sequence)
        sub.shutdown()
        assertNull(within { sub.next() }, "a closed subscription ends")
    }

    @Test
    fun everyStartPosition() = test { sc ->
        val ch = unique("pos")
        within { sc.publish(ch, "m1") }
        within { delay(100) } // a real-time gap between m1 and m2 for the start-at-time case
        for (i in 2..3) within { sc.publish(ch, "m$i") }
        suspend fun firstWith(pos: StartPosition?): Message =
            within { sc.subscribe(ch) { startAt = pos }.messages().first() }

        val all = within { sc.subscribe(ch) { deliverAllAvailable() }.messages().take(3).toList() }
        assertEquals(listOf("m1", "m2", "m3"), all.map { it.dataAsString() })
        assertEquals("m1", firstWith(StartPosition.First).dataAsString())
        assertEquals("m3", firstWith(StartPosition.LastReceived).dataAsString())
        assertEquals("m2", firstWith(StartPosition.Sequence(2)).dataAsString())
        val between = all[0].timestamp.plus(Duration.between(all[0].timestamp, all[1].timestamp).dividedBy(2))
        assertEquals("m2", firstWith(StartPosition.Time(between)).dataAsString())
        assertEquals("m1", firstWith(StartPosition.TimeDelta(Duration.ofHours(1))).dataAsString())

        for (pos in listOf(StartPosition.NewOnly, null)) {
            val sub = sc.subscribe(ch) { startAt = pos }
            within { sc.publish(ch, "new-$pos") }
            assertEquals("new-$pos", sub.nextMsg().dataAsString(), "new only ($pos) skips stored messages")
            sub.shutdown()
        }
    }

    @Test
    fun durableResumesAfterCloseAndUnsubscribeDeletesIt() = test { sc ->
        val ch = unique("dur")
        val durable = unique("audit")
        for (i in 1..3) within { sc.publish(ch, "m$i") }
        val opts: SubscribeOptions.() -> Unit = { durableName = durable; startAt = StartPosition.First; manualAcks = true }

        val first = sc.subscribe(ch, opts)
        first.nextMsg().ack()
        first.nextMsg().ack()
        first.shutdown() // close keeps the durable
        assertFailsWith<StanException.InvalidState> { first.shutdown() }

        val resumed = sc.subscribe(ch, opts)
        val m3 = resumed.nextMsg()
        assertEquals("m3", m3.dataAsString(), "the durable resumes after the last acked message")
        m3.ack()
        resumed.unsubscribe() // deletes the durable
        assertFailsWith<StanException.InvalidState> { resumed.unsubscribe() }

        val fresh = sc.subscribe(ch, opts)
        assertEquals("m1", fresh.nextMsg().dataAsString(), "after unsubscribe the durable starts over")
        fresh.shutdown()
    }

    @Test
    fun cancellingTheFlowClosesTheSubscription() = test { sc ->
        val ch = unique("flow")
        val durable = unique("d")
        for (i in 1..3) within { sc.publish(ch, "m$i") }
        val got = within {
            sc.subscribe(ch) { durableName = durable; deliverAllAvailable() }.messages().take(2).toList()
        }
        assertEquals(listOf("m1", "m2"), got.map { it.dataAsString() })
        // Still open, the durable would be a duplicate registration; closed, it resumes. m1 was
        // acked when m2 was requested, m2 when the completed flow closed the subscription (the
        // last message taken counts as handled), so the durable resumes at m3.
        val again = sc.subscribe(ch) { durableName = durable; deliverAllAvailable() }
        assertEquals("m3", again.nextMsg().dataAsString())
        again.close()
    }

    @Test
    fun cancellingAPendingCollectClosesTheSubscription() = test { sc ->
        val ch = unique("cancel")
        val durable = unique("d")
        val sub = sc.subscribe(ch) { durableName = durable }
        val started = CompletableDeferred<Unit>()
        val job = launch(Dispatchers.Default) {
            sub.messages().onStart { started.complete(Unit) }.collect { fail("no message was published") }
        }
        within { started.await() }
        within { job.cancelAndJoin() } // cancels the pending native next(); the flow then closes
        val again = sc.subscribe(ch) { durableName = durable } // a live durable would be a duplicate
        within { sc.publish(ch, "after cancel") }
        assertEquals("after cancel", again.nextMsg().dataAsString())
        again.shutdown()
    }

    @Test
    fun queueGroupDeliversEachMessageOnce() = test { sc ->
        val ch = unique("queue")
        val other = broker.connect()
        try {
            val members = listOf(
                sc.subscribe(ch) { queueGroup = "workers" },
                other.subscribe(ch) { queueGroup = "workers" },
            )
            val plain = sc.subscribe(ch)
            val expected = (1..20).map { "job-$it" }
            for (m in expected) within { sc.publish(ch, m) }
            val got = within {
                merge(*members.mapIndexed { i, s -> s.messages().map { i to it.dataAsString() } }.toTypedArray())
                    .take(expected.size)
                    .toList()
            }
            assertEquals(expected.sorted(), got.map { it.second }.sorted(), "each message exactly once")
            assertEquals(expected, within { plain.messages().take(20).toList() }.map { it.dataAsString() })
        } finally {
            within { other.shutdown() }
            other.close()
        }
    }

    @Test
    fun manualAckRedelivery() = test { sc ->
        val ch = unique("redeliver")
        val sub = sc.subscribe(ch) { manualAcks = true; ackWait = Duration.ofSeconds(1) }
        assertTrue(sub.manualAcks)
        within { sc.publish(ch, "x") }
        val first = sub.nextMsg()
        assertFalse(first.redelivered)
        assertEquals(0, first.redeliveryCount)
        val again = sub.nextMsg() // not acked: redelivered after the ack wait
        assertEquals(first.sequence, again.sequence)
        assertTrue(again.redelivered)
        assertEquals(1, again.redeliveryCount)
        again.ack()
        again.ack() // acking twice does nothing
        assertNull(quietFor(2500.milliseconds) { sub.next() ?: fail("ended") }, "acked: no more redelivery")
        sub.shutdown()
        assertFailsWith<StanException.InvalidState> { first.ack() }
    }

    @Test
    fun maxInFlightHoldsBackUntilAcked() = test { sc ->
        val ch = unique("mif")
        for (i in 1..4) within { sc.publish(ch, "m$i") }
        val sub = sc.subscribe(ch) { manualAcks = true; maxInFlight = 2; deliverAllAvailable() }
        val a = sub.nextMsg()
        val b = sub.nextMsg()
        assertEquals(listOf(1L, 2L), listOf(a.sequence, b.sequence))
        assertNull(quietFor(700.milliseconds) { sub.next() ?: fail("ended") }, "at most 2 unacked in flight")
        a.ack()
        assertEquals(3L, sub.nextMsg().sequence)
        b.ack()
        assertEquals(4L, sub.nextMsg().sequence)
        sub.shutdown()
    }

    @Test
    fun autoAckAcksWhenTheNextMessageIsRequested() = test { sc ->
        val ch = unique("auto")
        val durable = unique("d")
        for (i in 1..2) within { sc.publish(ch, "m$i") }
        val sub = sc.subscribe(ch) { durableName = durable; deliverAllAvailable() }
        val m1 = sub.nextMsg()
        assertFailsWith<StanException.InvalidState> { m1.ack() }
        assertEquals("m2", sub.nextMsg().dataAsString()) // asking for m2 acked m1
        sub.shutdown() // closing acks m2, the last message taken
        within { sc.publish(ch, "m3") }
        val again = sc.subscribe(ch) { durableName = durable }
        val m3 = again.nextMsg()
        assertEquals("m3", m3.dataAsString(), "m2 is not redelivered")
        assertFalse(m3.redelivered)
        again.shutdown()
    }

    @Test
    fun javaFutureMethods() {
        val opts = ConnectOptions().apply { url = broker.url }
        StanClient.connectFuture(broker.clusterId, unique("java"), opts).get(20, TimeUnit.SECONDS).use { sc ->
            val ch = unique("java")
            val sub = sc.subscribeFuture(ch, SubscribeOptions()).get(20, TimeUnit.SECONDS)
            val guid = sc.publishFuture(ch, "from java".encodeToByteArray()).get(20, TimeUnit.SECONDS)
            assertTrue(guid.isNotEmpty())
            val msg = sub.nextFuture().get(20, TimeUnit.SECONDS) ?: fail("ended")
            assertEquals("from java", msg.dataAsString())
            sub.close()
            sc.shutdownFuture().get(20, TimeUnit.SECONDS)
            assertTrue(sc.isClosed)
        }
    }
}
