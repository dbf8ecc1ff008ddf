package io.stanrs

import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.time.Duration.Companion.seconds

/** What closing a client, or leaving it unclosed and unreachable, does to its subscriptions and publishes. */
class CloseTest {
    @Test
    fun nothingBufferedIsHandedOutAfterTheClientClosed() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            val ch = unique("buffered")
            val durable = unique("d")
            val id = unique("kt")
            val publisher = broker.connect()
            // More than one batch: whatever the first fetch leaves behind stays buffered natively.
            within { (1..2 * Subscription.BATCH_SIZE).map { publisher.publishAsync(ch, "m$it") }.forEach { it.await() } }
            val opts: SubscribeOptions.() -> Unit = { durableName = durable; deliverAllAvailable(); maxInFlight = 10_000 }
            val consumer = broker.connect(id)
            val sub = consumer.subscribe(ch, opts)
            assertEquals(1L, within { sub.next() }?.sequence)
            within { consumer.shutdown() }
            assertNull(within { sub.next() }, "nothing is handed out after the client closed")
            consumer.close()
            val again = broker.connect(id)
            val resumed = again.subscribe(ch, opts)
            assertEquals(2L, within { resumed.next() }?.sequence, "the one handed out is acked, the rest is not")
            within { again.shutdown() }
            again.close()
            within { publisher.shutdown() }
            publisher.close()
        }
    }

    /** A publish awaiting its ack on a client nobody references any more (nor closed). */
    private suspend fun pendingPublishOfAnUnreferencedClient(broker: TestBroker, ch: String): PublishAck {
        val sc = broker.connect()
        within { sc.publish(ch, "acked") }
        broker.freeze(true)
        return sc.publishAsync(ch, "never acked")
    }

    @Test
    fun anUnreachableUnclosedClientFailsItsPendingPublishes() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            try {
                val ack = pendingPublishOfAnUnreferencedClient(broker, unique("gc"))
                // Collect until the client's close fails the publish.
                val failure = within {
                    var failure: StanException? = null
                    var done = false
                    while (!done) {
                        System.gc()
                        try {
                            done = withTimeoutOrNull(100) { ack.await() } != null
                        } catch (e: StanException) {
                            failure = e
                            done = true
                        }
                    }
                    failure
                }
                assertIs<StanException.ConnectionClosed>(failure, "the publish failed with: $failure")
            } finally {
                broker.freeze(false)
            }
        }
    }
}
