import { test } from 'node:test'
import assert from 'node:assert/strict'

import { parseReadyLine, READY_PREFIX, startBroker } from 'stan-client/testing'
import { within } from './helpers'

/** The `cluster_id` that `/streaming/serverz` reports. */
async function serverzClusterId(monitoringUrl: string): Promise<unknown> {
  const r = await within('serverz', fetch(`${monitoringUrl}/streaming/serverz`))
  assert.equal(r.status, 200)
  return ((await r.json()) as { cluster_id?: unknown }).cluster_id
}

test('ready line: parsed, not one, or without a client URL', () => {
  const line = `${READY_PREFIX}{"nats":["nats://127.0.0.1:4222"],"monitoring":[],"cluster_id":"c","pid":7}`
  assert.deepEqual(parseReadyLine(line), {
    nats: ['nats://127.0.0.1:4222'],
    monitoring: [],
    cluster_id: 'c',
    pid: 7,
  })
  assert.equal(parseReadyLine('Server is ready'), undefined)
  assert.equal(parseReadyLine(`${READY_PREFIX}{not json`), undefined)
  assert.equal(parseReadyLine(`${READY_PREFIX}{"nats":[]}`), undefined)
})

test('startBroker: URLs from the ready line; monitoring kept on the same port across a restart', async () => {
  let broker = await startBroker({ clusterId: 'node-mon', monitoring: true })
  try {
    assert.equal(broker.url, `nats://127.0.0.1:${broker.port}`)
    assert.equal(broker.ports.pid, broker.pid)
    const monitoringUrl = broker.monitoringUrl
    assert.ok(monitoringUrl !== undefined, 'monitoring is on')
    assert.match(monitoringUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(await serverzClusterId(monitoringUrl), 'node-mon')
    assert.ok(!broker.output.some((l) => l.startsWith(READY_PREFIX)), 'the ready line is not a log line')

    const port = broker.port
    broker = await broker.restart()
    assert.equal(broker.port, port)
    assert.equal(broker.monitoringUrl, monitoringUrl)
    assert.equal(await serverzClusterId(monitoringUrl), 'node-mon')
  } finally {
    await broker.stop()
  }
})

test('startBroker without monitoring: no monitoring URL', async () => {
  await using broker = await startBroker()
  assert.equal(broker.monitoringUrl, undefined)
  assert.deepEqual(broker.ports.monitoring, [])
})
