/**
 * A durable subscription with manual acks that stops and resumes where it left off.
 *
 * `node build/subscribe-durable.js [NATS_URL]`
 */
import { connect, Subscription } from 'stan-client'
import { options } from './config'

const CHANNEL = 'example.audit'

async function readSome(sub: Subscription, count: number): Promise<bigint[]> {
  const seen: bigint[] = []
  for await (const msg of sub) {
    seen.push(msg.sequence)
    await msg.ack()
    if (seen.length === count) break // closes the subscription; the durable stays
  }
  return seen
}

async function main(): Promise<void> {
  const opts = options('example-auditor')
  {
    await using sc = await connect(opts)
    for (let i = 1; i <= 6; i++) await sc.publish(CHANNEL, `event ${i}`)
    // Start over for this run (a durable from an earlier run is removed).
    const old = await sc.subscribe(CHANNEL, { durableName: 'auditor' })
    await old.unsubscribe()

    const sub = await sc.subscribe(CHANNEL, {
      durableName: 'auditor',
      startAt: { timeDeltaMs: 60_000 },
      manualAcks: true,
    })
    const first = await readSome(sub, 3)
    console.log(`first run read sequences ${first.join(', ')}`)
  }
  {
    // Same client ID and durable name: the server resumes after the last ack.
    await using sc = await connect(opts)
    await using sub = await sc.subscribe(CHANNEL, { durableName: 'auditor', manualAcks: true })
    const second = await readSome(sub, 3)
    console.log(`second run read sequences ${second.join(', ')}`)
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
