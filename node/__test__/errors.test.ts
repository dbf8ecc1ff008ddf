import { test } from 'node:test'
import assert from 'node:assert/strict'

import { connect, isStanError, isTimeoutError, STAN_ERROR_CODES, StanErrorCode, version } from 'stan-client'
import {
  errorForCode,
  errorKindCodes,
  panicAsync,
  panicSync,
  rejectionForCode,
} from 'stan-client/testing'

test('every core ErrorKind maps to its own stable code (sync and async paths)', async () => {
  const kinds = errorKindCodes()
  assert.ok(kinds.length >= 11)
  assert.equal(new Set(kinds).size, kinds.length)
  // The TypeScript union knows every core code, and nothing else but PANIC.
  assert.deepEqual(
    [...STAN_ERROR_CODES].filter((c) => c !== 'PANIC'),
    kinds,
    'STAN_ERROR_CODES must list every core ErrorKind code, in order',
  )
  for (const code of kinds) {
    for (const err of [errorForCode(code, `msg ${code}`), await rejectionForCode(code, `msg ${code}`)]) {
      assert.ok(err instanceof Error, `${code}: an Error`)
      assert.ok(isStanError(err, code as StanErrorCode), `${code}: isStanError`)
      assert.equal(err.code, code)
      assert.equal(err.message, `msg ${code}\nCaused by: underlying cause\nCaused by: root cause`)
      const cause = err.cause as Error
      assert.equal(cause.message, 'underlying cause')
      assert.equal((cause.cause as Error).message, 'root cause')
    }
  }
  assert.equal(isTimeoutError(errorForCode('PUBLISH_ACK_TIMEOUT', 'x')), true)
  assert.equal(isTimeoutError(errorForCode('TRANSPORT', 'x')), false)
  assert.equal(isStanError(new Error('plain')), false)
})

test('version is the package version', () => {
  const pkg = require('stan-client/package.json') as { version: string }
  assert.match(version, /^\d+\.\d+\.\d+/)
  assert.equal(version, pkg.version)
})

test('an unknown code given to the helper is an INVALID_ARGUMENT error', () => {
  const err = errorForCode('NO_SUCH_CODE', 'x')
  assert.ok(isStanError(err, 'INVALID_ARGUMENT'))
})

test('a Rust panic rejects the promise (code PANIC) and the process keeps running', async () => {
  await assert.rejects(panicAsync('boom'), (err: unknown) => {
    assert.ok(isStanError(err, 'PANIC'))
    assert.match(err.message, /rust panic: boom/)
    return true
  })
  assert.throws(() => panicSync('bang'), (err: unknown) => isStanError(err, 'PANIC'))
  await panicAsync('') // and the runtime still works afterwards
})

test('invalid connect options reject with INVALID_ARGUMENT before any I/O', async () => {
  const base = { clusterId: 'test-cluster', url: 'nats://127.0.0.1:1' }
  await assert.rejects(connect({ ...base, clientId: 'has.dot' }), (e: unknown) =>
    isStanError(e, 'INVALID_ARGUMENT'),
  )
  await assert.rejects(connect({ ...base, clientId: 'ok', pubAckWaitMs: -5 }), (e: unknown) =>
    isStanError(e, 'INVALID_ARGUMENT'),
  )
  await assert.rejects(connect({ ...base, clientId: 'ok', pingMaxOut: 1.5 }), (e: unknown) =>
    isStanError(e, 'INVALID_ARGUMENT'),
  )
  await assert.rejects(connect({ ...base, clientId: 'ok', url: 'not a url::' }), (e: unknown) =>
    isStanError(e, 'INVALID_ARGUMENT'),
  )
})

test('no NATS server: TRANSPORT error with the cause in the message', async () => {
  const err = await connect({
    clusterId: 'test-cluster',
    clientId: 'nobody',
    url: 'nats://127.0.0.1:1',
    connectWaitMs: 500,
  }).then(
    () => assert.fail('connected to nothing'),
    (e: unknown) => e,
  )
  assert.ok(isStanError(err, 'TRANSPORT'), String(err))
})
