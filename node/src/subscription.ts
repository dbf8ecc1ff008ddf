/** @module */

import type { NativeSubscription } from './native'
import { AckQueue, Message, Received, ackMessages, received } from './message'

/** Auto-ack mode: how long messages handed out from a batch may wait for their ack report. */
const PROGRESS_MS = 50

/**
 * A subscription: an async iterable of {@link Message}s.
 *
 * ```ts
 * const sub = await sc.subscribe('orders', { durableName: 'audit', startAt: 'first', manualAcks: true })
 * for await (const msg of sub) {
 *   handle(msg)
 *   await msg.ack()
 *   if (done) break // leaving the loop closes the subscription (a durable is kept)
 * }
 * ```
 *
 * The iteration ends without an error after {@link Subscription.close},
 * {@link Subscription.unsubscribe} or {@link Client.close}; it throws once (with code
 * `CONNECTION_LOST`, for example) when the subscription cannot go on. Leaving the loop early
 * (`break`, `return`, an exception in the body) closes the subscription.
 *
 * Messages arrive in batches: one call into the native layer takes everything already
 * received (up to `receiveBatchSize`, default 256), and the iteration hands them out one by one from there. In
 * auto-ack mode a message counts as seen once the iteration (or {@link Subscription.next})
 * has handed it out, and seen messages are acknowledged: the one handed out last when more is
 * asked for or at close, the others at the latest when the batch is used up, the
 * subscription closes, or 50 ms later. Messages of a batch that were never handed out (the
 * loop was left, the subscription or client closed) are never acknowledged: the server
 * redelivers them after `ackWaitMs`, and a durable resumes with them.
 *
 * Iterate a subscription from one loop at a time.
 */
export class Subscription implements AsyncIterable<Message>, AsyncDisposable {
  readonly #native: NativeSubscription
  readonly #subject: string
  readonly #manualAcks: boolean
  readonly #onEnd: (sub: Subscription) => void
  /** The most messages one native call takes (`receiveBatchSize`). */
  readonly #batchMax: number
  /** The batch being handed out, and the next index in it. */
  #cur: Received | null = null
  #next = 0
  /** How many messages of `#cur` the native layer knows were handed out. */
  #reported = 0
  #progressTimer: NodeJS.Timeout | null = null
  /** A `nextBatch()` in progress (one at a time; callers queue behind it). */
  #fetching: Promise<Message | null> | null = null
  /** Closed by the application (or its client): buffered messages are no longer handed out. */
  #stopped = false
  /** Manual-ack mode: the acks of `Message.ack` not yet queued to the connection. */
  readonly #acks = new AckQueue()

  /** @internal */
  constructor(native: NativeSubscription, batchMax: number, onEnd: (sub: Subscription) => void) {
    this.#native = native
    this.#batchMax = batchMax
    this.#subject = native.subject
    this.#manualAcks = native.manualAcks
    this.#onEnd = onEnd
  }

  /** The channel this subscription reads. */
  get subject(): string {
    return this.#subject
  }

  /** True when messages must be acknowledged with {@link Message.ack}. */
  get manualAcks(): boolean {
    return this.#manualAcks
  }

  /**
   * True once the subscription is closed: {@link Subscription.close} or
   * {@link Subscription.unsubscribe} was called, the client closed, or the subscription ended.
   */
  get closed(): boolean {
    return this.#stopped || this.#native.closing
  }

  /** A message of the current batch, or null when it is used up. */
  #take(): Message | null {
    const r = this.#cur
    if (r === null || this.#stopped || this.#next >= r.count) return null
    const m = new Message(r, this.#next++)
    if (!this.#manualAcks && this.#progressTimer === null && this.#next < r.count) this.#armProgress()
    return m
  }

  /** Auto-ack mode: tell the native layer soon how far the current batch was handed out. */
  #armProgress(): void {
    this.#progressTimer = setTimeout(() => {
      this.#progressTimer = null
      this.#report()
    }, PROGRESS_MS)
    this.#progressTimer.unref()
  }

  /** Report the messages handed out so far (auto-ack: all but the newest are acked now). */
  #report(): void {
    const r = this.#cur
    if (r === null || this.#manualAcks || this.#next <= this.#reported) return
    this.#reported = this.#next
    r.batch.markTaken(this.#next)
  }

  /** Report the current batch and let it go (untaken messages stay unacked); queue the acks. */
  #release(): void {
    this.#report()
    this.#acks.flush()
    if (this.#progressTimer !== null) {
      clearTimeout(this.#progressTimer)
      this.#progressTimer = null
    }
    this.#cur = null
  }

  /** @internal The client is closing: report what was handed out, hand out nothing more. */
  stopLocal(): void {
    this.#release()
    this.#stopped = true
  }

  async #fetch(): Promise<Message | null> {
    this.#release()
    if (this.#stopped) return null
    let rec
    try {
      rec = this.#native.tryNextBatch(this.#batchMax) ?? (await this.#native.nextBatch(this.#batchMax))
    } catch (err) {
      this.#onEnd(this)
      throw err
    }
    if (rec == null) {
      this.#onEnd(this)
      return null
    }
    // Closed while waiting: the batch is dropped unseen (its messages stay unacked).
    if (this.#stopped) return null
    this.#cur = received(rec, this.#subject, this.#acks)
    this.#next = 0
    this.#reported = 0
    return this.#take()
  }

  /**
   * The next message, or `null` when the subscription has ended (the pull API under the
   * async iterator). Rejects once when the subscription cannot go on.
   */
  next(): Promise<Message | null> {
    if (this.#fetching === null) {
      const m = this.#take()
      if (m !== null) return Promise.resolve(m)
      const p = this.#fetch().finally(() => {
        if (this.#fetching === p) this.#fetching = null
      })
      this.#fetching = p
      return p
    }
    // Queued behind the fetch in progress.
    return this.#fetching.then(
      () => this.next(),
      () => this.next(),
    )
  }

  /**
   * Iterate the messages; leaving the loop early closes the subscription.
   *
   * Messages already received are handed out without a call into the native layer; one call
   * takes a whole batch (see the class documentation for when they are acknowledged).
   */
  [Symbol.asyncIterator](): AsyncIterator<Message, void, undefined> {
    let ended = false
    const done = { done: true as const, value: undefined }
    const iterator: AsyncIterator<Message, void, undefined> = {
      next: () => {
        if (ended) return Promise.resolve(done)
        const m = this.#fetching === null ? this.#take() : null
        if (m !== null) return Promise.resolve({ done: false as const, value: m })
        return this.next().then(
          (msg) => {
            if (msg === null) {
              ended = true
              return done
            }
            return { done: false as const, value: msg }
          },
          (err: unknown) => {
            ended = true
            throw err
          },
        )
      },
      return: async () => {
        if (!ended) {
          ended = true
          if (!this.closed) await this.close()
        }
        return done
      },
    }
    return iterator
  }

  /**
   * Acknowledge many messages with one call into the native layer (manual-ack
   * subscriptions; `msg.ack()` acknowledges one). Acking a message twice is a no-op.
   *
   * ```ts
   * const seen: Message[] = []
   * for await (const msg of sub) {
   *   seen.push(msg)
   *   if (seen.length === 100) await sub.ackMany(seen.splice(0))
   * }
   * ```
   *
   * Rejects like {@link Message.ack}, for the first message that could not be acknowledged
   * (the ones before it are acknowledged).
   */
  ackMany(messages: Iterable<Message>): Promise<void> {
    try {
      ackMessages(messages)
      return Promise.resolve()
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Close the subscription; the server keeps a durable subscription, so subscribing again
   * with the same durable name resumes where it stopped. A pending iteration ends. In
   * auto-ack mode the messages handed out are acknowledged, the ones still buffered are not.
   *
   * Rejects with `INVALID_STATE` when already closed or unsubscribed.
   */
  close(): Promise<void> {
    this.stopLocal()
    this.#onEnd(this)
    return this.#native.close()
  }

  /**
   * Remove the subscription on the server; a durable subscription is deleted with it.
   *
   * Rejects with `INVALID_STATE` when already closed or unsubscribed.
   */
  unsubscribe(): Promise<void> {
    this.stopLocal()
    this.#onEnd(this)
    return this.#native.unsubscribe()
  }

  /** `await using sub = await sc.subscribe(…)`: closes the subscription unless already closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#native.closing) await this.close()
  }
}
