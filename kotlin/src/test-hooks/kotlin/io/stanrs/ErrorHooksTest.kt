package io.stanrs

import kotlinx.coroutines.test.runTest
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** Every core error kind surfaces as its own [StanException] subclass (native test hooks). */
class ErrorHooksTest {
    @Test
    fun everyCoreErrorKindMapsToItsOwnException() = runTest {
        val codes = errorKindCodes()
        assertTrue(codes.size >= 11, "codes: $codes")
        val classes = codes.map { code ->
            val e = assertFailsWith<StanException> { errorForCode(code) }
            assertEquals(code, e.code, "code of ${e::class.simpleName}")
            assertFalse(e is StanException.Generic, "$code has no exception class of its own")
            assertEquals("test error $code", e.message)
            val rebuilt = stanException(code, e.message.orEmpty())
            assertEquals(e::class, rebuilt::class, "per-publish errors of $code map to the same class")
            assertEquals(code, rebuilt.code)
            e::class
        }
        assertEquals(codes.size, classes.toSet().size, "one class per code")
        assertTrue(assertFailsWith<StanException> { errorForCode("PUBLISH_ACK_TIMEOUT") }.isTimeout)
        assertFalse(assertFailsWith<StanException> { errorForCode("TRANSPORT") }.isTimeout)
    }
}
