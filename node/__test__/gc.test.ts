import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { isStanError } from 'stan-client'
import { Broker, startBroker } from 'stan-client/testing'
import { connectTo, unique, within } from './helpers'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Pause `broker` and wait until its process is really stopped (seen in /proc on Linux). */
async function pauseFully(broker: Broker): Promise<void> {
  broker.pause()
  if (process.platform !== 'linux' || broker.pid === undefined) return
  const stat = `/proc/${broker.pid}/stat`
  while (!/\) [tT] /.test(readFileSync(stat, 'utf8'))) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A publish awaiting its ack on a client nobody references any more (nor closed). */
async function pendingPublishOfAnUnreferencedClient(broker: Broker): Promise<{ settled: Promise<unknown> }> {
  const sc = await connectTo(broker)
  await sc.publish(unique('ch'), 'acked')
  await pauseFully(broker)
  const settled = sc.publish(unique('ch'), 'never acked').then(
    () => null,
    (err: unknown) => err,
  )
  // The publishes of this tick start right after it.
  await new Promise((resolve) => setImmediate(resolve))
  return { settled }
}

test('a client collected without close() fails its pending publishes with CONNECTION_CLOSED', async () => {
  await using broker = await startBroker()
  try {
    const { settled } = await pendingPublishOfAnUnreferencedClient(broker)
    let outcome: unknown = undefined
    void settled.then((o) => (outcome = o))
    // Collect until the client's close settles the publish.
    await within(
      'the publish to settle',
      (async () => {
        while (outcome === undefined) {
          gc()
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      })(),
    )
    assert.ok(isStanError(outcome, 'CONNECTION_CLOSED'), String(outcome))
  } finally {
    broker.resume()
  }
})
