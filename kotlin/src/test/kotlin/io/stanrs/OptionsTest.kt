package io.stanrs

import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Test
import java.net.ServerSocket
import java.time.Duration
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/** Connect options reach the core: authentication, URL lists, discover prefix, timeouts. */
class OptionsTest {
    @Test
    fun versionIsTheProjectVersion() {
        // The pom's <project><version>, as scripts/version.py sets it for every package.
        val pom = java.io.File("pom.xml").readText()
        val projectVersion = Regex("<artifactId>stan-client</artifactId>\\s*<version>([^<]+)</version>").find(pom)!!.groupValues[1]
        assertEquals(projectVersion, StanClient.VERSION)
    }

    @Test
    fun userAndPassword() = runTest(timeout = 60.seconds) {
        TestBroker.start("--user", "app", "--pass", "s3cret").use { broker ->
            broker.connect { user = "app"; password = "s3cret" }.use { sc ->
                assertTrue(within { sc.publish(unique("auth"), "x") }.isNotEmpty())
            }
            assertFailsWith<StanException.Transport> {
                within { broker.connect { user = "app"; password = "wrong"; connectWait = Duration.ofSeconds(1) } }
            }
            assertFailsWith<StanException.InvalidArgument> { within { broker.connect { user = "app" } } }
        }
    }

    @Test
    fun token() = runTest(timeout = 60.seconds) {
        TestBroker.start("--auth", "t0ken").use { broker ->
            broker.connect { token = "t0ken" }.use { sc ->
                assertTrue(within { sc.publish(unique("token"), "x") }.isNotEmpty())
            }
            assertFailsWith<StanException.Transport> {
                within { broker.connect { token = "nope"; connectWait = Duration.ofSeconds(1) } }
            }
        }
    }

    @Test
    fun urlListAndClientProperties() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            val dead = ServerSocket(0).use { "nats://127.0.0.1:${it.localPort}" }
            val id = unique("urls")
            val sc = within {
                StanClient.connect(broker.clusterId, id) {
                    urls = mutableListOf(dead, broker.url)
                    pubAckWait = Duration.ofSeconds(5)
                    maxPubAcksInFlight = 8
                    pingInterval = Duration.ofSeconds(2)
                    pingMaxOut = 4
                    autoResume = true
                }
            }
            assertEquals(id, sc.clientId)
            assertEquals(broker.clusterId, sc.clusterId)
            assertTrue(within { sc.publish(unique("urls"), "x") }.isNotEmpty())
            within { sc.shutdown() }
            assertTrue(sc.isClosed)
            sc.close()
        }
    }

    @Test
    fun discoverPrefixIsUsed() = runTest(timeout = 60.seconds) {
        TestBroker.start().use { broker ->
            assertFailsWith<StanException.ConnectTimeout> {
                within { broker.connect { discoverPrefix = "_NOBODY.discover"; connectWait = Duration.ofMillis(300) } }
            }
            assertFailsWith<StanException.InvalidArgument> { within { broker.connect { discoverPrefix = "" } } }
            assertFailsWith<StanException.InvalidArgument> {
                within { broker.connect { pingInterval = Duration.ofMillis(200) } }
            }
        }
    }
}
