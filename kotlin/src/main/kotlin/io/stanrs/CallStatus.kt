package io.stanrs

/**
 * Reusable call statuses, per thread, for the native calls of the generated bindings
 * (`patch-bindings.sh` routes them here): allocating a JNA `Structure` per call costs far more
 * than the call itself, because JNA registers every native `Memory` block in a global map
 * until a GC collects it. Calls nest (arguments are converted, which calls into the native
 * library, while the outer call's status is held), so each thread keeps a small stack.
 */
internal class CallStatusStack {
    private val statuses = ArrayList<UniffiRustCallStatus>()
    private var depth = 0

    /** The status for the next call on this thread, reset to success. */
    fun push(): UniffiRustCallStatus {
        if (depth == statuses.size) statuses.add(ReusableCallStatus())
        val status = statuses[depth++]
        status.code = UNIFFI_CALL_SUCCESS
        status.error_buf.capacity = 0
        status.error_buf.len = 0
        status.error_buf.data = null
        return status
    }

    /** The call that took the newest status is done. */
    fun pop() {
        depth--
    }
}

internal val callStatuses: ThreadLocal<CallStatusStack> = ThreadLocal.withInitial { CallStatusStack() }

/** Run [block] with a call status of this thread's stack, reset to success. */
internal inline fun <U> withCallStatus(block: (UniffiRustCallStatus) -> U): U {
    val stack = callStatuses.get()
    val status = stack.push()
    try {
        return block(status)
    } finally {
        stack.pop()
    }
}

/**
 * A call status that JNA copies to and from native memory without reflection on the common
 * path: before a call only its code (always success) is written; after it only the code is
 * read, and the whole structure (with the error buffer) only when the call failed.
 */
internal class ReusableCallStatus : UniffiRustCallStatus() {
    private val codeOffset = fieldOffset("code").toLong()

    override fun autoWrite() {
        pointer.setByte(codeOffset, UNIFFI_CALL_SUCCESS)
    }

    override fun autoRead() {
        val code = pointer.getByte(codeOffset)
        if (code == UNIFFI_CALL_SUCCESS) {
            this.code = code
        } else {
            read()
        }
    }
}
