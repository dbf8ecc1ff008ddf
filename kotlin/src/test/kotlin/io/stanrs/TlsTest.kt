package io.stanrs

import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Test
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/** TLS towards a broker started with `--tlscert`/`--tlskey` (and `--tlsverify`). */
class TlsTest {
    /** The repository's test certificates, found upwards from the working directory. */
    private val certs: File = generateSequence(File(System.getProperty("user.dir")).absoluteFile) { it.parentFile }
        .map { File(it, "test-certs") }
        .firstOrNull { it.isDirectory }
        ?: error("test-certs/ not found")

    private fun cert(name: String): String = File(certs, name).path

    private val serverTls = arrayOf("--tlscert", cert("server.pem"), "--tlskey", cert("server-key.pem"))

    private suspend fun roundTrip(broker: TestBroker, configure: TlsOptions.() -> Unit) {
        broker.connect { tls(configure) }.use { sc ->
            val ch = unique("tls")
            val sub = sc.subscribe(ch)
            within { sc.publish(ch, "over tls") }
            val m = within { sub.next() }
            assertEquals("over tls", m?.dataAsString())
        }
    }

    private suspend fun refused(broker: TestBroker, configure: (TlsOptions.() -> Unit)?) {
        assertFailsWith<StanException.Transport> {
            within { broker.connect { if (configure != null) tls(configure) } }
        }
    }

    @Test
    fun publishAndConsumeOverTlsAndRefuseUntrustedServers() = runTest(timeout = 120.seconds) {
        TestBroker.start(*serverTls).use { broker ->
            roundTrip(broker) { rootCertificates += cert("ca.pem") }
            roundTrip(broker) { requireTls = true; rootCertificates += cert("ca.pem") }
            refused(broker) { rootCertificates += cert("other-ca.pem") }
            refused(broker, null)
        }
    }

    @Test
    fun verifyingBrokerAcceptsOurClientCertificateOnly() = runTest(timeout = 120.seconds) {
        TestBroker.start(*serverTls, "--tlsverify", "--tlscacert", cert("ca.pem")).use { broker ->
            roundTrip(broker) {
                rootCertificates += cert("ca.pem")
                clientCertificate = cert("client.pem")
                clientKey = cert("client-key.pem")
            }
            refused(broker) { rootCertificates += cert("ca.pem") }
            refused(broker) {
                rootCertificates += cert("ca.pem")
                clientCertificate = cert("other-client.pem")
                clientKey = cert("other-client-key.pem")
            }
        }
    }

    @Test
    fun missingCertificateFileIsAClearError() = runTest(timeout = 120.seconds) {
        TestBroker.start(*serverTls).use { broker ->
            val e = assertFailsWith<StanException> {
                within { broker.connect { tls { rootCertificates += cert("no-such-ca.pem") } } }
            }
            assertTrue(e.message!!.contains("no-such-ca.pem"), e.message)
        }
    }
}
