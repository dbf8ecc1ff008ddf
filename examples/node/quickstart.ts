/**
 * Publish, then read everything back through a durable subscription with manual acks.
 *
 * `node build/quickstart.js [NATS_URL]`
 */
import { connect } from 'stan-client'
import { options } from './config'

async function main(): Promise<void> {
  // --8<-- [start:quickstart]
  await using sc = await connect(options('example-quickstart'))
  const guid = await sc.publish('example.orders', Buffer.from('order #1')) // resolves once acked
  console.log(`stored order #1 (guid ${guid})`)

  const sub = await sc.subscribe('example.orders', {
    durableName: 'audit',
    startAt: 'first',
    manualAcks: true,
  })
  for await (const msg of sub) {
    console.log(`#${msg.sequence} ${msg.data.toString()} stored at ${msg.timestamp.toISOString()}`)
    await msg.ack()
    if (msg.data.toString() === 'order #1') break // leaving the loop closes the subscription
  }
  // --8<-- [end:quickstart]
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
