'use strict'
// Node runner of the cross-language suite: a command interpreter over the `stan-client` package.
//
// Reads one JSON command per line on stdin and answers one JSON line on stdout (see
// integration/README.md, "Runner protocol"). The scenarios live in integration/run.py; this
// file only maps commands onto the package's public API.

const readline = require('node:readline')
const { connect, isStanError } = require('stan-client')

const conns = new Map()
const subs = new Map()

class Failure extends Error {
  constructor(message) {
    super(message)
    this.code = 'RUNNER'
  }
}

/** A queue with a waiting reader and a timeout. */
class Items {
  constructor() {
    this.items = []
    this.waiter = null
  }
  push(item) {
    if (this.waiter) {
      const w = this.waiter
      this.waiter = null
      w(item)
    } else {
      this.items.push(item)
    }
  }
  take(timeoutMs) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift())
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null
        resolve(null)
      }, timeoutMs)
      this.waiter = (item) => {
        clearTimeout(timer)
        resolve(item)
      }
    })
  }
}

function messageJson(m) {
  return {
    seq: Number(m.sequence),
    subject: m.subject,
    data: m.data.toString('base64'),
    redelivered: m.redelivered,
    ts_ns: m.timestampNanos.toString(),
  }
}

function startAt(spec) {
  switch (spec.kind) {
    case 'new_only': return 'newOnly'
    case 'last_received': return 'lastReceived'
    case 'first': return 'first'
    case 'sequence': return { sequence: spec.value }
    case 'time_ms': return { time: new Date(spec.value) }
    case 'time_delta_ms': return { timeDeltaMs: spec.value }
    default: throw new Failure(`unknown start kind ${spec.kind}`)
  }
}

/** Pull every message of the subscription into the local queue (never cancelled). */
async function pump(s) {
  const end = { end: true }
  try {
    for (;;) {
      const m = await s.sub.next()
      if (m == null) break
      if (s.sub.manualAcks) s.unacked.set(Number(m.sequence), m)
      s.items.push(messageJson(m))
    }
  } catch (err) {
    end.code = err && err.code
  }
  s.items.push(end)
}

function getConn(cmd) {
  const c = conns.get(cmd.conn)
  if (!c) throw new Failure(`no connection ${cmd.conn}`)
  return c
}

function getSub(cmd) {
  const s = subs.get(cmd.sub)
  if (!s) throw new Failure(`no subscription ${cmd.sub}`)
  return s
}

async function handle(cmd) {
  switch (cmd.op) {
    case 'hello':
      return { language: 'node' }
    case 'connect': {
      const client = await connect({
        clusterId: cmd.cluster,
        clientId: cmd.client_id,
        url: cmd.url,
        autoResume: cmd.auto_resume,
        connectWaitMs: cmd.connect_wait_ms,
      })
      const c = { client, events: [], changed: null }
      client.on('event', (ev) => {
        const name = ev.type.charAt(0).toUpperCase() + ev.type.slice(1)
        c.events.push(name)
        if (c.changed) c.changed()
      })
      conns.set(cmd.conn, c)
      return {}
    }
    case 'publish':
      return { guid: await getConn(cmd).client.publish(cmd.subject, Buffer.from(cmd.data, 'base64')) }
    case 'subscribe': {
      const options = { manualAcks: !!cmd.manual_acks }
      if (cmd.queue != null) options.queueGroup = cmd.queue
      if (cmd.durable != null) options.durableName = cmd.durable
      if (cmd.start != null) options.startAt = startAt(cmd.start)
      if (cmd.max_in_flight != null) options.maxInFlight = cmd.max_in_flight
      if (cmd.ack_wait_ms != null) options.ackWaitMs = cmd.ack_wait_ms
      const sub = await getConn(cmd).client.subscribe(cmd.subject, options)
      const s = { sub, items: new Items(), unacked: new Map() }
      subs.set(cmd.sub, s)
      pump(s)
      return {}
    }
    case 'next': {
      const item = await getSub(cmd).items.take(cmd.timeout_ms)
      if (item == null) return { msg: null }
      if (item.end) return { msg: null, end: true, end_code: item.code ?? null }
      return { msg: item }
    }
    case 'drain': {
      const s = getSub(cmd)
      const msgs = []
      let end = false
      while (cmd.max == null || msgs.length < cmd.max) {
        const item = await s.items.take(cmd.idle_ms)
        if (item == null) break
        if (item.end) {
          end = true
          break
        }
        msgs.push(item)
      }
      return { msgs, end }
    }
    case 'ack': {
      const s = getSub(cmd)
      const m = s.unacked.get(cmd.seq)
      if (!m) throw new Failure(`no unacked message ${cmd.seq}`)
      s.unacked.delete(cmd.seq)
      await m.ack()
      return {}
    }
    case 'close_sub':
      await getSub(cmd).sub.close()
      return {}
    case 'unsubscribe':
      await getSub(cmd).sub.unsubscribe()
      return {}
    case 'close':
      await getConn(cmd).client.close()
      return {}
    case 'wait_event': {
      const c = getConn(cmd)
      if (!c.events.includes(cmd.kind)) {
        await new Promise((resolve) => {
          const timer = setTimeout(done, cmd.timeout_ms)
          function done() {
            clearTimeout(timer)
            c.changed = null
            resolve()
          }
          c.changed = () => {
            if (c.events.includes(cmd.kind)) done()
          }
        })
      }
      return { found: c.events.includes(cmd.kind), events: [...c.events] }
    }
    default:
      throw new Failure(`unknown op ${cmd.op}`)
  }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of rl) {
    if (!line.trim()) continue
    const cmd = JSON.parse(line)
    if (cmd.op === 'exit') {
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: true }) + '\n')
      break
    }
    let reply
    try {
      reply = { ...(await handle(cmd)), ok: true }
    } catch (err) {
      const code = isStanError(err) || err instanceof Failure ? err.code : 'RUNNER'
      reply = { ok: false, code, error: String(err && err.message ? err.message : err) }
    }
    reply.id = cmd.id
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
  // Clients still open are left to the process exit, as for a killed consumer.
  process.exit(0)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
