#!/usr/bin/env node
/**
 * The released npm tarball, installed in the current folder, against a running broker:
 * publish, then read the messages back through a durable subscription with manual acks.
 * Plain JavaScript, so it runs with nothing but Node and the installed package.
 *
 * `cd <project with stan-client installed> && node dist-check.js NATS_URL`
 */
'use strict'

// Resolved from the current folder (the fresh project), not from this file's folder.
const stan = require(require.resolve('stan-client', { paths: [process.cwd()] }))

async function main() {
  const url = process.argv[2] || process.env.STAN_NATS_URL || 'nats://127.0.0.1:4222'
  const clientId = `dist-check-${process.pid}`
  const sc = await stan.connect({ clusterId: process.env.STAN_CLUSTER_ID || 'test-cluster', clientId, url })
  try {
    const channel = `dist.check.${process.pid}`
    const sent = ['one', 'two', 'three']
    await Promise.all(sent.map((s) => sc.publish(channel, Buffer.from(s))))
    const sub = await sc.subscribe(channel, { durableName: 'check', startAt: 'first', manualAcks: true })
    const got = []
    for await (const msg of sub) {
      got.push(msg.data.toString())
      await msg.ack()
      if (got.length === sent.length) break
    }
    if (got.join(',') !== sent.join(',')) throw new Error(`received ${got.join(',')}, expected ${sent.join(',')}`)
    console.log(`stan-client ${stan.version}: published and received ${got.length} messages on ${channel}`)
  } finally {
    await sc.close()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
