/** @module */

import { EventEmitter } from 'node:events'

import * as native from './native'
import { invalidArgument } from './errors'
import {
  ClientEvent,
  ClientEventOf,
  ClientEventType,
  ClientEvents,
  fromNative,
  iterateEvents,
} from './events'
import {
  ConnectOptions,
  SubscribeOptions,
  toNativeConnectOptions,
  toNativeSubscribeOptions,
} from './options'
import { Subscription } from './subscription'

/** A payload: a `Buffer`, any `Uint8Array`, or a string (sent as UTF-8). */
export type Payload = Uint8Array | string

function toBuffer(data: Payload): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (Buffer.isBuffer(data)) return data
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  throw invalidArgument('payload must be a Buffer, a Uint8Array or a string')
}

type EmitterListener = Parameters<EventEmitter['on']>[1]

/** A listener of events of type `K`. */
export type ClientEventListener<K extends ClientEventType> = (event: ClientEventOf<K>) => void

/**
 * Connect to a NATS Streaming server.
 *
 * ```ts
 * import { connect } from 'stan-client'
 * const sc = await connect({ clusterId: 'test-cluster', clientId: 'me', url: 'nats://127.0.0.1:4222' })
 * ```
 *
 * Rejects with `INVALID_ARGUMENT` for bad options, `TRANSPORT` when NATS cannot be reached,
 * `CONNECT_TIMEOUT` when no streaming server answers, or `SERVER_REJECTED` (for example
 * `stan: clientID already registered`).
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  const nativeOptions = toNativeConnectOptions(options)
  return new Client(await native.connect(nativeOptions))
}

/**
 * A connection to a NATS Streaming server; create it with {@link connect}.
 *
 * Close it with {@link Client.close} (or `await using`): afterwards nothing of the client
 * keeps the process alive.
 */
export class Client implements AsyncDisposable {
  readonly #native: native.NativeClient
  /** Events since connect, pulled only once a listener is added with `on()`/`once()`. */
  readonly #pending: native.NativeEvents
  readonly #emitter = new EventEmitter()
  #pumping = false

  /** @internal */
  constructor(n: native.NativeClient) {
    this.#native = n
    this.#pending = n.events()
  }

  /** The client ID. */
  get clientId(): string {
    return this.#native.clientId
  }

  /** The cluster ID. */
  get clusterId(): string {
    return this.#native.clusterId
  }

  /** True once the client is closed for good (by `close()`, or a lost session not resumed). */
  get isClosed(): boolean {
    return this.#native.isClosed
  }

  /**
   * Publish and resolve with the publish guid once the server has stored the message.
   * Many publishes may be in flight at once (up to `maxPubAcksInFlight`; more wait).
   *
   * Rejects with `INVALID_ARGUMENT` for a bad channel name, `PUBLISH_ACK_TIMEOUT` (the
   * message may still have been stored), `SERVER_REJECTED`, `CONNECTION_LOST` (outcome
   * unknown, never retried) or `CONNECTION_CLOSED`.
   */
  async publish(subject: string, data: Payload): Promise<string> {
    return this.#native.publish(subject, toBuffer(data))
  }

  /**
   * Subscribe to a channel.
   *
   * Rejects with `INVALID_ARGUMENT` for bad options, `SERVER_REJECTED` (e.g.
   * `stan: duplicate durable registration`), `REQUEST_TIMEOUT` or a connection error.
   */
  async subscribe(subject: string, options: SubscribeOptions = {}): Promise<Subscription> {
    const nativeOptions = toNativeSubscribeOptions(options)
    return new Subscription(await this.#native.subscribe(subject, nativeOptions))
  }

  /**
   * Connection events from now on, as an async iterator that ends after `closed`.
   *
   * ```ts
   * for await (const ev of sc.events()) {
   *   if (ev.type === 'connectionLost') console.warn(ev.message)
   * }
   * ```
   */
  events(): ClientEvents {
    return iterateEvents(this.#native.events())
  }

  /**
   * Listen to events of one type (`'event'` for all), EventEmitter-style. Events since
   * `connect()` resolved are delivered, in order. A listener that throws crashes the
   * process, as with any `EventEmitter`.
   */
  on<K extends ClientEventType>(type: K, listener: ClientEventListener<K>): this
  on(type: 'event', listener: (event: ClientEvent) => void): this
  on(type: string, listener: EmitterListener): this {
    this.#emitter.on(type, listener)
    this.#pump()
    return this
  }

  /** Like {@link Client.on}, for the next event of that type only. */
  once<K extends ClientEventType>(type: K, listener: ClientEventListener<K>): this
  once(type: 'event', listener: (event: ClientEvent) => void): this
  once(type: string, listener: EmitterListener): this {
    this.#emitter.once(type, listener)
    this.#pump()
    return this
  }

  /** Remove a listener added with {@link Client.on} or {@link Client.once}. */
  off<K extends ClientEventType>(type: K, listener: ClientEventListener<K>): this
  off(type: 'event', listener: (event: ClientEvent) => void): this
  off(type: string, listener: EmitterListener): this {
    this.#emitter.off(type, listener)
    return this
  }

  #pump(): void {
    if (this.#pumping) return
    this.#pumping = true
    const loop = async (): Promise<void> => {
      for (;;) {
        const ev = await this.#pending.next()
        if (ev == null) return
        const converted = fromNative(ev)
        if (converted === null) continue
        this.#emitter.emit(converted.type, converted)
        this.#emitter.emit('event', converted)
      }
    }
    loop().catch((err: unknown) => {
      // A listener threw: surface it like an EventEmitter would, outside this promise chain.
      process.nextTick(() => {
        throw err
      })
    })
  }

  /**
   * Close the connection: pending publishes fail with `CONNECTION_CLOSED`, every
   * subscription's iteration ends (durables are kept), the client unregisters from the
   * server. Closing a closed client does nothing.
   */
  async close(): Promise<void> {
    await this.#native.close()
  }

  /** `await using sc = await connect(…)`: closes the client. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
