/** @module */

import type { NativeEvent, NativeEvents } from './native'

/** Why the streaming session was lost. */
export type LostReason = 'pingsExhausted' | 'replaced' | 'serverClosed' | 'unknown'

/**
 * Something that happened to the connection:
 * - `natsDisconnected` / `natsReconnected`: the NATS connection dropped / is back (the
 *   streaming session normally survives this);
 * - `connectionLost`: the streaming session is gone; publishes awaiting acks failed with
 *   `CONNECTION_LOST`. `resuming` tells whether auto-resume is trying to re-establish it;
 * - `resumed`: auto-resume registered again and re-created the subscriptions it could;
 * - `resumeFailed`: auto-resume gave up;
 * - `closed`: the client is closed (always the last event).
 */
export type ClientEvent =
  | { type: 'natsDisconnected' }
  | { type: 'natsReconnected' }
  | { type: 'connectionLost'; reason: LostReason; message: string; resuming: boolean }
  | { type: 'resumed'; failedSubscriptions: number }
  | { type: 'resumeFailed'; message: string }
  | { type: 'closed' }

/** The `type` of a {@link ClientEvent}. */
export type ClientEventType = ClientEvent['type']

/** The event of type `K`. */
export type ClientEventOf<K extends ClientEventType> = Extract<ClientEvent, { type: K }>

/** @internal */
export function fromNative(ev: NativeEvent): ClientEvent | null {
  switch (ev.kind) {
    case 'natsDisconnected':
      return { type: 'natsDisconnected' }
    case 'natsReconnected':
      return { type: 'natsReconnected' }
    case 'connectionLost':
      return {
        type: 'connectionLost',
        reason: (ev.reason ?? 'unknown') as LostReason,
        message: ev.message ?? '',
        resuming: ev.resuming ?? false,
      }
    case 'resumed':
      return { type: 'resumed', failedSubscriptions: ev.failedSubscriptions ?? 0 }
    case 'resumeFailed':
      return { type: 'resumeFailed', message: ev.message ?? '' }
    case 'closed':
      return { type: 'closed' }
    default:
      return null // a kind added to the core later: skipped until this layer knows it
  }
}

/**
 * An async iterator of connection events (from {@link Client.events}). It ends after the
 * `closed` event; leaving a `for await` loop early stops listening.
 */
export interface ClientEvents extends AsyncIterableIterator<ClientEvent>, AsyncDisposable {
  /** Stop listening: a pending `next()` resolves as done. */
  return(): Promise<IteratorReturnResult<undefined>>
}

/** @internal */
export function iterateEvents(native: NativeEvents): ClientEvents {
  let done = false
  const finish = (): IteratorReturnResult<undefined> => {
    done = true
    native.close()
    return { done: true, value: undefined }
  }
  const it: ClientEvents = {
    async next(): Promise<IteratorResult<ClientEvent, undefined>> {
      while (!done) {
        const ev = await native.next()
        if (ev == null) return finish()
        const converted = fromNative(ev)
        if (converted !== null) return { done: false, value: converted }
      }
      return { done: true, value: undefined }
    },
    async return(): Promise<IteratorReturnResult<undefined>> {
      return finish()
    },
    [Symbol.asyncIterator]() {
      return it
    },
    async [Symbol.asyncDispose]() {
      finish()
    },
  }
  return it
}
