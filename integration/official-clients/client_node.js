// The official Node client (node-nats-streaming 0.3.2) across a failover, driven by
// failover.py over standard input and output, the same steps as client_python.py:
//
// 1. connect (one STAN session for the whole run), subscribe a durable with manual acks,
//    publish a-0 .. a-19 (each awaited), wait until the durable got them all; print PHASE1;
// 2. on KILLED (standard input: the active broker was killed with SIGKILL) publish b-0 .. b-19,
//    each retried until acknowledged (a publish sent while no broker is active times out), and
//    wait until the durable got every b-* too;
// 3. wait three ping intervals (pings every second: a broker that did not know the session
//    would answer with an error), publish once more, then print `OK <json>` and exit 0 when the
//    session was never lost (no `connection_lost`, no `close`, no refused publish, the same
//    session published and received throughout); otherwise `FAIL <why>` and exit status 1.
'use strict'

const readline = require('readline')
const stan = require('node-nats-streaming')

const N = 20
const WAIT_MS = 60000

function parseArgs (argv) {
  const o = {}
  for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1]
  for (const k of ['url', 'cluster-id', 'client-id', 'channel']) {
    if (!o[k]) throw new Error(`--${k} is required`)
  }
  return o
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const o = parseArgs(process.argv.slice(2))
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const sc = stan.connect(o['cluster-id'], o['client-id'], {
    servers: o.url.split(','),
    ackTimeout: 2000,
    // Pings every second (10 may go unanswered during the failover): a broker that did not
    // know this session would answer one with an error, which emits connection_lost.
    stanPingInterval: 1000,
    stanMaxPingOut: 10,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250
  })
  const lost = []
  sc.on('connection_lost', (err) => lost.push(`connection_lost: ${err}`))
  sc.on('close', () => lost.push('closed'))
  sc.on('error', (err) => lost.push(`error: ${err}`))
  await new Promise((resolve, reject) => {
    sc.once('connect', resolve)
    sc.once('error', reject)
  })

  const got = new Map()
  let redelivered = 0
  const opts = sc.subscriptionOptions()
    .setDurableName('dur')
    .setDeliverAllAvailable()
    .setManualAckMode(true)
    .setAckWait(2000)
  const sub = sc.subscribe(o.channel, opts)
  sub.on('error', (err) => lost.push(`subscription error: ${err}`))
  sub.on('message', (msg) => {
    const seq = msg.getSequence()
    const data = msg.getData()
    if (got.has(seq) && got.get(seq) !== data) lost.push(`sequence ${seq} changed payload`)
    got.set(seq, data)
    if (msg.isRedelivered()) redelivered++
    msg.ack()
  })
  await new Promise((resolve) => sub.once('ready', resolve))

  const publish = (data) =>
    new Promise((resolve, reject) => sc.publish(o.channel, data, (err, guid) => (err ? reject(err) : resolve(guid))))
  const waitAll = async (prefix) => {
    const deadline = Date.now() + WAIT_MS
    const have = () => new Set(got.values())
    for (;;) {
      const h = have()
      const missing = []
      for (let i = 0; i < N; i++) if (!h.has(`${prefix}-${i}`)) missing.push(`${prefix}-${i}`)
      if (missing.length === 0) return
      if (Date.now() > deadline) throw new Error(`the durable did not get ${missing.join(' ')}`)
      await sleep(20)
    }
  }

  for (let i = 0; i < N; i++) await publish(`a-${i}`)
  await waitAll('a')
  process.stdout.write('PHASE1\n')

  const next = await lines.next()
  if (next.done || next.value.trim() !== 'KILLED') throw new Error(`expected KILLED, got ${next.value}`)
  let retries = 0
  for (let i = 0; i < N; i++) {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      try {
        await publish(`b-${i}`)
        break
      } catch (err) {
        // No active broker yet (ack timeout): the outcome is unknown, publish again. A
        // refusal (an error in the PubAck) ends the run.
        if (!/timeout/i.test(String(err)) || Date.now() > deadline) throw new Error(`publish b-${i}: ${err}`)
        retries++
      }
    }
  }
  await waitAll('b')

  const seqs = [...got.keys()].sort((a, b) => a - b)
  const last = seqs[seqs.length - 1]
  const gaps = []
  for (let s = 1; s <= last; s++) if (!got.has(s)) gaps.push(s)
  if (gaps.length) throw new Error(`sequences missing at the durable: ${gaps.join(' ')}`)
  // Three more pings, answered by the new active broker for this same session.
  await sleep(3000)
  if (lost.length) throw new Error(`the STAN session was lost: ${lost.join('; ')}`)
  await publish('last')
  if (lost.length) throw new Error(`the STAN session was lost: ${lost.join('; ')}`)
  sc.removeAllListeners('close')
  await new Promise((resolve) => {
    sc.once('close', resolve)
    sc.close()
  })
  process.stdout.write(`OK ${JSON.stringify({ messages: got.size, last_seq: last, publish_retries: retries, redelivered })}\n`)
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(`FAIL ${err && err.message ? err.message : err}\n`)
    process.exit(1)
  }
)
