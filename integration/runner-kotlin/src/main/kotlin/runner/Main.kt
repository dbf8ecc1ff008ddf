// Kotlin runner of the cross-language suite: a command interpreter over io.stanrs:stan-client.
//
// Reads one JSON command per line on stdin and answers one JSON line on stdout (see
// integration/README.md, "Runner protocol"). The scenarios live in integration/run.py; this
// file only maps commands onto the public Kotlin API.
package runner

import io.stanrs.Message
import io.stanrs.StanClient
import io.stanrs.StanException
import io.stanrs.StartPosition
import io.stanrs.Subscription
import io.stanrs.code
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.json.JSONArray
import org.json.JSONObject
import java.time.Duration
import java.time.Instant
import java.util.Base64
import java.util.concurrent.ConcurrentHashMap

private class Conn(val client: StanClient) {
    val events = MutableStateFlow<List<String>>(emptyList())
}

private class Sub(val sub: Subscription) {
    /** Messages as JSON, then one `{"end": true}` item. */
    val items = Channel<JSONObject>(Channel.UNLIMITED)
    val unacked = ConcurrentHashMap<Long, Message>()
}

private class Failure(val code: String, message: String) : Exception(message)

private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
private val conns = HashMap<String, Conn>()
private val subs = HashMap<String, Sub>()

private fun JSONObject.optLongOrNull(key: String): Long? = if (has(key) && !isNull(key)) getLong(key) else null
private fun JSONObject.optStringOrNull(key: String): String? = if (has(key) && !isNull(key)) getString(key) else null

private fun startPosition(spec: JSONObject): StartPosition = when (val kind = spec.getString("kind")) {
    "new_only" -> StartPosition.NewOnly
    "last_received" -> StartPosition.LastReceived
    "first" -> StartPosition.First
    "sequence" -> StartPosition.Sequence(spec.getLong("value"))
    "time_ms" -> StartPosition.Time(Instant.ofEpochMilli(spec.getLong("value")))
    "time_delta_ms" -> StartPosition.TimeDelta(Duration.ofMillis(spec.getLong("value")))
    else -> throw Failure("RUNNER", "unknown start kind $kind")
}

private fun messageJson(m: Message): JSONObject {
    val ts = m.timestamp
    return JSONObject()
        .put("seq", m.sequence)
        .put("subject", m.subject)
        .put("data", Base64.getEncoder().encodeToString(m.data))
        .put("redelivered", m.redelivered)
        .put("ts_ns", ts.epochSecond * 1_000_000_000L + ts.nano)
}

private fun pump(s: Sub) = scope.launch {
    val end = JSONObject().put("end", true)
    try {
        while (true) {
            val m = s.sub.next() ?: break
            if (s.sub.manualAcks) s.unacked[m.sequence] = m
            s.items.send(messageJson(m))
        }
    } catch (e: StanException) {
        end.put("code", e.code)
    }
    s.items.send(end)
}

private fun collectEvents(c: Conn) = scope.launch {
    c.client.events().collect { ev -> c.events.value = c.events.value + (ev::class.simpleName ?: "Other") }
}

private fun conn(cmd: JSONObject): Conn =
    conns[cmd.getString("conn")] ?: throw Failure("RUNNER", "no connection ${cmd.getString("conn")}")

private fun sub(cmd: JSONObject): Sub =
    subs[cmd.getString("sub")] ?: throw Failure("RUNNER", "no subscription ${cmd.getString("sub")}")

private suspend fun nextItem(s: Sub, timeoutMs: Long): JSONObject? = withTimeoutOrNull(timeoutMs) { s.items.receive() }

private suspend fun handle(cmd: JSONObject): JSONObject {
    val reply = JSONObject()
    when (val op = cmd.getString("op")) {
        "hello" -> reply.put("language", "kotlin")
        "connect" -> {
            val client = StanClient.connect(cmd.getString("cluster"), cmd.getString("client_id")) {
                url = cmd.getString("url")
                if (cmd.has("auto_resume")) autoResume = cmd.getBoolean("auto_resume")
                cmd.optLongOrNull("connect_wait_ms")?.let { connectWait = Duration.ofMillis(it) }
            }
            val c = Conn(client)
            collectEvents(c)
            conns[cmd.getString("conn")] = c
        }
        "publish" -> {
            val data = Base64.getDecoder().decode(cmd.getString("data"))
            reply.put("guid", conn(cmd).client.publish(cmd.getString("subject"), data))
        }
        "subscribe" -> {
            val subscription = conn(cmd).client.subscribe(cmd.getString("subject")) {
                queueGroup = cmd.optStringOrNull("queue")
                durableName = cmd.optStringOrNull("durable")
                if (cmd.has("start")) startAt = startPosition(cmd.getJSONObject("start"))
                cmd.optLongOrNull("max_in_flight")?.let { maxInFlight = it.toInt() }
                cmd.optLongOrNull("ack_wait_ms")?.let { ackWait = Duration.ofMillis(it) }
                manualAcks = cmd.optBoolean("manual_acks", false)
            }
            val s = Sub(subscription)
            subs[cmd.getString("sub")] = s
            pump(s)
        }
        "next" -> {
            val item = nextItem(sub(cmd), cmd.getLong("timeout_ms"))
            when {
                item == null -> reply.put("msg", JSONObject.NULL)
                item.has("end") -> reply.put("msg", JSONObject.NULL).put("end", true)
                    .put("end_code", item.opt("code") ?: JSONObject.NULL)
                else -> reply.put("msg", item)
            }
        }
        "drain" -> {
            val s = sub(cmd)
            val max = cmd.optLongOrNull("max")
            val msgs = JSONArray()
            var end = false
            while (max == null || msgs.length() < max) {
                val item = nextItem(s, cmd.getLong("idle_ms")) ?: break
                if (item.has("end")) {
                    end = true
                    break
                }
                msgs.put(item)
            }
            reply.put("msgs", msgs).put("end", end)
        }
        "ack" -> {
            val seq = cmd.getLong("seq")
            val m = sub(cmd).unacked.remove(seq) ?: throw Failure("RUNNER", "no unacked message $seq")
            m.ack()
        }
        "close_sub" -> sub(cmd).sub.shutdown()
        "unsubscribe" -> sub(cmd).sub.unsubscribe()
        "close" -> conn(cmd).client.shutdown()
        "wait_event" -> {
            val c = conn(cmd)
            val kind = cmd.getString("kind")
            withTimeoutOrNull(cmd.getLong("timeout_ms")) { c.events.first { kind in it } }
            reply.put("found", kind in c.events.value).put("events", JSONArray(c.events.value))
        }
        else -> throw Failure("RUNNER", "unknown op $op")
    }
    return reply
}

fun main() {
    val lines = Channel<String>(Channel.UNLIMITED)
    Thread {
        System.`in`.bufferedReader().forEachLine { lines.trySend(it) }
        lines.close()
    }.apply { isDaemon = true }.start()
    val out = System.out
    runBlocking {
        for (line in lines) {
            if (line.isBlank()) continue
            val cmd = JSONObject(line)
            val id = cmd.opt("id")
            if (cmd.optString("op") == "exit") {
                out.println(JSONObject().put("id", id).put("ok", true))
                out.flush()
                break
            }
            val reply = try {
                handle(cmd).put("ok", true)
            } catch (e: StanException) {
                JSONObject().put("ok", false).put("code", e.code).put("error", e.toString())
            } catch (e: Failure) {
                JSONObject().put("ok", false).put("code", e.code).put("error", e.message)
            } catch (e: Exception) {
                JSONObject().put("ok", false).put("code", "RUNNER").put("error", e.toString())
            }
            reply.put("id", id)
            out.println(reply)
            out.flush()
        }
    }
    // Clients still open are left to the process exit, as for a killed consumer.
    System.exit(0)
}
