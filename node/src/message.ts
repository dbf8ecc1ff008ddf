/** @module */

import type { NativeBatch, NativeReceived } from './native'

/** @internal One received batch as the JavaScript side holds it. */
export interface Received {
  readonly batch: NativeBatch
  readonly data: Buffer
  readonly meta: Uint32Array
  readonly stamps: BigUint64Array
  readonly count: number
  readonly subject: string
  readonly acks: AckQueue
}

/** @internal */
export function received(r: NativeReceived, subject: string, acks: AckQueue): Received {
  return { batch: r.batch, data: r.data, meta: r.meta, stamps: r.stamps, count: r.meta.length / 3, subject, acks }
}

/**
 * @internal The acks of one subscription's {@link Message.ack} calls, deferred in their native
 * batches and queued to the connection together: when the subscription asks for more
 * messages or closes, or once the current turn of the event loop is over (`setImmediate`),
 * whichever comes first. One command for a run of acks instead of one per message.
 */
export class AckQueue {
  readonly #batches = new Set<NativeBatch>()
  #scheduled = false
  readonly #onImmediate = (): void => {
    this.#scheduled = false
    this.flush()
  }

  /** `batch` holds deferred acks. */
  add(batch: NativeBatch): void {
    this.#batches.add(batch)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#onImmediate)
    }
  }

  /** Queue every deferred ack now. */
  flush(): void {
    for (const batch of this.#batches) {
      try {
        batch.flushAcks()
      } catch {
        // The client is gone: nothing can be acked any more, and the server redelivers the
        // messages to a subscription that resumes them, as for an ack lost on the way.
      }
    }
    this.#batches.clear()
  }
}

let slotOf: (m: Message) => [Received, number]

/**
 * Acknowledge many messages in one call into the native layer (see `Subscription.ackMany`).
 * @internal
 */
export function ackMessages(messages: Iterable<Message>): void {
  const byBatch = new Map<NativeBatch, number[]>()
  for (const m of messages) {
    if (!(m instanceof Message)) throw new TypeError('ackMany takes Message objects')
    const [r, i] = slotOf(m)
    const list = byBatch.get(r.batch)
    if (list === undefined) byBatch.set(r.batch, [i])
    else list.push(i)
  }
  for (const [batch, indices] of byBatch) batch.ackMany(Uint32Array.from(indices))
}

/**
 * A message delivered to a {@link Subscription}.
 *
 * `sequence` is a `bigint`: channel sequences are unsigned 64-bit numbers. Compare with
 * `bigint` literals (`msg.sequence === 1n`) or convert with `Number(msg.sequence)`, which is
 * exact below 2^53.
 *
 * `data` is a view into one `Buffer` that holds the payloads of every message received
 * together with this one (no copy per message): keeping one message's `data` keeps that
 * buffer alive. Copy it (`Buffer.from(msg.data)`) to keep a small payload for long.
 *
 * In auto-ack mode (the default) a message is acknowledged once the next one is taken or the
 * subscription is closed; with `manualAcks: true` call {@link Message.ack} (or
 * {@link Subscription.ackMany} for many at once).
 */
export class Message {
  readonly #r: Received
  readonly #i: number
  #data: Buffer | undefined

  static {
    slotOf = (m) => [m.#r, m.#i]
  }

  /** @internal */
  constructor(r: Received, i: number) {
    this.#r = r
    this.#i = i
  }

  /** The channel's sequence number of this message (starts at 1). */
  get sequence(): bigint {
    return this.#r.stamps[2 * this.#i]!
  }

  /** The channel (subject) the message was published on. */
  get subject(): string {
    return this.#r.subject
  }

  /** The payload (a view into the buffer of its batch, see above). */
  get data(): Buffer {
    if (this.#data === undefined) {
      const meta = this.#r.meta
      const i = this.#i
      this.#data = this.#r.data.subarray(i === 0 ? 0 : meta[3 * i - 3], meta[3 * i])
    }
    return this.#data
  }

  /** When the server stored the message, in nanoseconds since the Unix epoch. */
  get timestampNanos(): bigint {
    return BigInt.asIntN(64, this.#r.stamps[2 * this.#i + 1]!)
  }

  /** When the server stored the message (millisecond precision; see `timestampNanos`). */
  get timestamp(): Date {
    return new Date(Number(this.timestampNanos / 1_000_000n))
  }

  /** True when this is not the first delivery of the message to this subscription. */
  get redelivered(): boolean {
    return this.#r.meta[3 * this.#i + 2] === 1
  }

  /** How many times the server redelivered the message (0 on the first delivery). */
  get redeliveryCount(): number {
    return this.#r.meta[3 * this.#i + 1]!
  }

  /**
   * Acknowledge the message (manual-ack subscriptions only; acking twice is a no-op). The
   * checks are made at once and the promise only reports their errors; the ack itself goes
   * to the connection together with the other acks of the moment: when the subscription is
   * asked for more messages or closed, or at the end of the current event-loop turn.
   *
   * Rejects with `INVALID_STATE` in auto-ack mode or after the subscription was closed, and
   * with `CONNECTION_CLOSED` when the client is closed.
   */
  ack(): Promise<void> {
    try {
      this.#r.batch.deferAck(this.#i)
      this.#r.acks.add(this.#r.batch)
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
  }
}
