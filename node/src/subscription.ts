/** @module */

import type { NativeMessage, NativeSubscription } from './native'
import { Message } from './message'

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
 * Iterate a subscription from one loop at a time.
 */
export class Subscription implements AsyncIterable<Message>, AsyncDisposable {
  readonly #native: NativeSubscription

  /** @internal */
  constructor(native: NativeSubscription) {
    this.#native = native
  }

  /** The channel this subscription reads. */
  get subject(): string {
    return this.#native.subject
  }

  /** True when messages must be acknowledged with {@link Message.ack}. */
  get manualAcks(): boolean {
    return this.#native.manualAcks
  }

  /**
   * True once the subscription is closed: {@link Subscription.close} or
   * {@link Subscription.unsubscribe} was called, the client closed, or the subscription ended.
   */
  get closed(): boolean {
    return this.#native.closing
  }

  /**
   * The next message, or `null` when the subscription has ended (the pull API under the
   * async iterator). Rejects once when the subscription cannot go on.
   */
  async next(): Promise<Message | null> {
    const m = this.#native.tryNext() ?? (await this.#native.next())
    return m == null ? null : new Message(m)
  }

  /**
   * Iterate the messages; leaving the loop early closes the subscription.
   *
   * A message that has already arrived is taken synchronously; only when none is ready does
   * the iteration wait on a promise from the native layer.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    let ended = false
    try {
      for (;;) {
        let m: NativeMessage | null | undefined
        try {
          m = this.#native.tryNext()
          if (m == null) m = await this.#native.next()
        } catch (err) {
          ended = true
          throw err
        }
        if (m == null) {
          ended = true
          return
        }
        yield new Message(m)
      }
    } finally {
      if (!ended && !this.#native.closing) await this.close()
    }
  }

  /**
   * Close the subscription; the server keeps a durable subscription, so subscribing again
   * with the same durable name resumes where it stopped. A pending iteration ends.
   *
   * Rejects with `INVALID_STATE` when already closed or unsubscribed.
   */
  close(): Promise<void> {
    return this.#native.close()
  }

  /**
   * Remove the subscription on the server; a durable subscription is deleted with it.
   *
   * Rejects with `INVALID_STATE` when already closed or unsubscribed.
   */
  unsubscribe(): Promise<void> {
    return this.#native.unsubscribe()
  }

  /** `await using sub = await sc.subscribe(…)`: closes the subscription unless already closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#native.closing) await this.close()
  }
}
