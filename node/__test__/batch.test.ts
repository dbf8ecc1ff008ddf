// Batched receive and publish: order across batch boundaries, auto-ack at batch edges,
// cancellation and close mid-batch (unseen messages stay unacked), back-pressure, ackMany,
// and publish coalescing.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { Client, isStanError, Message, Subscription } from 'stan-client'
import { connectTo, sharedBroker, unique, within } from './helpers'

const broker = sharedBroker()

/** Publish `n` messages `m0`…`m{n-1}` in one tick (one coalesced native call). */
async function publishMany(sc: Client, ch: string, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => sc.publish(ch, `m${i}`)))
}

/** Take `n` messages with the async iterator, then leave the loop. */
async function takeThenBreak(sub: Subscription, n: number): Promise<bigint[]> {
  const seen: bigint[] = []
  if (n === 0) return seen
  for await (const msg of sub) {
    seen.push(msg.sequence)
    if (seen.length === n) break
  }
  return seen
}

/** The next `n` messages (or fail after a guard timeout). */
async function nextN(sub: Subscription, n: number): Promise<Message[]> {
  const out: Message[] = []
  while (out.length < n) {
    const m = await within(`message ${out.length + 1} of ${n}`, sub.next())
    assert.ok(m, 'subscription ended')
    out.push(m)
  }
  return out
}

const seqs = (from: number, to: number): bigint[] => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i))

describe('receive in batches', () => {
  test('order is kept across batch boundaries (small and default batch sizes)', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const n = 1000
    await publishMany(sc, ch, n)
    for (const receiveBatchSize of [7, undefined]) {
      const sub = await sc.subscribe(ch, { startAt: 'first', maxInFlight: n, receiveBatchSize })
      let i = 0
      for await (const msg of sub) {
        assert.equal(msg.sequence, BigInt(i + 1))
        assert.equal(msg.data.toString(), `m${i}`)
        assert.equal(msg.subject, ch)
        assert.equal(msg.redelivered, false)
        if (++i === n) break
      }
      assert.equal(i, n)
    }
  })

  test('auto-ack at batch edges: leaving the loop after k messages, a durable resumes at k + 1', async () => {
    // Batches of at most 3 over 10 messages: k = 3, 6, 9 end a batch, the others stop in one.
    const sc = await connectTo(broker())
    const ch = unique('ch')
    const n = 10
    await publishMany(sc, ch, n)
    for (let k = 1; k < n; k++) {
      const durableName = unique(`d${k}`)
      const opts = { durableName, startAt: 'first' as const, maxInFlight: 100, receiveBatchSize: 3 }
      const first = await sc.subscribe(ch, opts)
      assert.deepEqual(await takeThenBreak(first, k), seqs(1, k))
      assert.equal(first.closed, true)
      await using resumed = await sc.subscribe(ch, opts)
      const rest = await nextN(resumed, n - k)
      // Everything seen was acked (none comes again); nothing unseen was (all of it comes).
      assert.deepEqual(
        rest.map((m) => m.sequence),
        seqs(k + 1, n),
        `after taking ${k}`,
      )
    }
    await sc.close()
  })

  test('an exception mid-batch leaves the loop like break: unseen messages stay unacked', async () => {
    const sc = await connectTo(broker())
    const ch = unique('ch')
    await publishMany(sc, ch, 8)
    const opts = { durableName: unique('d'), startAt: 'first' as const, maxInFlight: 100, receiveBatchSize: 100 }
    const sub = await sc.subscribe(ch, opts)
    const seen: bigint[] = []
    await assert.rejects(
      (async () => {
        for await (const msg of sub) {
          seen.push(msg.sequence)
          if (seen.length === 4) throw new Error('handler failed')
        }
      })(),
      /handler failed/,
    )
    assert.deepEqual(seen, seqs(1, 4))
    assert.equal(sub.closed, true)
    await using resumed = await sc.subscribe(ch, opts)
    const rest = await nextN(resumed, 4)
    assert.deepEqual(
      rest.map((m) => m.sequence),
      seqs(5, 8),
    )
    await resumed.close()
    await sc.close()
  })

  test('close with a partly consumed batch: taken messages are acked, the rest is redelivered', async () => {
    const clientId = unique('c')
    const ch = unique('ch')
    const durableName = unique('d')
    const opts = { durableName, startAt: 'first' as const, maxInFlight: 100, receiveBatchSize: 100 }
    {
      await using sc = await connectTo(broker(), { clientId })
      await publishMany(sc, ch, 20)
      const sub = await sc.subscribe(ch, opts)
      const got = await nextN(sub, 5)
      assert.deepEqual(
        got.map((m) => m.sequence),
        seqs(1, 5),
      )
      await sub.close()
      assert.equal(await sub.next(), null, 'no buffered message is handed out after close')
      // Subscription close: resume on the same client.
      await using resumed = await sc.subscribe(ch, opts)
      const next = await nextN(resumed, 5)
      assert.deepEqual(
        next.map((m) => m.sequence),
        seqs(6, 10),
      )
      assert.equal(next[0]!.redelivered, true, 'message 6 was delivered before, never acked')
      // Client close with a partly consumed batch (messages 6..10 taken, 11..20 buffered).
    }
    await using sc2 = await connectTo(broker(), { clientId })
    await using resumed2 = await sc2.subscribe(ch, opts)
    const last = await nextN(resumed2, 10)
    assert.deepEqual(
      last.map((m) => m.sequence),
      seqs(11, 20),
    )
  })

  test('back-pressure: an application slower than the broker loses nothing', async () => {
    await using sc = await connectTo(broker())
    await using producer = await connectTo(broker())
    const ch = unique('ch')
    const n = 300
    await using sub = await sc.subscribe(ch, { maxInFlight: 5, receiveBatchSize: 4 })
    const published = (async () => {
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => producer.publish(ch, `m${i + j}`)))
      }
    })()
    let i = 0
    for await (const msg of sub) {
      assert.equal(msg.data.toString(), `m${i}`)
      assert.equal(msg.redelivered, false)
      // Slower than the broker: give the event loop (and the publisher) a turn per message.
      await new Promise((resolve) => setImmediate(resolve))
      if (++i === n) break
    }
    await published
    assert.equal(i, n)
  })
})

/**
 * A durable manual-ack subscription takes 10 messages (batches of 4) and `ackFirstSix` acks the
 * first six and closes it; resumed, it gets exactly #7–#10, redelivered.
 */
async function durableResumesAfterSix(ackFirstSix: (sub: Subscription, got: Message[]) => Promise<void>): Promise<void> {
  const clientId = unique('c')
  const ch = unique('ch')
  const durableName = unique('d')
  const opts = { durableName, startAt: 'first' as const, manualAcks: true, maxInFlight: 100, receiveBatchSize: 4 }
  {
    await using sc = await connectTo(broker(), { clientId })
    await publishMany(sc, ch, 10)
    const sub = await sc.subscribe(ch, opts)
    await ackFirstSix(sub, await nextN(sub, 10))
  }
  await using sc = await connectTo(broker(), { clientId })
  await using resumed = await sc.subscribe(ch, opts)
  const rest = await nextN(resumed, 4)
  assert.deepEqual(
    rest.map((m) => m.sequence),
    seqs(7, 10),
  )
  assert.ok(rest.every((m) => m.redelivered))
  await resumed.ackMany(rest)
}

describe('msg.ack() (deferred, queued together)', () => {
  test('acks deferred just before close reach the server: a durable resumes after them', async () => {
    await durableResumesAfterSix(async (sub, got) => {
      for (const m of got.slice(0, 6)) await m.ack()
      await sub.close() // no event-loop turn since the acks: the close queues them first
    })
  })

  test('acks go out at the end of the event-loop turn while a receive waits for them', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    await publishMany(sc, ch, 4)
    // The server sends #3 only once #1 and #2 are acked (max in flight 2, a long ack wait).
    await using sub = await sc.subscribe(ch, { startAt: 'first', manualAcks: true, maxInFlight: 2, ackWaitMs: 60_000 })
    const [m1, m2] = await nextN(sub, 2)
    const third = sub.next() // asks for more before the acks: nothing to queue yet
    await m1!.ack()
    await m2!.ack()
    const m3 = await within('#3, after the acks of #1 and #2', third)
    assert.equal(m3?.sequence, 3n)
    assert.equal(m3?.redelivered, false)
  })

  test('ack after the subscription closed is INVALID_STATE', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    await using sub = await sc.subscribe(ch, { manualAcks: true })
    await sc.publish(ch, 'x')
    const m = await within('a message', sub.next())
    await sub.close()
    await assert.rejects(m!.ack(), (e: unknown) => isStanError(e, 'INVALID_STATE'))
  })
})

describe('ackMany', () => {
  test('acks many messages of several batches in one call; a durable resumes after them', async () => {
    await durableResumesAfterSix(async (sub, got) => {
      await sub.ackMany(got.slice(0, 6))
      await sub.ackMany(got.slice(0, 2)) // acking again is a no-op
      await sub.close()
    })
  })

  test('ackMany in auto-ack mode is INVALID_STATE; a non-message is INVALID_ARGUMENT-like TypeError', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    await using sub = await sc.subscribe(ch)
    await sc.publish(ch, 'x')
    const [m] = await nextN(sub, 1)
    await assert.rejects(sub.ackMany([m!]), (e: unknown) => isStanError(e, 'INVALID_STATE'))
    await assert.rejects(sub.ackMany([{} as Message]), TypeError)
    await sub.ackMany([]) // nothing to do
  })
})

describe('publish coalescing', () => {
  test('publishes of one tick keep their order and each reports its own error', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const other = unique('other')
    const results = await Promise.allSettled([
      sc.publish(ch, 'a'),
      sc.publish('bad.*', 'x'),
      sc.publish(ch, Buffer.from('b')),
      sc.publish(other, 'o'),
      sc.publish(ch, new Uint8Array([0x63])),
      sc.publish(ch, 42 as unknown as string),
      sc.publish('', 'y'),
      sc.publish(ch, 'd'),
    ])
    const status = results.map((r) => r.status)
    assert.deepEqual(status, ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled'])
    for (const i of [1, 5, 6]) {
      const r = results[i] as PromiseRejectedResult
      assert.ok(isStanError(r.reason, 'INVALID_ARGUMENT'), String(r.reason))
    }
    assert.match(String((results[1] as PromiseRejectedResult).reason.message), /invalid channel name "bad\.\*"/)
    const guids = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value)
    assert.equal(new Set(guids).size, 5)
    await using sub = await sc.subscribe(ch, { startAt: 'first' })
    const got = await nextN(sub, 4)
    assert.deepEqual(
      got.map((m) => m.data.toString()),
      ['a', 'b', 'c', 'd'],
    )
    await using osub = await sc.subscribe(other, { startAt: 'first' })
    assert.equal((await nextN(osub, 1))[0]!.data.toString(), 'o')
  })

  test('a large burst: every payload arrives intact and in order; the buffer is free after the tick', async () => {
    await using sc = await connectTo(broker(), { maxPubAcksInFlight: 5000 })
    const ch = unique('ch')
    const n = 3000
    // Views into one scratch region, overwritten as soon as the publishing tick is over.
    const scratch = Buffer.alloc(n * 64)
    const expected: string[] = []
    const acks: Promise<string>[] = []
    for (let i = 0; i < n; i++) {
      const text = `${i}:${'x'.repeat(i % 50)}`
      expected.push(text)
      const len = scratch.write(text, i * 64)
      acks.push(sc.publish(ch, scratch.subarray(i * 64, i * 64 + len)))
    }
    await Promise.resolve() // the tick's publishes start here: the payloads are copied
    scratch.fill(0x2d)
    await Promise.all(acks)
    await using sub = await sc.subscribe(ch, { startAt: 'first', maxInFlight: n })
    const got = await nextN(sub, n)
    assert.deepEqual(
      got.map((m) => m.data.toString()),
      expected,
    )
  })

  test('a payload over the server limit fails alone', async () => {
    await using sc = await connectTo(broker())
    const ch = unique('ch')
    const results = await Promise.allSettled([
      sc.publish(ch, 'before'),
      sc.publish(ch, Buffer.alloc(8 * 1024 * 1024)),
      sc.publish(ch, 'after'),
    ])
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    assert.ok(isStanError((results[1] as PromiseRejectedResult).reason, 'INVALID_ARGUMENT'))
  })
})
