package io.stanrs

import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.transformWhile
import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Test
import java.time.Duration
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlin.time.Duration.Companion.seconds

/** Lost sessions, auto-resume and timeouts; each test has a broker of its own. */
class ResilienceTest {
    /** Fast pings so that a dead broker is noticed within a second. */
    private val fastPings: ConnectOptions.() -> Unit = { pingIntervalMillisForTests = 100; pingMaxOut = 3 }

    @Test
    fun connectionLostWithoutAutoResume() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            val sc = broker.connect { fastPings(); autoResume = false }
            val events = sc.events()
            val ch = unique("lost")
            val sub = within { sc.subscribe(ch) }
            broker.kill()
            val seen = within { events.transformWhile { emit(it); it !is Event.Closed }.toList() }
            val lost = seen.filterIsInstance<Event.ConnectionLost>().singleOrNull() ?: fail("events: $seen")
            assertFalse(lost.resuming)
            assertTrue(lost.message.isNotEmpty())
            assertEquals(Event.Closed, seen.last())
            assertFailsWith<StanException.ConnectionLost> { within { sub.next() } }
            assertTrue(sc.isClosed)
            val e = assertFailsWith<StanException> { within { sc.publish(ch, "x") } }
            assertTrue(e is StanException.ConnectionLost || e is StanException.ConnectionClosed, "got $e")
            sub.close()
            sc.close()
        }
    }

    @Test
    fun autoResumeAfterBrokerRestart() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            val sc = broker.connect { fastPings() }
            val ch = unique("resume")
            val sub = within { sc.subscribe(ch) }
            within { sc.publish(ch, "before") }
            assertEquals("before", (within { sub.next() } ?: fail("ended")).dataAsString())

            val events = sc.events()
            broker.restart() // the new broker has never heard of this client
            val seen = within { events.transformWhile { emit(it); it !is Event.Resumed }.toList() }
            val lost = seen.filterIsInstance<Event.ConnectionLost>().firstOrNull() ?: fail("events: $seen")
            assertTrue(lost.resuming)
            assertEquals(Event.Resumed(0UL), seen.last())
            assertFalse(sc.isClosed)

            within { sc.publish(ch, "after") }
            assertEquals("after", (within { sub.next() } ?: fail("ended")).dataAsString(), "same subscription goes on")
            within { sc.shutdown() }
            sc.close()
        }
    }

    @Test
    fun natsReconnectKeepsTheSession() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            TcpProxy(broker.url.substringAfterLast(':').toInt()).use { proxy ->
                val sc = within {
                    StanClient.connect(broker.clusterId, unique("kt")) { url = proxy.url }
                }
                val events = sc.events()
                val ch = unique("reconnect")
                val sub = within { sc.subscribe(ch) }
                proxy.cut()
                val seen = within { events.transformWhile { emit(it); it !is Event.NatsReconnected }.toList() }
                assertEquals(listOf(Event.NatsDisconnected, Event.NatsReconnected), seen)
                within { sc.publish(ch, "still here") }
                assertEquals("still here", (within { sub.next() } ?: fail("ended")).dataAsString())
                assertFalse(sc.isClosed)
                within { sc.shutdown() }
                sc.close()
            }
        }
    }

    @Test
    fun timeoutsWhileTheBrokerIsFrozen() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            val sc = broker.connect {
                pubAckWait = Duration.ofMillis(500)
                connectWait = Duration.ofMillis(500)
            }
            broker.freeze(true)
            try {
                val pub = assertFailsWith<StanException.PublishAckTimeout> { within { sc.publish(unique("frozen"), "x") } }
                assertTrue(pub.isTimeout)
                assertFailsWith<StanException.RequestTimeout> { within { sc.subscribe(unique("frozen")) } }
            } finally {
                broker.freeze(false)
            }
            assertIs<String>(within { sc.publish(unique("thawed"), "x") })
            within { sc.shutdown() }
            sc.close()
        }
    }

    @Test
    fun monitoringUrlFromTheReadyLineSurvivesARestart() = runTest(timeout = 60.seconds) {
        TestBroker.startWithMonitoring().use { broker ->
            val monitoring = broker.monitoringUrl ?: fail("no monitoring URL")
            assertTrue(monitoring.startsWith("http://127.0.0.1:"), monitoring)
            suspend fun serverz(): String =
                within { java.net.URI.create("$monitoring/streaming/serverz").toURL().readText() }
            assertTrue(serverz().contains(broker.clusterId))
            broker.restart()
            assertEquals(monitoring, broker.monitoringUrl)
            assertTrue(serverz().contains(broker.clusterId))
        }
    }
}
