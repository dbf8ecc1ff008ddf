@file:JvmName("StanErrors")

package io.stanrs

/**
 * The stable code of this error's kind (`"PUBLISH_ACK_TIMEOUT"`, …), the same string the
 * Python and Node bindings expose. Java: `StanErrors.getCode(e)`.
 */
val StanException.code: String
    get() = when (this) {
        is StanException.ConnectTimeout -> "CONNECT_TIMEOUT"
        is StanException.RequestTimeout -> "REQUEST_TIMEOUT"
        is StanException.PublishAckTimeout -> "PUBLISH_ACK_TIMEOUT"
        is StanException.ConnectionClosed -> "CONNECTION_CLOSED"
        is StanException.ConnectionLost -> "CONNECTION_LOST"
        is StanException.ServerRejected -> "SERVER_REJECTED"
        is StanException.InvalidArgument -> "INVALID_ARGUMENT"
        is StanException.InvalidState -> "INVALID_STATE"
        is StanException.NotSupported -> "NOT_SUPPORTED"
        is StanException.Protocol -> "PROTOCOL"
        is StanException.Transport -> "TRANSPORT"
        is StanException.Generic -> message.orEmpty().substringBefore(':')
    }

/** True for the timeout kinds (connect, request, publish ack). */
val StanException.isTimeout: Boolean
    get() = this is StanException.ConnectTimeout ||
        this is StanException.RequestTimeout ||
        this is StanException.PublishAckTimeout

/** The [StanException] of the error kind [code] (as [StanException.code]) with [message]. */
internal fun stanException(code: String, message: String): StanException = when (code) {
    "CONNECT_TIMEOUT" -> StanException.ConnectTimeout(message)
    "REQUEST_TIMEOUT" -> StanException.RequestTimeout(message)
    "PUBLISH_ACK_TIMEOUT" -> StanException.PublishAckTimeout(message)
    "CONNECTION_CLOSED" -> StanException.ConnectionClosed(message)
    "CONNECTION_LOST" -> StanException.ConnectionLost(message)
    "SERVER_REJECTED" -> StanException.ServerRejected(message)
    "INVALID_ARGUMENT" -> StanException.InvalidArgument(message)
    "INVALID_STATE" -> StanException.InvalidState(message)
    "NOT_SUPPORTED" -> StanException.NotSupported(message)
    "PROTOCOL" -> StanException.Protocol(message)
    "TRANSPORT" -> StanException.Transport(message)
    else -> StanException.Generic(message)
}
