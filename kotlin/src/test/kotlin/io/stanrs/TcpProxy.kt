package io.stanrs

import java.io.Closeable
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.CopyOnWriteArrayList

/** A TCP proxy in front of the broker's NATS port that can cut every open connection. */
class TcpProxy(private val targetPort: Int) : Closeable {
    private val server = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    private val open = CopyOnWriteArrayList<Socket>()

    /** The URL clients use to go through the proxy. */
    val url: String = "nats://127.0.0.1:${server.localPort}"

    init {
        thread("proxy-accept") {
            while (!server.isClosed) {
                val inbound = try {
                    server.accept()
                } catch (_: Exception) {
                    break
                }
                val outbound = try {
                    Socket(InetAddress.getLoopbackAddress(), targetPort)
                } catch (_: Exception) {
                    inbound.close()
                    continue
                }
                open += inbound
                open += outbound
                pump(inbound, outbound)
                pump(outbound, inbound)
            }
        }
    }

    private fun pump(from: Socket, to: Socket) = thread("proxy-pump") {
        try {
            from.getInputStream().copyTo(to.getOutputStream())
        } catch (_: Exception) {
            // cut or closed
        } finally {
            from.close()
            to.close()
        }
    }

    /** Drop every open connection (new ones are still accepted). */
    fun cut() {
        for (s in open) s.close()
        open.clear()
    }

    override fun close() {
        server.close()
        cut()
    }

    private fun thread(name: String, body: () -> Unit) {
        val t = Thread(body, name)
        t.isDaemon = true
        t.start()
    }
}
