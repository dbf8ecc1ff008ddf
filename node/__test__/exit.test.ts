import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import { startBroker } from 'stan-client/testing'
import { within } from './helpers'

/** Run `source` in a child Node process; resolve with its exit code and output. */
function runChild(source: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'stan-exit-'))
  const file = path.join(dir, 'child.js')
  writeFileSync(file, source)
  return new Promise((resolve) => {
    // Resolve 'stan-client' from this package, as a user's project would.
    const child = spawn(process.execPath, [file], {
      env: { ...process.env, ...env, NODE_PATH: path.resolve(__dirname, '..', '..', 'node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    child.stderr.on('data', (d) => (out += String(d)))
    child.on('exit', (code) => resolve({ code, out }))
  })
}

const PKG = JSON.stringify(path.resolve(__dirname, '..', '..'))

test('after close() the process exits by itself (no leaked handles)', async () => {
  await using broker = await startBroker()
  const source = `
    const { connect } = require(${PKG})
    ;(async () => {
      const sc = await connect({ clusterId: process.env.CID, clientId: 'exit-test', url: process.env.URL })
      sc.on('connectionLost', () => {})        // an event listener is pumping
      const events = sc.events()               // and an iterator is waiting
      const waiting = events.next()
      const sub = await sc.subscribe('exit-ch', { startAt: 'first' })
      const reading = (async () => { for await (const m of sub) console.log('got', m.data.toString()) })()
      await sc.publish('exit-ch', 'bye')
      await Promise.all(Array.from({ length: 50 }, (_, i) => sc.publish('exit-ch', 'n' + i)))
      await sc.close()
      await reading
      await waiting
      console.log('closed')
    })().catch((e) => { console.error(e); process.exitCode = 3 })
  `
  const { code, out } = await within(
    'the child to exit by itself',
    runChild(source, { CID: broker.clusterId, URL: broker.url }),
    20_000,
  )
  assert.equal(code, 0, out)
  assert.match(out, /got bye/)
  assert.match(out, /closed/)
})

test('a process that never closes its client still exits when its work is done', async () => {
  await using broker = await startBroker()
  const source = `
    const { connect } = require(${PKG})
    ;(async () => {
      const sc = await connect({ clusterId: process.env.CID, clientId: 'no-close', url: process.env.URL })
      await sc.publish('exit-ch', 'x')
      console.log('published')
    })().catch((e) => { console.error(e); process.exitCode = 3 })
  `
  const { code, out } = await within(
    'the child to exit by itself',
    runChild(source, { CID: broker.clusterId, URL: broker.url }),
    20_000,
  )
  assert.equal(code, 0, out)
  assert.match(out, /published/)
})
