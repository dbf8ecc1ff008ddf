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
