/** @module */

import type { NativeMessage } from './native'

/**
 * A message delivered to a {@link Subscription}.
 *
 * `sequence` is a `bigint`: channel sequences are unsigned 64-bit numbers. Compare with
 * `bigint` literals (`msg.sequence === 1n`) or convert with `Number(msg.sequence)`, which is
 * exact below 2^53.
 *
 * In auto-ack mode (the default) a message is acknowledged when the next one is requested or
 * the subscription is closed; with `manualAcks: true` call {@link Message.ack}.
 */
export class Message {
  /** The channel's sequence number of this message (starts at 1). */
  readonly sequence: bigint
  /** The channel (subject) the message was published on. */
  readonly subject: string
  /** The payload. */
  readonly data: Buffer
  /** When the server stored the message (millisecond precision; see `timestampNanos`). */
  readonly timestamp: Date
  /** When the server stored the message, in nanoseconds since the Unix epoch. */
  readonly timestampNanos: bigint
  /** True when this is not the first delivery of the message to this subscription. */
  readonly redelivered: boolean
  /** How many times the server redelivered the message (0 on the first delivery). */
  readonly redeliveryCount: number
  readonly #native: NativeMessage

  /** @internal */
  constructor(native: NativeMessage) {
    this.#native = native
    this.sequence = native.sequence
    this.subject = native.subject
    this.data = native.data
    this.timestampNanos = native.timestampNanos
    this.timestamp = new Date(Number(this.timestampNanos / 1_000_000n))
    this.redelivered = native.redelivered
    this.redeliveryCount = native.redeliveryCount
  }

  /**
   * Acknowledge the message (manual-ack subscriptions only; acking twice is a no-op).
   *
   * Rejects with `INVALID_STATE` in auto-ack mode or after the subscription was closed, and
   * with `CONNECTION_CLOSED` when the client is closed.
   */
  ack(): Promise<void> {
    try {
      // Acks are queued by the core, so this normally completes at once, without a promise
      // from the native layer.
      if (this.#native.ackNow()) return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#native.ack()
  }
}
