/**
 * Errors: every failure is a plain `Error` with a stable `code`.
 *
 * The codes are the core's `ErrorKind` codes (plus `PANIC` for a Rust panic caught at the
 * boundary). Match on `err.code`, never on the message: the message is for humans and carries
 * the cause chain as `Caused by: …` lines (the same chain is in `err.cause`).
 *
 * @example
 * ```ts
 * try {
 *   await sc.publish('orders', Buffer.from('x'))
 * } catch (err) {
 *   if (isStanError(err, 'PUBLISH_ACK_TIMEOUT')) {
 *     // the message may still have been stored
 *   } else {
 *     throw err
 *   }
 * }
 * ```
 * @module
 */

/** Every error code, in the core's declaration order, then `PANIC`. */
export const STAN_ERROR_CODES = [
  'CONNECT_TIMEOUT',
  'REQUEST_TIMEOUT',
  'PUBLISH_ACK_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_LOST',
  'SERVER_REJECTED',
  'INVALID_ARGUMENT',
  'INVALID_STATE',
  'NOT_SUPPORTED',
  'PROTOCOL',
  'TRANSPORT',
  'PANIC',
] as const

/**
 * A stable error code.
 *
 * - `CONNECT_TIMEOUT`: no streaming server answered the connect request (wrong cluster ID?).
 * - `REQUEST_TIMEOUT`: a subscribe, unsubscribe or close request got no answer in time.
 * - `PUBLISH_ACK_TIMEOUT`: no ack within `pubAckWaitMs` (the message may still be stored).
 * - `CONNECTION_CLOSED`: the client or subscription was closed by the application.
 * - `CONNECTION_LOST`: the streaming session was lost and is not (yet) resumed.
 * - `SERVER_REJECTED`: the server refused the request; the message is the server's text.
 * - `INVALID_ARGUMENT`: an argument or option is invalid (nothing was sent).
 * - `INVALID_STATE`: the operation does not fit the current state (e.g. `ack()` in auto-ack mode).
 * - `NOT_SUPPORTED`: the server lacks a feature the operation needs.
 * - `PROTOCOL`: the server sent something that could not be decoded.
 * - `TRANSPORT`: the NATS connection failed (I/O, TLS, authentication).
 * - `PANIC`: a bug in the native code, caught at the boundary (the process keeps running).
 */
export type StanErrorCode = (typeof STAN_ERROR_CODES)[number]

/** An `Error` raised by this package: it always has a {@link StanErrorCode} `code`. */
export interface StanError extends Error {
  /** The stable code to match on. */
  readonly code: StanErrorCode
}

const CODES: ReadonlySet<string> = new Set(STAN_ERROR_CODES)

/**
 * True when `err` is an error of this package (optionally: with this `code`).
 *
 * @param err - anything caught
 * @param code - when given, also require this code
 */
export function isStanError(err: unknown, code?: StanErrorCode): err is StanError {
  if (!(err instanceof Error)) return false
  const c = (err as { code?: unknown }).code
  if (typeof c !== 'string' || !CODES.has(c)) return false
  return code === undefined || c === code
}

/** True for the timeout codes (`CONNECT_TIMEOUT`, `REQUEST_TIMEOUT`, `PUBLISH_ACK_TIMEOUT`). */
export function isTimeoutError(err: unknown): err is StanError {
  return (
    isStanError(err, 'CONNECT_TIMEOUT') ||
    isStanError(err, 'REQUEST_TIMEOUT') ||
    isStanError(err, 'PUBLISH_ACK_TIMEOUT')
  )
}

/**
 * A `TypeError` with code `INVALID_ARGUMENT`, for a JavaScript value of the wrong type
 * (checked before anything reaches the native layer).
 *
 * @internal
 */
export function invalidArgument(message: string): StanError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' as const })
}
