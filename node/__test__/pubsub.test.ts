import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { isStanError, Message, Subscription } from 'stan-client'
import { connectTo, sharedBroker, unique, within } from './helpers'

const broker = sharedBroker()

/** The next message (or fail after a guard timeout). */
async function next(sub: Subscription, what = 'a message'): Promise<Message> {
  const m = await within(what, sub.next())
  assert.ok(m, `${what}: subscription ended`)
  return m
}

describe('publish', () => {
  test('publish resolves with the guid once acked; Buffer, Uint8Array and string payloads', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    await using sub = await sc.subscribe(ch, { startAt: 'first' })
    const g1 = await sc.publish(ch, Buffer.from('buf'))
    const g2 = await sc.publish(ch, new Uint8Array([104, 105]))
    const g3 = await sc.publish(ch, 'str')
    assert.equal(new Set([g1, g2, g3]).size, 3)
    assert.match(g1, /^\S+$/)
    const got = [await next(sub), await next(sub), await next(sub)]
    assert.deepEqual(got.map((m) => m.data.toString()), ['buf', 'hi', 'str'])
    assert.deepEqual(got.map((m) => m.sequence), [1n, 2n, 3n])
    const m = got[0]!
    assert.equal(m.subject, ch)
    assert.equal(m.redelivered, false)
    assert.equal(m.redeliveryCount, 0)
    assert.ok(m.timestamp instanceof Date)
    assert.ok(Math.abs(m.timestamp.getTime() - Date.now()) < 60_000)
    assert.equal(BigInt(m.timestamp.getTime()), m.timestampNanos / 1_000_000n)
  })

  test('many publishes in flight at once all resolve, stored in call order', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const guids = await Promise.all(
      Array.from({ length: 500 }, (_, i) => sc.publish(ch, `m${i}`)),
    )
    assert.equal(new Set(guids).size, 500)
    await using sub = await sc.subscribe(ch, { startAt: 'first' })
    for (let i = 0; i < 500; i++) {
      const m = await next(sub)
      assert.equal(m.sequence, BigInt(i + 1))
      assert.equal(m.data.toString(), `m${i}`)
    }
  })

  test('a bad channel name or payload is rejected with INVALID_ARGUMENT', async () => {
    await using sc = await connectTo(broker())
    await assert.rejects(sc.publish('foo.*', 'x'), (e: unknown) => isStanError(e, 'INVALID_ARGUMENT'))
    await assert.rejects(sc.publish('foo', 42 as unknown as string), (e: unknown) =>
      isStanError(e, 'INVALID_ARGUMENT'),
    )
  })

  test('publish after close rejects with CONNECTION_CLOSED', async () => {
    const sc = await connectTo(broker())
    await sc.close()
    assert.equal(sc.isClosed, true)
    await assert.rejects(sc.publish('foo', 'x'), (e: unknown) => isStanError(e, 'CONNECTION_CLOSED'))
    await sc.close() // closing twice is a no-op
  })
})

describe('start positions', () => {
  const GAP_MS = 100
  /** A start time between the message before `t` and the one at `t`. */
  const justBefore = (t: Date): Date => new Date(t.getTime() - GAP_MS / 2)

  async function seeded(): Promise<{ ch: string; times: Date[] }> {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const times: Date[] = []
    await using sub = await sc.subscribe(ch, { startAt: 'first' })
    for (const v of ['one', 'two', 'three']) {
      if (times.length > 0) {
        // Time-based starts need messages stored apart: a short gap, then the next one.
        await new Promise((resolve) => setTimeout(resolve, GAP_MS))
      }
      await sc.publish(ch, v)
      times.push((await next(sub)).timestamp)
    }
    return { ch, times }
  }

  async function firstFrom(ch: string, startAt: Parameters<typeof startFor>[0]): Promise<string> {
    return startFor(startAt, ch)
  }

  async function startFor(
    startAt: import('stan-client').StartAt,
    ch: string,
  ): Promise<string> {
    await using sc = await connectTo(broker())
    await using sub = await sc.subscribe(ch, { startAt })
    return (await next(sub, `first message for ${JSON.stringify(startAt, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`)).data.toString()
  }

  test('first, lastReceived, sequence (number and bigint), time, timeDelta', async () => {
    const { ch, times } = await seeded()
    assert.equal(await firstFrom(ch, 'first'), 'one')
    assert.equal(await firstFrom(ch, 'lastReceived'), 'three')
    assert.equal(await firstFrom(ch, { sequence: 2 }), 'two')
    assert.equal(await firstFrom(ch, { sequence: 3n }), 'three')
    assert.equal(await firstFrom(ch, { time: justBefore(times[1]!) }), 'two')
    assert.equal(await firstFrom(ch, { time: justBefore(times[2]!).getTime() }), 'three')
    assert.equal(await firstFrom(ch, { timeDeltaMs: 60_000 }), 'one')
  })

  test('newOnly (the default) skips stored messages', async () => {
    const { ch } = await seeded()
    await using sc = await connectTo(broker())
    for (const opts of [{}, { startAt: 'newOnly' as const }]) {
      await using sub = await sc.subscribe(ch, opts)
      await sc.publish(ch, 'four')
      assert.equal((await next(sub)).data.toString(), 'four')
    }
  })

  test('a bad start position is rejected with INVALID_ARGUMENT', async () => {
    await using sc = await connectTo(broker())
    const bad: unknown[] = ['yesterday', { sequence: -1n }, { sequence: 1.5 }, { time: new Date(NaN) }, { timeDeltaMs: -1 }]
    for (const startAt of bad) {
      await assert.rejects(
        sc.subscribe('foo', { startAt: startAt as 'first' }),
        (e: unknown) => isStanError(e, 'INVALID_ARGUMENT'),
        JSON.stringify(startAt, (_, v) => (typeof v === 'bigint' ? String(v) : v)),
      )
    }
  })
})

describe('subscriptions', () => {
  test('durable resume: close keeps the position, a new subscription continues', async () => {
    const ch = unique('ch')
    const durableName = unique('dur')
    const sc = await connectTo(broker())
    for (let i = 1; i <= 3; i++) await sc.publish(ch, `m${i}`)
    const sub = await sc.subscribe(ch, { durableName, startAt: 'first', manualAcks: true })
    for await (const msg of sub) {
      await msg.ack()
      if (msg.sequence === 2n) break // leaving the loop closes the subscription
    }
    assert.equal(sub.closed, true)
    await sc.publish(ch, 'm4')
    await sc.close()

    // A durable belongs to (client ID, durable name): reconnect with the same client ID.
    await using again = await connectTo(broker(), { clientId: sc.clientId })
    await using resumed = await again.subscribe(ch, { durableName, startAt: 'first', manualAcks: true })
    const got: string[] = []
    for await (const msg of resumed) {
      got.push(msg.data.toString())
      await msg.ack()
      if (got.length === 2) break
    }
    assert.deepEqual(got, ['m3', 'm4'])
  })

  test('unsubscribe deletes a durable; close keeps it', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const durableName = unique('dur')
    await sc.publish(ch, 'a')
    const s1 = await sc.subscribe(ch, { durableName, startAt: 'first' })
    assert.equal((await next(s1)).data.toString(), 'a')
    await s1.unsubscribe()
    assert.equal(await s1.next(), null, 'the iteration ends after unsubscribe')
    await assert.rejects(s1.close(), (e: unknown) => isStanError(e, 'INVALID_STATE'))
    // The durable is gone: subscribing again starts over from 'first'.
    const s2 = await sc.subscribe(ch, { durableName, startAt: 'first', manualAcks: true })
    const a = await next(s2)
    assert.equal(a.data.toString(), 'a')
    await a.ack()
    await s2.close()
    // Closed, not unsubscribed: the durable is kept, so nothing is redelivered and the new
    // message is the next one.
    await sc.publish(ch, 'b')
    await using s3 = await sc.subscribe(ch, { durableName, startAt: 'first' })
    assert.equal((await next(s3)).data.toString(), 'b')
  })

  test('queue group: each message goes to exactly one member', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const queueGroup = unique('q')
    await using a = await sc.subscribe(ch, { queueGroup })
    await using b = await sc.subscribe(ch, { queueGroup })
    const n = 40
    const seen = new Map<string, string>()
    const pull = async (sub: Subscription, name: string): Promise<void> => {
      for (;;) {
        const m = await sub.next()
        if (m === null) return
        assert.equal(seen.has(m.data.toString()), false, 'delivered twice')
        seen.set(m.data.toString(), name)
        if (seen.size === n) {
          await a.close()
          await b.close()
        }
      }
    }
    const done = Promise.all([pull(a, 'a'), pull(b, 'b')])
    for (let i = 0; i < n; i++) await sc.publish(ch, `m${i}`)
    await within('all queue messages', done)
    assert.equal(seen.size, n)
  })

  test('manual acks: an unacked message is redelivered after ackWait', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    await using sub = await sc.subscribe(ch, { manualAcks: true, ackWaitMs: 1000 })
    await sc.publish(ch, 'x')
    const first = await next(sub)
    assert.equal(first.redelivered, false)
    const again = await next(sub, 'the redelivery')
    assert.equal(again.sequence, first.sequence)
    assert.equal(again.redelivered, true)
    assert.ok(again.redeliveryCount >= 1)
    await again.ack()
    await again.ack() // acking twice is a no-op
  })

  test('manual-ack iteration keeps order, acks, and stops at break', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const n = 600
    await Promise.all(Array.from({ length: n }, (_, i) => sc.publish(ch, `m${i}`)))
    const sub = await sc.subscribe(ch, { startAt: 'first', manualAcks: true, maxInFlight: 1000 })
    let i = 0
    for await (const msg of sub) {
      assert.equal(msg.data.toString(), `m${i}`)
      assert.equal(msg.sequence, BigInt(i + 1))
      await msg.ack()
      if (++i === n - 100) break
    }
    assert.equal(i, n - 100)
    assert.equal(sub.closed, true)
    assert.equal(await sub.next(), null)
  })

  test('ack in auto-ack mode is INVALID_STATE', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    await using sub = await sc.subscribe(ch)
    await sc.publish(ch, 'x')
    const m = await next(sub)
    await assert.rejects(m.ack(), (e: unknown) => isStanError(e, 'INVALID_STATE'))
  })

  test('maxInFlight: no more than that many unacked messages are delivered', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    for (let i = 1; i <= 5; i++) await sc.publish(ch, `m${i}`)
    await using sub = await sc.subscribe(ch, { startAt: 'first', manualAcks: true, maxInFlight: 2 })
    const m1 = await next(sub)
    const m2 = await next(sub)
    assert.deepEqual([m1.sequence, m2.sequence], [1n, 2n])
    // With two unacked, the third stays on the server: a publish round trip (the server
    // handles it after any delivery it would have made) passes without it.
    let arrived = false
    const pending = sub.next()
    void pending.then(() => (arrived = true))
    await sc.publish(ch, 'probe')
    await sc.publish(ch, 'probe')
    assert.equal(arrived, false, 'a third message arrived with two unacked')
    await m1.ack()
    const m3 = await within('the third message after an ack', pending)
    assert.equal(m3?.sequence, 3n)
  })

  test('Symbol.asyncDispose closes the subscription and the client', async () => {
    const sc = await connectTo(broker())
    const ch = unique('ch')
    let subRef: Subscription | undefined
    {
      await using sub = await sc.subscribe(ch)
      subRef = sub
    }
    assert.equal(subRef.closed, true)
    {
      await using inner = sc
      assert.equal(inner.isClosed, false)
    }
    assert.equal(sc.isClosed, true)
  })

  test('client close ends a pending iteration without an error', async () => {
    const sc = await connectTo(broker())
    const sub = await sc.subscribe(unique('ch'))
    const pending = (async () => {
      const got: Message[] = []
      for await (const m of sub) got.push(m)
      return got
    })()
    await sc.close()
    assert.deepEqual(await within('iteration end', pending), [])
  })

  test('a duplicate durable is rejected by the server (SERVER_REJECTED)', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const durableName = unique('dur')
    await using s1 = await sc.subscribe(ch, { durableName })
    await assert.rejects(sc.subscribe(ch, { durableName }), (e: unknown) => {
      assert.ok(isStanError(e, 'SERVER_REJECTED'))
      assert.match(e.message, /duplicate durable/)
      return true
    })
    assert.equal(s1.closed, false)
  })
})
