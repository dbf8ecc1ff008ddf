package io.stanrs

import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native

/**
 * JVM-side setup of the native library, done once before the first native call.
 *
 * Rust futures wake their Kotlin continuation through a JNA callback, called from a Tokio worker
 * thread. By default JNA attaches such a thread to the JVM for each call and detaches it
 * afterwards, which costs far more than the call itself; the worker threads are few and
 * long-lived, so they stay attached (as daemon threads).
 */
internal object NativeSetup {
    init {
        Native.setCallbackThreadInitializer(
            uniffiRustFutureContinuationCallbackImpl,
            CallbackThreadInitializer(true, false, "stan-rs-tokio"),
        )
    }

    /** Runs the initializer (idempotent). */
    fun ensure() = Unit
}
