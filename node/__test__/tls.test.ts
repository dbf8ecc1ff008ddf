import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { isStanError, TlsOptions } from 'stan-client'
import { Broker, startBroker } from 'stan-client/testing'
import { connectTo, unique, within } from './helpers'

// The repository's test certificates (found upwards from the compiled test).
function findCerts(dir: string): string {
  const here = path.join(dir, 'test-certs')
  if (fs.existsSync(here)) return here
  const up = path.dirname(dir)
  if (up === dir) throw new Error('test-certs/ not found above ' + __dirname)
  return findCerts(up)
}
const certs = findCerts(__dirname)
const cert = (name: string): string => path.join(certs, name)
const serverTls = ['--tlscert', cert('server.pem'), '--tlskey', cert('server-key.pem')]

async function roundTrip(broker: Broker, tls: TlsOptions): Promise<void> {
  const sc = await connectTo(broker, { tls })
  try {
    const ch = unique('ch')
    const sub = await sc.subscribe(ch)
    await sc.publish(ch, 'over tls')
    const it = sub[Symbol.asyncIterator]()
    const m = await within('message', it.next())
    assert.equal(m.done, false)
    assert.equal(Buffer.from(m.value.data).toString(), 'over tls')
  } finally {
    await sc.close()
  }
}

async function refused(broker: Broker, tls?: TlsOptions): Promise<void> {
  await assert.rejects(
    within('refusal', connectTo(broker, tls ? { tls } : {})),
    (e: unknown) => isStanError(e, 'TRANSPORT'),
  )
}

test('TLS: publish and consume with the test CA trusted; other CAs and no options refused', async () => {
  await using broker = await startBroker({ args: serverTls })
  await roundTrip(broker, { rootCertificates: [cert('ca.pem')] })
  await roundTrip(broker, { requireTls: true, rootCertificates: [cert('ca.pem')] })
  await refused(broker, { rootCertificates: [cert('other-ca.pem')] })
  await refused(broker)
})

test('TLS with client verification: our client certificate accepted, others refused', async () => {
  await using broker = await startBroker({
    args: [...serverTls, '--tlsverify', '--tlscacert', cert('ca.pem')],
  })
  const ca = [cert('ca.pem')]
  await roundTrip(broker, { rootCertificates: ca, clientCertificate: cert('client.pem'), clientKey: cert('client-key.pem') })
  await refused(broker, { rootCertificates: ca })
  await refused(broker, {
    rootCertificates: ca,
    clientCertificate: cert('other-client.pem'),
    clientKey: cert('other-client-key.pem'),
  })
})

test('TLS: a missing certificate file is a clear error', async () => {
  await using broker = await startBroker({ args: serverTls })
  await assert.rejects(
    connectTo(broker, { tls: { rootCertificates: [cert('no-such-ca.pem')] } }),
    (e: unknown) => e instanceof Error && /no-such-ca\.pem/.test(e.message),
  )
})
