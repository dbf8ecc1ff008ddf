// Failover probe for bench/jetstream.sh: the official Node client (node-nats-streaming 0.3.2,
// installed by integration/official-clients/run.sh) publishes one message every 10 ms
// without waiting for its ack, and prints `ack <sent_ms> <acked_ms>` (Unix epoch milliseconds)
// for every acknowledged publish. A publish sent while no broker is active is never
// acknowledged (it times out after 5 s, ignored), so the first ack of a publish sent after
// the kill of the active broker says when a client could publish again.
//
//   NODE_PATH=integration/official-clients/node_modules \
//     node bench/jetstream-probe.js URLS CLUSTER_ID CHANNEL SECONDS
'use strict'

const stan = require('node-nats-streaming')

const [urls, clusterId, channel, seconds] = process.argv.slice(2)
if (!seconds) {
  process.stderr.write('usage: jetstream-probe.js URLS CLUSTER_ID CHANNEL SECONDS\n')
  process.exit(2)
}
const sc = stan.connect(clusterId, `jetstream-probe-${process.pid}`, {
  servers: urls.split(','),
  ackTimeout: 5000,
  maxPubAcksInflight: 100000,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250
})
sc.on('error', (err) => {
  process.stderr.write(`probe: ${err}\n`)
  process.exit(1)
})
sc.on('connect', () => {
  process.stdout.write('connected\n')
  const timer = setInterval(() => {
    const sent = Date.now()
    sc.publish(channel, 'probe', (err) => {
      if (!err) process.stdout.write(`ack ${sent} ${Date.now()}\n`)
    })
  }, 10)
  setTimeout(() => {
    clearInterval(timer)
    sc.close()
    process.exit(0)
  }, Number(seconds) * 1000)
})
