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
}

/** @internal */
export function received(r: NativeReceived, subject: string): Received {
  return { batch: r.batch, data: r.data, meta: r.meta, stamps: r.stamps, count: r.meta.length / 3, subject }
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
   * Acknowledge the message (manual-ack subscriptions only; acking twice is a no-op). The ack
   * is queued at once; the promise only reports errors.
   *
   * Rejects with `INVALID_STATE` in auto-ack mode or after the subscription was closed, and
   * with `CONNECTION_CLOSED` when the client is closed.
   */
  ack(): Promise<void> {
    try {
      this.#r.batch.ack(this.#i)
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
  }
}
