import { test } from 'node:test'
import assert from 'node:assert/strict'

import { ClientEvent, isStanError } from 'stan-client'
import { startBroker } from 'stan-client/testing'
import { connectTo, nextEvent, recordEvents, unique, within } from './helpers'

test('connection lost (pings exhausted) without auto-resume: events, failing calls, closed', async () => {
  await using broker = await startBroker()
  const sc = await connectTo(broker, { pingIntervalMsForTests: 100, pingMaxOut: 2, autoResume: false })
  const lost = nextEvent(sc, 'connectionLost')
  const closed = nextEvent(sc, 'closed')
  const ch = unique('ch')
  const sub = await sc.subscribe(ch)
  const iteration = (async () => {
    for await (const m of sub) void m
  })().then(
    () => null,
    (e: unknown) => e,
  )
  broker.pause()
  try {
    const ev = await within('connectionLost', lost)
    assert.deepEqual(ev, {
      type: 'connectionLost',
      reason: 'pingsExhausted',
      message: 'stan: connection lost due to PING failure',
      resuming: false,
    })
    await within('closed', closed)
  } finally {
    broker.resume()
  }
  // The subscription's iteration throws once with the reason.
  const ended = await within('iteration end', iteration)
  assert.ok(isStanError(ended, 'CONNECTION_LOST'), String(ended))
  assert.match(ended.message, /PING failure/)
  await assert.rejects(sc.publish(ch, 'x'), (e: unknown) => isStanError(e, 'CONNECTION_LOST'))
  assert.equal(sc.isClosed, true)
  await sc.close()
})

test('auto-resume after a broker restart: lost, resumed, and the subscription goes on', async () => {
  let broker = await startBroker()
  try {
    const sc = await connectTo(broker, { pingIntervalMs: 1000, pingMaxOut: 3 })
    const seen = recordEvents(sc)
    const events = sc.events() // the async-iterator form, from now on
    const ch = unique('ch')
    const sub = await sc.subscribe(ch)
    await sc.publish(ch, 'before')
    assert.equal((await within('before', sub.next()))?.data.toString(), 'before')

    const lost = nextEvent(sc, 'connectionLost')
    const resumed = nextEvent(sc, 'resumed')
    broker = await broker.restart()
    const ev = await within('connectionLost', lost, 20_000)
    assert.equal(ev.resuming, true)
    assert.equal((await within('resumed', resumed, 20_000)).failedSubscriptions, 0)

    await sc.publish(ch, 'after')
    assert.equal((await within('after', sub.next()))?.data.toString(), 'after')

    await sc.close()
    const viaIterator: ClientEvent['type'][] = []
    for await (const e of events) viaIterator.push(e.type)
    assert.ok(viaIterator.includes('connectionLost'), viaIterator.join())
    assert.ok(viaIterator.includes('resumed'), viaIterator.join())
    assert.equal(viaIterator.at(-1), 'closed')
    assert.deepEqual(
      seen.map((e) => e.type),
      viaIterator,
      'on() and the iterator see the same events',
    )
    assert.equal(await sub.next(), null)
  } finally {
    await broker.stop()
  }
})

test('events iterator: leaving the loop early stops listening', async () => {
  await using broker = await startBroker()
  await using sc = await connectTo(broker)
  const events = sc.events()
  const first = events.next()
  await events.return()
  assert.deepEqual(await within('pending next after return', first), { done: true, value: undefined })
  assert.deepEqual(await events.next(), { done: true, value: undefined })
})

test('events() on a closed client ends at once (nothing keeps waiting)', async () => {
  await using broker = await startBroker()
  const sc = await connectTo(broker)
  await sc.close()
  const events = sc.events()
  assert.deepEqual(await within('events after close', events.next(), 5_000), {
    done: true,
    value: undefined,
  })
})
