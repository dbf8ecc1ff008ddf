/**
 * Publish: one message awaited for its ack, then a burst of publishes in flight at once.
 *
 * `node build/publish.js [NATS_URL]`
 */
import { connect, isStanError } from 'stan-client'
import { options } from './config'

async function main(): Promise<void> {
  await using sc = await connect(options('example-publisher'))

  // publish() resolves once the server has stored the message.
  const guid = await sc.publish('example.orders', 'order #1')
  console.log(`stored order #1 (guid ${guid})`)

  // Start many publishes, then await their acks: they are in flight together, in order.
  const acks: Promise<string>[] = []
  for (let i = 2; i <= 1000; i++) acks.push(sc.publish('example.orders', `order #${i}`))
  const guids = await Promise.all(acks)
  console.log(`stored ${guids.length} more orders`)

  // Errors carry a stable code.
  try {
    await sc.publish('not a valid channel', 'x')
  } catch (err) {
    if (!isStanError(err, 'INVALID_ARGUMENT')) throw err
    console.log(`rejected as expected: ${err.code}`)
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
