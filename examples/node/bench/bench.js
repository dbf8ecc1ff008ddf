#!/usr/bin/env node
// One measurement of one Node client against a running streaming server, printed as one JSON
// line on standard output (everything else goes to standard error):
//
//   node bench.js --client ours|official \
//     --scenario pub-pipelined|pub-awaited|consume-auto|consume-manual \
//     --messages N --size BYTES --url nats://HOST:PORT --cluster-id ID --channel NAME
//
//   {"lang":"node","client":"ours","scenario":"pub-pipelined","size":128,"messages":20000,
//    "seconds":0.21,"msgs_per_sec":95238,"p50_us":null,"p99_us":null,"rss_kb":61234}
//
// `ours` is the stan-client package (node/ of this repository, or $STAN_CLIENT_NODE_DIR: a
// folder holding the package with its addon built, e.g. in release mode); `official` is
// node-nats-streaming 0.3.2 (`npm install` here). The server is started by the caller, and
// every run should use a fresh channel. See README.md beside this file.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

const SCENARIOS = ['pub-pipelined', 'pub-awaited', 'consume-auto', 'consume-manual']

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${JSON.stringify(a)}`)
    out[a.slice(2)] = argv[++i]
  }
  const need = ['client', 'scenario', 'messages', 'size', 'url', 'cluster-id', 'channel']
  for (const k of need) if (out[k] === undefined) throw new Error(`missing --${k}`)
  if (!['ours', 'official'].includes(out.client)) throw new Error(`--client must be ours or official`)
  if (!SCENARIOS.includes(out.scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}`)
  const n = Number(out.messages)
  const size = Number(out.size)
  if (!Number.isInteger(n) || n < 1) throw new Error('--messages must be a positive integer')
  if (!Number.isInteger(size) || size < 0) throw new Error('--size must be a non-negative integer')
  return { client: out.client, scenario: out.scenario, n, size, url: out.url, clusterId: out['cluster-id'], channel: out.channel }
}

/** Peak resident set size of this process (VmHWM), in KiB. */
function peakRssKb() {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) : Math.round(process.resourceUsage().maxRSS)
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, i)]
}

const now = () => process.hrtime.bigint()
const seconds = (from, to) => Number(to - from) / 1e9

// ---- ours: stan-client ----------------------------------------------------------------------

async function runOurs(o, payload) {
  const pkg = process.env.STAN_CLIENT_NODE_DIR || path.resolve(__dirname, '../../../node')
  const { connect } = require(pkg)
  const sc = await connect({
    clusterId: o.clusterId,
    clientId: `bench-node-ours-${process.pid}`,
    url: o.url,
    maxPubAcksInFlight: Math.max(o.n, 16384),
  })
  try {
    const pipelined = () => Promise.all(Array.from({ length: o.n }, () => sc.publish(o.channel, payload)))
    switch (o.scenario) {
      case 'pub-pipelined': {
        const t = now()
        await pipelined()
        return { seconds: seconds(t, now()) }
      }
      case 'pub-awaited': {
        const lat = new Array(o.n)
        const t = now()
        for (let i = 0; i < o.n; i++) {
          const s = now()
          await sc.publish(o.channel, payload)
          lat[i] = Number(now() - s) / 1e3
        }
        return { seconds: seconds(t, now()), lat }
      }
      default: {
        await pipelined()
        const manualAcks = o.scenario === 'consume-manual'
        const t = now()
        const sub = await sc.subscribe(o.channel, { startAt: 'first', maxInFlight: 10000, manualAcks })
        let got = 0
        for await (const msg of sub) {
          if (manualAcks) await msg.ack()
          if (++got === o.n) break
        }
        return { seconds: seconds(t, now()) }
      }
    }
  } finally {
    await sc.close()
  }
}

// ---- official: node-nats-streaming 0.3.2 ----------------------------------------------------

function runOfficial(o, payload) {
  const stan = require('node-nats-streaming')
  const sc = stan.connect(o.clusterId, `bench-node-official-${process.pid}`, {
    url: o.url,
    maxPubAcksInflight: Math.max(o.n, 16384),
  })
  const publish = () =>
    new Promise((resolve, reject) => sc.publish(o.channel, payload, (err, guid) => (err ? reject(err) : resolve(guid))))
  const pipelined = () =>
    new Promise((resolve, reject) => {
      let acked = 0
      for (let i = 0; i < o.n; i++) {
        sc.publish(o.channel, payload, (err) => {
          if (err) return reject(err)
          if (++acked === o.n) resolve()
        })
      }
    })
  const consume = (manualAcks) =>
    new Promise((resolve) => {
      const t = now()
      const opts = sc.subscriptionOptions().setDeliverAllAvailable().setMaxInFlight(10000).setManualAckMode(manualAcks)
      const sub = sc.subscribe(o.channel, opts)
      let got = 0
      sub.on('message', (msg) => {
        if (manualAcks) msg.ack()
        // Done: the connection is closed next (closing the subscription first makes this
        // client throw on messages still arriving for it).
        if (++got === o.n) resolve({ seconds: seconds(t, now()) })
      })
    })
  const body = async () => {
    switch (o.scenario) {
      case 'pub-pipelined': {
        const t = now()
        await pipelined()
        return { seconds: seconds(t, now()) }
      }
      case 'pub-awaited': {
        const lat = new Array(o.n)
        const t = now()
        for (let i = 0; i < o.n; i++) {
          const s = now()
          await publish()
          lat[i] = Number(now() - s) / 1e3
        }
        return { seconds: seconds(t, now()), lat }
      }
      default:
        await pipelined()
        return consume(o.scenario === 'consume-manual')
    }
  }
  return new Promise((resolve, reject) => {
    sc.on('error', reject)
    sc.on('connect', () => {
      body().then(
        (r) => {
          sc.on('close', () => resolve(r))
          sc.close()
        },
        reject,
      )
    })
  })
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  const payload = Buffer.alloc(o.size, 0x61)
  const r = o.client === 'ours' ? await runOurs(o, payload) : await runOfficial(o, payload)
  let p50 = null
  let p99 = null
  if (r.lat) {
    const sorted = Float64Array.from(r.lat).sort()
    p50 = Math.round(percentile(sorted, 50) * 10) / 10
    p99 = Math.round(percentile(sorted, 99) * 10) / 10
  }
  const line = {
    lang: 'node',
    client: o.client,
    scenario: o.scenario,
    size: o.size,
    messages: o.n,
    seconds: r.seconds,
    msgs_per_sec: Math.round(o.n / r.seconds),
    p50_us: p50,
    p99_us: p99,
    rss_kb: peakRssKb(),
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
