/**
 * `stan-client`: a NATS Streaming (STAN) client for Node.js, over the stan-rs Rust core.
 *
 * ```ts
 * import { connect } from 'stan-client'
 *
 * const sc = await connect({ clusterId: 'test-cluster', clientId: 'me', url: 'nats://127.0.0.1:4222' })
 * const guid = await sc.publish('orders', Buffer.from('order #1'))
 * const sub = await sc.subscribe('orders', { durableName: 'audit', startAt: 'first', manualAcks: true })
 * for await (const msg of sub) {
 *   console.log(msg.sequence, msg.data.toString())
 *   await msg.ack()
 *   break // closes the subscription
 * }
 * await sc.close()
 * ```
 *
 * @module
 */

export { connect, Client } from './client'
export type { Payload, ClientEventListener } from './client'
export { Subscription } from './subscription'
export { Message } from './message'
export type { ConnectOptions, SubscribeOptions, StartAt, TlsOptions } from './options'
export type { ClientEvent, ClientEventType, ClientEventOf, ClientEvents, LostReason } from './events'
export { STAN_ERROR_CODES, isStanError, isTimeoutError } from './errors'
export type { StanError, StanErrorCode } from './errors'

/** The package's version (the same for every stan-rs crate and package). */
export const version: string = (require('../package.json') as { version: string }).version
