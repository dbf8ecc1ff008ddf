package io.stanrs

import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Test
import java.net.ServerSocket
import java.time.Duration
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlin.time.Duration.Companion.seconds

/** Every error kind surfaces as its own [StanException] subclass. */
class ErrorsTest : SharedBrokerTest() {
    @Test
    fun connectTimeoutForAnUnknownCluster() = runTest(timeout = 60.seconds) {
        val e = assertFailsWith<StanException.ConnectTimeout> {
            within {
                StanClient.connect("no-such-cluster", unique("kt")) {
                    url = broker.url
                    connectWait = Duration.ofMillis(300)
                }
            }
        }
        assertTrue(e.isTimeout)
        assertEquals("CONNECT_TIMEOUT", e.code)
    }

    @Test
    fun transportErrorWhenNatsIsUnreachable() = runTest(timeout = 60.seconds) {
        val port = ServerSocket(0).use { it.localPort } // free, then closed: nobody listens
        assertFailsWith<StanException.Transport> {
            within {
                StanClient.connect(broker.clusterId, unique("kt")) {
                    url = "nats://127.0.0.1:$port"
                    connectWait = Duration.ofMillis(500)
                }
            }
        }
    }

    @Test
    fun invalidArguments() = runTest(timeout = 60.seconds) {
        assertFailsWith<StanException.InvalidArgument> { within { broker.connect("bad.client.id") } }
        assertFailsWith<StanException.InvalidArgument> { within { broker.connect { maxPubAcksInFlight = 0 } } }
        assertFailsWith<StanException.InvalidArgument> { within { broker.connect { pingMaxOut = -1 } } }
        broker.connect().use { sc ->
            assertFailsWith<StanException.InvalidArgument> { within { sc.publish("bad subject*", "x") } }
            assertFailsWith<StanException.InvalidArgument> { within { sc.subscribe("ok") { maxInFlight = 0 } } }
            assertFailsWith<StanException.InvalidArgument> {
                within { sc.subscribe("ok") { ackWait = Duration.ofMillis(10) } }
            }
        }
    }

    @Test
    fun serverRejectsADuplicateDurable() = runTest(timeout = 60.seconds) {
        broker.connect().use { sc ->
            val ch = unique("dup")
            val sub = within { sc.subscribe(ch) { durableName = "same" } }
            val e = assertFailsWith<StanException.ServerRejected> { within { sc.subscribe(ch) { durableName = "same" } } }
            assertTrue(e.message.orEmpty().contains("duplicate durable"), e.message)
            sub.close()
        }
    }

    @Test
    fun invalidStateAndConnectionClosed() = runTest(timeout = 60.seconds) {
        val sc = broker.connect()
        val ch = unique("state")
        val sub = within { sc.subscribe(ch) }
        within { sc.publish(ch, "x") }
        val msg = within { sub.next() } ?: fail("ended")
        assertFailsWith<StanException.InvalidState> { within { msg.ack() } } // auto-ack mode
        within { sc.shutdown() }
        assertTrue(sc.isClosed)
        assertEquals(null, within { sub.next() }, "closing the client ends its subscriptions")
        val e = assertFailsWith<StanException.ConnectionClosed> { within { sc.publish(ch, "late") } }
        assertIs<StanException>(e)
        within { sc.shutdown() } // closing twice does nothing
        sc.close()
    }
}
