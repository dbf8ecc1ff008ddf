import { after, before } from 'node:test'
import { randomBytes } from 'node:crypto'

import { connect, Client, ConnectOptions, ClientEvent, ClientEventType, ClientEventOf } from 'stan-client'
import { Broker, startBroker } from 'stan-client/testing'

/** A unique name (client IDs, channels, durables) so tests never share state. */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`
}

/** Start one broker for the test file (before) and stop it (after). */
export function sharedBroker(): () => Broker {
  let broker: Broker | undefined
  before(async () => {
    broker = await startBroker()
  })
  after(async () => {
    await broker?.stop()
  })
  return () => {
    if (!broker) throw new Error('broker not started')
    return broker
  }
}

/** Connect a new client with a unique ID to `broker`. */
export function connectTo(broker: Broker, extra: Partial<ConnectOptions> = {}): Promise<Client> {
  return connect({ clusterId: broker.clusterId, clientId: unique('c'), url: broker.url, ...extra })
}

/** Reject if `p` does not settle within `ms` (a guard around awaits, not a synchronisation). */
export async function within<T>(what: string, p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolve with the next event of `type` (registered with `once`, so events are not missed). */
export function nextEvent<K extends ClientEventType>(sc: Client, type: K): Promise<ClientEventOf<K>> {
  return new Promise((resolve) => {
    sc.once(type, resolve)
  })
}

/** Collect every event (for assertions about what did not happen). */
export function recordEvents(sc: Client): ClientEvent[] {
  const seen: ClientEvent[] = []
  sc.on('event', (ev) => seen.push(ev))
  return seen
}
