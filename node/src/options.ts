/**
 * Option types. Absent fields mean "the core default" (the `stan.go` values); this package
 * never repeats a default. Durations are milliseconds (`…Ms`), times are `Date`s or
 * milliseconds since the Unix epoch.
 *
 * @module
 */

import type { NativeConnectOptions, NativeSubscribeOptions } from './native'
import { invalidArgument } from './errors'

/** TLS settings for the NATS connection. */
export interface TlsOptions {
  /** Require TLS even when the server does not ask for it. */
  requireTls?: boolean
  /** PEM files with extra root certificates to trust. */
  rootCertificates?: string[]
  /** PEM client certificate file, for servers that verify clients (with `clientKey`). */
  clientCertificate?: string
  /** PEM client key file (with `clientCertificate`). */
  clientKey?: string
}

/**
 * Options of {@link connect}.
 *
 * Core defaults: URL `nats://127.0.0.1:4222`, connect wait 2 s, pub-ack wait 30 s, 16384
 * publishes awaiting acks, a ping every 5 s with 88 allowed misses, discover prefix
 * `_STAN.discover`, auto-resume on.
 */
export interface ConnectOptions {
  /** Cluster ID of the streaming server (required). */
  clusterId: string
  /** Client ID (required; letters, digits, `-` and `_`). */
  clientId: string
  /** NATS server URL, or several for a cluster. */
  url?: string | string[]
  /** NATS user name (with `password`). */
  user?: string
  /** NATS password. */
  password?: string
  /** NATS token. */
  token?: string
  /** TLS settings for the NATS connection. */
  tls?: TlsOptions
  /** How long to wait for the connect, subscribe, unsubscribe and close replies. */
  connectWaitMs?: number
  /** How long to wait for a publish to be acknowledged. */
  pubAckWaitMs?: number
  /** Publishes awaiting an ack before further publishes wait. */
  maxPubAcksInFlight?: number
  /** Interval between pings to the server (at least 1000, whole seconds). */
  pingIntervalMs?: number
  /** Unanswered pings before the session counts as lost (at least 2). */
  pingMaxOut?: number
  /** Discover prefix of the server. */
  discoverPrefix?: string
  /** Re-register and re-create subscriptions when the session is lost (on by default). */
  autoResume?: boolean
  /**
   * Test only: ping every this many milliseconds (below the 1 s minimum). Works only with an
   * addon built with the cargo feature `test-hooks` (the package's test build, `npm run build`);
   * the release addon that `npm install` builds rejects it with `INVALID_ARGUMENT`.
   */
  pingIntervalMsForTests?: number
}

/**
 * Where a new subscription starts (ignored when a durable resumes or a queue member joins an
 * existing group):
 * - `'newOnly'`: only messages published after subscribing (the default);
 * - `'lastReceived'`: the last stored message, then new ones;
 * - `'first'`: everything the channel still stores ("deliver all available");
 * - `{ sequence }`: from this sequence;
 * - `{ time }`: the first message stored at or after this time (`Date` or epoch ms);
 * - `{ timeDeltaMs }`: the first message not older than this.
 */
export type StartAt =
  | 'newOnly'
  | 'lastReceived'
  | 'first'
  | { sequence: number | bigint }
  | { time: Date | number }
  | { timeDeltaMs: number }

/**
 * Options of {@link Client.subscribe}.
 *
 * Core defaults: not durable, no queue group, `'newOnly'`, max in flight 1024, ack wait 30 s,
 * automatic acks.
 */
export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queueGroup?: string
  /** Durable name: the server remembers the position across closes and reconnects. */
  durableName?: string
  /** Where a new subscription starts. */
  startAt?: StartAt
  /** Unacknowledged messages the server sends before waiting for acks. */
  maxInFlight?: number
  /** How long the server waits for an ack before redelivering (whole seconds, ≥ 1000). */
  ackWaitMs?: number
  /**
   * Acknowledge each message with {@link Message.ack}. Otherwise a message is acked when the
   * next one is requested.
   */
  manualAcks?: boolean
  /**
   * The most messages one call into the native layer takes (default 256): messages already
   * received are handed over in batches of up to this many. Smaller batches cost more calls;
   * they do not change which messages are acknowledged when.
   */
  receiveBatchSize?: number
}

/** @internal The receive batch size of `o` (validated). */
export function receiveBatchSize(o: SubscribeOptions = {}): number {
  const n = o?.receiveBatchSize
  if (n === undefined) return 256
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65536) {
    throw invalidArgument(`receiveBatchSize must be an integer from 1 to 65536, got ${String(n)}`)
  }
  return n
}

/** @internal */
export function toNativeConnectOptions(o: ConnectOptions): NativeConnectOptions {
  if (o === null || typeof o !== 'object') throw invalidArgument('connect options must be an object')
  const urls = o.url === undefined ? undefined : Array.isArray(o.url) ? o.url : [o.url]
  return {
    clusterId: o.clusterId,
    clientId: o.clientId,
    natsUrls: urls,
    user: o.user,
    password: o.password,
    token: o.token,
    tls: o.tls,
    connectWaitMs: o.connectWaitMs,
    pubAckWaitMs: o.pubAckWaitMs,
    maxPubAcksInFlight: o.maxPubAcksInFlight,
    pingIntervalMs: o.pingIntervalMs,
    pingMaxOut: o.pingMaxOut,
    discoverPrefix: o.discoverPrefix,
    autoResume: o.autoResume,
    pingIntervalMsForTests: o.pingIntervalMsForTests,
  }
}

/** @internal */
export function toNativeSubscribeOptions(o: SubscribeOptions = {}): NativeSubscribeOptions {
  if (o === null || typeof o !== 'object') throw invalidArgument('subscribe options must be an object')
  const out: NativeSubscribeOptions = {
    queueGroup: o.queueGroup,
    durableName: o.durableName,
    maxInFlight: o.maxInFlight,
    ackWaitMs: o.ackWaitMs,
    manualAcks: o.manualAcks,
  }
  const s = o.startAt
  if (s === undefined) {
    // core default
  } else if (typeof s === 'string') {
    out.startAt = s
  } else if (s !== null && typeof s === 'object' && 'sequence' in s) {
    const seq = s.sequence
    if (typeof seq === 'bigint') {
      out.startSequence = seq
    } else if (typeof seq === 'number' && Number.isSafeInteger(seq)) {
      out.startSequence = BigInt(seq)
    } else {
      throw invalidArgument(`startAt.sequence must be an integer, got ${String(seq)}`)
    }
    out.startAt = 'sequence'
  } else if (s !== null && typeof s === 'object' && 'time' in s) {
    const t = s.time instanceof Date ? s.time.getTime() : s.time
    if (typeof t !== 'number' || Number.isNaN(t)) {
      throw invalidArgument('startAt.time must be a valid Date or milliseconds since the epoch')
    }
    out.startAt = 'time'
    out.startTimeMs = t
  } else if (s !== null && typeof s === 'object' && 'timeDeltaMs' in s) {
    out.startAt = 'timeDelta'
    out.startTimeDeltaMs = s.timeDeltaMs
  } else {
    throw invalidArgument(`unknown startAt ${JSON.stringify(s)}`)
  }
  return out
}
