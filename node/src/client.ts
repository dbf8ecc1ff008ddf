/** @module */

import { EventEmitter } from 'node:events'

import { addon } from './addon'
import type * as native from './native'
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
  receiveBatchSize,
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

/** Publishes gathered in one tick: `runs[k]` consecutive publishes on `subjects[k]`. */
interface Outbox {
  subjects: string[]
  runs: number[]
  payloads: Buffer[]
  /** resolve, reject of each publish's promise, in call order. */
  settle: ((value: unknown) => void)[]
}

/** The publishes of one `publishBatch` call that await their outcome. */
interface InFlight {
  settle: ((value: unknown) => void)[]
  /** Guids of the started publishes, in order. */
  guids: string[]
  /** Place among the started publishes of publish i (null: the same as i). */
  pos: ((i: number) => number) | null
  remaining: number
}

/**
 * Settles publish promises from the native layer's ack bursts. The native layer keeps its
 * handler alive while publishes are pending, so it must not hold the client: a client that is
 * no longer referenced can then be collected.
 */
class AckRouter {
  /** Publishes started and not settled yet, by the token of their `publishBatch` call. */
  readonly inflight = new Map<number, InFlight>()

  /** Every outcome that arrived since the last call (one call per burst, not per ack). */
  readonly onAcks = (burst: native.NativeAckBurst): void => {
    const { okTokens, ok, failedTokens, failed, errors } = burst
    let p: InFlight | undefined
    let token = -1
    for (let k = 0; k < ok.length; k++) {
      if (okTokens[k] !== token) {
        token = okTokens[k]!
        p = this.inflight.get(token)
      }
      if (p === undefined) continue
      const i = ok[k]!
      p.settle[2 * i]!(p.guids[p.pos === null ? i : p.pos(i)])
      if (--p.remaining === 0) this.inflight.delete(token)
    }
    for (let k = 0; k < failed.length; k++) {
      const f = this.inflight.get(failedTokens[k]!)
      if (f === undefined) continue
      f.settle[2 * failed[k]! + 1]!(errors[k])
      if (--f.remaining === 0) this.inflight.delete(failedTokens[k]!)
    }
  }
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
  return new Client(await addon.connect(nativeOptions))
}

/**
 * A connection to a NATS Streaming server; create it with {@link connect}.
 *
 * Close it with {@link Client.close} (or `await using`): afterwards nothing of the client
 * keeps the process alive.
 *
 * The connection stays open while the client or any of its subscriptions or messages is
 * referenced. A client that is garbage collected without `close()` (and with no subscription
 * or message left) closes itself in the background, as `close()` does: publishes still
 * awaiting their acks reject with `CONNECTION_CLOSED`. Await them, or close the client, when
 * their outcome matters.
 */
export class Client implements AsyncDisposable {
  readonly #native: native.NativeClient
  /** Events since connect, pulled only once a listener is added with `on()`/`once()`. */
  readonly #pending: native.NativeEvents
  readonly #emitter = new EventEmitter()
  #pumping = false
  /** The publishes of this tick, started together by `#flush`. */
  #outbox: Outbox | null = null
  /** Publishes started and not settled yet (it holds nothing of the client, see `AckRouter`). */
  readonly #acks = new AckRouter()
  #nextToken = 0
  /** Open subscriptions: closing the client stops handing out their buffered messages. */
  readonly #subs = new Set<Subscription>()
  readonly #forget = (sub: Subscription): void => {
    this.#subs.delete(sub)
  }

  /** @internal */
  constructor(n: native.NativeClient) {
    this.#native = n
    this.#pending = n.events()
    n.setAckHandler(this.#acks.onAcks)
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
   * Publishes go on the wire in call order. The publishes of one tick (for example a loop
   * of `publish` calls before an `await`) are started with one call into the native layer,
   * and their promises settle in bursts as the acks arrive. The payloads are copied (once)
   * when the tick's publishes start, right after the current synchronous code: as with
   * `stream.write()`, do not change a buffer passed to `publish` before the next `await`
   * (after it, the buffer is yours again).
   *
   * Rejects with `INVALID_ARGUMENT` for a bad channel name, `PUBLISH_ACK_TIMEOUT` (the
   * message may still have been stored), `SERVER_REJECTED`, `CONNECTION_LOST` (outcome
   * unknown, never retried) or `CONNECTION_CLOSED`.
   */
  publish(subject: string, data: Payload): Promise<string> {
    let payload: Buffer
    try {
      if (typeof subject !== 'string') throw invalidArgument('subject must be a string')
      payload = toBuffer(data)
    } catch (err) {
      return Promise.reject(err)
    }
    let out = this.#outbox
    if (out === null) {
      out = this.#outbox = { subjects: [], runs: [], payloads: [], settle: [] }
      queueMicrotask(this.#flush)
    }
    const last = out.subjects.length - 1
    if (last >= 0 && out.subjects[last] === subject) out.runs[last]!++
    else {
      out.subjects.push(subject)
      out.runs.push(1)
    }
    out.payloads.push(payload)
    const settle = out.settle
    return new Promise<string>((resolve, reject) => {
      settle.push(resolve as (value: unknown) => void, reject)
    })
  }

  /** Start the publishes of this tick with one native call; their acks arrive in bursts. */
  readonly #flush = (): void => {
    const out = this.#outbox
    if (out === null) return
    this.#outbox = null
    const { subjects, runs, payloads, settle } = out
    const token = this.#nextToken
    this.#nextToken = (token + 1) >>> 0
    let started: native.NativePublishStarted
    try {
      started = this.#native.publishBatch(subjects, runs, payloads, token)
    } catch (err) {
      for (let i = 1; i < settle.length; i += 2) settle[i]!(err)
      return
    }
    const guids = started.guids === '' ? [] : started.guids.split(',')
    // The guid of publish i is guids[pos(i)]: its place among the started ones.
    let pos: ((i: number) => number) | null = null
    if (started.invalid.length > 0) {
      const subjectOf = runs.flatMap((r, k) => Array<string>(r).fill(subjects[k]!))
      const place = new Int32Array(payloads.length).fill(-1)
      const invalid = new Set(started.invalid)
      let n = 0
      for (let i = 0; i < payloads.length; i++) {
        if (invalid.has(i)) {
          settle[2 * i + 1]!(invalidArgument(`invalid channel name ${JSON.stringify(subjectOf[i])}`))
        } else place[i] = n++
      }
      pos = (i) => place[i]!
    }
    if (guids.length > 0) this.#acks.inflight.set(token, { settle, guids, pos, remaining: guids.length })
  }

  /**
   * Subscribe to a channel.
   *
   * Rejects with `INVALID_ARGUMENT` for bad options, `SERVER_REJECTED` (e.g.
   * `stan: duplicate durable registration`), `REQUEST_TIMEOUT` or a connection error.
   */
  async subscribe(subject: string, options: SubscribeOptions = {}): Promise<Subscription> {
    const nativeOptions = toNativeSubscribeOptions(options)
    const batchSize = receiveBatchSize(options)
    const sub = new Subscription(await this.#native.subscribe(subject, nativeOptions), batchSize, this.#forget)
    this.#subs.add(sub)
    return sub
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
   * subscription's iteration ends (durables are kept; in auto-ack mode the messages handed
   * out are acknowledged, messages received but not handed out yet are not handed out and
   * stay unacknowledged), the client unregisters from the server. Closing a closed client
   * does nothing.
   */
  async close(): Promise<void> {
    this.#flush()
    for (const sub of this.#subs) sub.stopLocal()
    this.#subs.clear()
    await this.#native.close()
  }

  /** `await using sc = await connect(…)`: closes the client. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
