// Throughput of stan-client vs the official node-nats-streaming, against one stan-broker.
//
//   cd examples/node/bench && npm install && node bench.js [messages] [payloadBytes]
//
// Needs the stan-client package built (node/: npm run build) and a stan-broker binary
// (target/debug/stan-broker or $STAN_BROKER_BIN; a release build gives more telling numbers).
// Each client publishes N messages with all acks in flight (sent in a loop, then awaited; both
// allow N publishes awaiting acks), then
// a fresh subscription reads them back from the first. Numbers are informative only.
'use strict'

const path = require('node:path')
const ours = require(path.resolve(__dirname, '../../../node'))
const { startBroker } = require(path.resolve(__dirname, '../../../node/dist/testing.js'))
const official = require('node-nats-streaming')

const N = Number(process.argv[2] ?? 20000)
const SIZE = Number(process.argv[3] ?? 128)
const payload = Buffer.alloc(SIZE, 0x61)

function rate(n, ms) {
  return `${Math.round((n / ms) * 1000).toLocaleString('en')} msg/s (${ms.toFixed(0)} ms)`
}

async function benchOurs(broker, channel) {
  const sc = await ours.connect({ clusterId: broker.clusterId, clientId: 'bench-ours', url: broker.url, maxPubAcksInFlight: N })
  let t = performance.now()
  const acks = []
  for (let i = 0; i < N; i++) acks.push(sc.publish(channel, payload))
  await Promise.all(acks)
  const pub = performance.now() - t
  t = performance.now()
  const sub = await sc.subscribe(channel, { startAt: 'first', maxInFlight: 10000 })
  let got = 0
  for await (const msg of sub) {
    void msg
    if (++got === N) break
  }
  const recv = performance.now() - t
  t = performance.now()
  const manual = await sc.subscribe(channel, { startAt: 'first', maxInFlight: 10000, manualAcks: true })
  got = 0
  for await (const msg of manual) {
    await msg.ack()
    if (++got === N) break
  }
  const recvManual = performance.now() - t
  await sc.close()
  return { pub, recv, recvManual }
}

function benchOfficial(broker, channel) {
  return new Promise((resolve, reject) => {
    const sc = official.connect(broker.clusterId, 'bench-official', { url: broker.url, maxPubAcksInflight: N })
    sc.on('error', reject)
    sc.on('connect', () => {
      let t = performance.now()
      let acked = 0
      for (let i = 0; i < N; i++) {
        sc.publish(channel, payload, (err) => {
          if (err) return reject(err)
          if (++acked === N) {
            const pub = performance.now() - t
            t = performance.now()
            const opts = sc.subscriptionOptions().setDeliverAllAvailable().setMaxInFlight(10000)
            const sub = sc.subscribe(channel, opts)
            let got = 0
            sub.on('message', () => {
              if (++got === N) {
                const recv = performance.now() - t
                sub.close()
                t = performance.now()
                const mopts = sc
                  .subscriptionOptions()
                  .setDeliverAllAvailable()
                  .setMaxInFlight(10000)
                  .setManualAckMode(true)
                const manual = sc.subscribe(channel, mopts)
                let mgot = 0
                manual.on('message', (msg) => {
                  msg.ack()
                  if (++mgot === N) {
                    const recvManual = performance.now() - t
                    manual.close()
                    sc.close()
                    sc.on('close', () => resolve({ pub, recv, recvManual }))
                  }
                })
              }
            })
          }
        })
      }
    })
  })
}

async function main() {
  const broker = await startBroker()
  try {
    console.log(`${N} messages of ${SIZE} bytes, stan-broker ${broker.url}`)
    const o = await benchOfficial(broker, 'bench.official')
    const r = await benchOurs(broker, 'bench.ours')
    for (const [name, x] of [['node-nats-streaming', o], ['stan-client', r]]) {
      console.log(name)
      console.log(`  publish (acked)          ${rate(N, x.pub)}`)
      console.log(`  receive (auto ack)       ${rate(N, x.recv)}`)
      console.log(`  receive (manual ack)     ${rate(N, x.recvManual)}`)
    }
  } finally {
    await broker.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
