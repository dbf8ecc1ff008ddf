package io.stanrs

import java.time.Duration
import java.time.Instant

/**
 * Where a new subscription starts. Ignored when a durable subscription resumes or a queue
 * member joins an existing group.
 *
 * Java: `StartPosition.First.INSTANCE`, `new StartPosition.Sequence(42)`.
 */
sealed class StartPosition {
    /** Only messages published after the subscription (the default). */
    data object NewOnly : StartPosition()

    /** Start with the last stored message. */
    data object LastReceived : StartPosition()

    /** Everything the channel still stores ("deliver all available"). */
    data object First : StartPosition()

    /** Start at [sequence] (treated as unsigned; below the first stored: from the first). */
    data class Sequence(val sequence: Long) : StartPosition()

    /** Start with the first message stored at or after [time]. */
    data class Time(val time: Instant) : StartPosition()

    /** Start with the first message not older than [delta]. */
    data class TimeDelta(val delta: Duration) : StartPosition()

    internal fun toNative(): NativeStartPosition = when (this) {
        NewOnly -> NativeStartPosition.NewOnly
        LastReceived -> NativeStartPosition.LastReceived
        First -> NativeStartPosition.First
        is Sequence -> NativeStartPosition.Sequence(sequence.toULong())
        is Time -> NativeStartPosition.Time(time)
        is TimeDelta -> NativeStartPosition.TimeDelta(delta)
    }
}

/**
 * TLS settings for the NATS connection.
 *
 * ```kotlin
 * StanClient.connect("test-cluster", "me") {
 *     url = "tls://127.0.0.1:4222"
 *     tls { requireTls = true; rootCertificates += "/etc/ssl/ca.pem" }
 * }
 * ```
 */
class TlsOptions {
    /** Require TLS even when the server does not ask for it. */
    var requireTls: Boolean = false

    /** PEM files with extra root certificates to trust. */
    var rootCertificates: MutableList<String> = mutableListOf()

    /** PEM client certificate file (with [clientKey]), for servers that verify clients. */
    var clientCertificate: String? = null

    /** PEM client key file (with [clientCertificate]). */
    var clientKey: String? = null

    internal fun toNative(): TlsConfig {
        val cert = clientCertificate
        val key = clientKey
        return TlsConfig(
            requireTls = requireTls,
            rootCertificates = rootCertificates.toList(),
            clientCertificate = if (cert != null || key != null) ClientCertificate(cert ?: "", key ?: "") else null,
        )
    }
}

/**
 * Connection options. Every property left `null` takes the client core's default (connect wait
 * 2 s, pub-ack wait 30 s, 16384 publishes awaiting acks, pings every 5 s with 88 allowed misses,
 * discover prefix `_STAN.discover`, auto-resume on); the core validates every value.
 *
 * Java: `new ConnectOptions()` and its setters, then [StanClient.connectFuture].
 */
class ConnectOptions {
    /** NATS server URLs; empty means `nats://127.0.0.1:4222`. */
    var urls: MutableList<String> = mutableListOf()

    /** The single NATS server URL (setting it replaces [urls]). */
    var url: String?
        get() = urls.firstOrNull()
        set(value) {
            urls = if (value == null) mutableListOf() else mutableListOf(value)
        }

    /** NATS user name (with [password]). */
    var user: String? = null

    /** NATS password (with [user]). */
    var password: String? = null

    /** NATS token. */
    var token: String? = null

    /** TLS settings for the NATS connection. */
    var tls: TlsOptions? = null

    /** How long to wait for the connect, subscribe, unsubscribe and close replies. */
    var connectWait: Duration? = null

    /** How long to wait for a publish to be acknowledged. */
    var pubAckWait: Duration? = null

    /** Publishes awaiting an ack before further publishers wait. */
    var maxPubAcksInFlight: Int? = null

    /** Interval between pings to the server (whole seconds, at least 1 s). */
    var pingInterval: Duration? = null

    /** Unanswered pings before the session counts as lost (at least 2). */
    var pingMaxOut: Int? = null

    /** Discover prefix of the server. */
    var discoverPrefix: String? = null

    /** Re-register and re-create subscriptions when the session is lost (on by default). */
    var autoResume: Boolean? = null

    /**
     * Test only: ping every so many milliseconds (overrides [pingInterval] and its 1 s minimum;
     * servers accept it only in test setups). Works only with a native library built with the
     * cargo feature `test-hooks` (the package's test build, `mvn verify -Ptest-hooks`); the
     * released library rejects it at connect with [StanException.InvalidArgument].
     */
    var pingIntervalMillisForTests: Int? = null

    /** Configure [tls] in place. */
    fun tls(configure: TlsOptions.() -> Unit) {
        tls = (tls ?: TlsOptions()).apply(configure)
    }

    internal fun toNative(clusterId: String, clientId: String): ConnectConfig = ConnectConfig(
        clusterId = clusterId,
        clientId = clientId,
        natsUrls = urls.toList(),
        user = user,
        password = password,
        token = token,
        tls = tls?.toNative(),
        connectWait = connectWait,
        pubAckWait = pubAckWait,
        maxPubAcksInFlight = maxPubAcksInFlight?.toLong()?.toULong(),
        pingInterval = pingInterval,
        pingMaxOut = pingMaxOut?.toUInt(),
        discoverPrefix = discoverPrefix,
        autoResume = autoResume,
        pingIntervalMillisForTests = pingIntervalMillisForTests?.toUInt(),
    )
}

/**
 * Subscription options (STAN vocabulary: durable name, queue group, max in flight, ack wait,
 * manual acks). `null` takes the core default: not durable, no queue group, new messages only,
 * max in flight 1024, ack wait 30 s, automatic acks.
 *
 * Java: `new SubscribeOptions()` and its setters, then [StanClient.subscribeFuture].
 */
class SubscribeOptions {
    /** Queue group: each message goes to one member of the group. */
    var queueGroup: String? = null

    /** Durable name: the server remembers the position across closes and reconnects. */
    var durableName: String? = null

    /** Where a new subscription starts. */
    var startAt: StartPosition? = null

    /** Unacknowledged messages the server sends before waiting for acks. */
    var maxInFlight: Int? = null

    /** How long the server waits for an ack before redelivering (whole seconds, at least 1 s). */
    var ackWait: Duration? = null

    /** The application acks each message with [Message.ack]. */
    var manualAcks: Boolean = false

    /** Start with everything the channel still stores. */
    fun deliverAllAvailable() {
        startAt = StartPosition.First
    }

    internal fun toNative(): SubscribeConfig = SubscribeConfig(
        queueGroup = queueGroup,
        durableName = durableName,
        startPosition = startAt?.toNative(),
        maxInFlight = maxInFlight?.toUInt(),
        ackWait = ackWait,
        manualAcks = manualAcks,
    )
}
