// A small program using io.stanrs:stan-client from Maven: publish a few orders, read them back
// through a durable subscription with manual acks, and check that every one arrived.
//
//   mvn -q compile exec:java -Dexec.args="nats://127.0.0.1:4222 test-cluster"
package example

import io.stanrs.StanClient
import io.stanrs.StanException
import io.stanrs.StartPosition
import io.stanrs.code
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.util.UUID
import kotlin.system.exitProcess
import kotlin.time.Duration.Companion.seconds

fun main(args: Array<String>) {
    val url = args.getOrNull(0) ?: "nats://127.0.0.1:4222"
    val cluster = args.getOrNull(1) ?: "test-cluster"
    val channel = "orders-" + UUID.randomUUID().toString().take(8)
    val count = 5
    try {
        val received = runBlocking {
            withTimeout(30.seconds) {
                // --8<-- [start:usage]
                StanClient.connect(cluster, "orders-example") { this.url = url }.use { sc ->
                    for (i in 1..count) {
                        val guid = sc.publish(channel, "order #$i".encodeToByteArray()) // suspends until acked
                        println("published order #$i as $guid")
                    }
                    sc.subscribe(channel) {
                        durableName = "audit"
                        startAt = StartPosition.First
                        manualAcks = true
                    }
                        .messages() // Flow<Message>; the subscription closes when the flow stops
                        .onEach { msg ->
                            println("received #${msg.sequence}: ${msg.dataAsString()}")
                            msg.ack()
                        }
                        .take(count)
                        .toList()
                }
                // --8<-- [end:usage]
            }
        }
        check(received.map { it.dataAsString() } == (1..count).map { "order #$it" }) { "wrong messages: $received" }
        println("kotlin example: OK ($count orders)")
        JavaOrders.run(url, cluster)
    } catch (e: StanException) {
        System.err.println("kotlin example failed: ${e.code}: ${e.message}")
        exitProcess(1)
    }
}
