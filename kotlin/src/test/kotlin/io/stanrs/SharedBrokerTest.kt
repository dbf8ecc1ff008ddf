package io.stanrs

import kotlinx.coroutines.test.TestScope
import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.TestInstance
import kotlin.test.fail
import kotlin.time.Duration.Companion.seconds

/**
 * A test class whose tests share one broker, started before the first test and stopped after
 * the last (one test instance per class, so the tests keep no state in fields).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class SharedBrokerTest {
    /** The broker every test of the class talks to. */
    protected lateinit var broker: TestBroker

    @BeforeAll
    fun startBroker() {
        broker = TestBroker.start()
    }

    @AfterAll
    fun stopBroker() {
        broker.close()
    }

    /** Run [body] with a client connected to [broker], closed afterwards whatever happens. */
    protected fun test(body: suspend TestScope.(StanClient) -> Unit) = runTest(timeout = 60.seconds) {
        val sc = broker.connect()
        try {
            body(sc)
        } finally {
            within { sc.shutdown() }
            sc.close()
        }
    }

    /** The next message, failing when the subscription ended or nothing came within [WAIT]. */
    protected suspend fun Subscription.nextMsg(): Message = within { next() } ?: fail("subscription ended")
}
