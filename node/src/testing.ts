/**
 * `stan-client/testing`: run a real `stan-broker` from your tests.
 *
 * ```ts
 * import { startBroker } from 'stan-client/testing'
 * const broker = await startBroker()            // a free port, cluster ID 'test-cluster'
 * const sc = await connect({ clusterId: broker.clusterId, clientId: 'me', url: broker.url })
 * // …
 * await sc.close()
 * await broker.stop()
 * ```
 *
 * The binary is `options.binary`, else `$STAN_BROKER_BIN`, else `target/debug/stan-broker` (or
 * `target/release/stan-broker`) found in the current directory or one of its parents.
 * Readiness is the broker's ready line, never a fixed delay: once it accepts clients,
 * `stan-broker` prints one line on standard output, {@link READY_PREFIX} followed by JSON with
 * its client and monitoring URLs ({@link ReadyPorts}). Its logs (standard error) are kept in
 * {@link Broker.output}.
 *
 * @module
 */

import { ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import * as path from 'node:path'
import { createInterface } from 'node:readline'

import { addon as native } from './addon'
import type { StanErrorCode } from './errors'

/** Options of {@link startBroker}. */
export interface BrokerOptions {
  /** Cluster ID (`-cid`); default `test-cluster`. */
  clusterId?: string
  /** Port (`-p`); default 0: the operating system picks a free one. */
  port?: number
  /** Path of the `stan-broker` binary (see the module docs for the default). */
  binary?: string
  /** More command-line flags (not `-p`, `-a`, `-m` or `-cid`). */
  args?: string[]
  /**
   * Monitoring endpoints (`-m`): `true` for a free port, or a port number; default off. The
   * URL is {@link Broker.monitoringUrl}.
   */
  monitoring?: boolean | number
  /** How long to wait for the ready line; default 30 000 ms. */
  startTimeoutMs?: number
}

/** What starts the broker's ready line on standard output; the rest is {@link ReadyPorts} as JSON. */
export const READY_PREFIX = 'STAN_BROKER_READY '

/** Where a running broker listens, as its ready line says. */
export interface ReadyPorts {
  /** Client URLs, e.g. `nats://127.0.0.1:4222`. */
  nats: string[]
  /** Monitoring base URLs, e.g. `http://127.0.0.1:8222`; empty when monitoring is off. */
  monitoring: string[]
  /** The cluster ID. */
  cluster_id: string
  /** The broker's process ID. */
  pid: number
}

/** The ports of a ready line, or `undefined` if `line` is not one. */
export function parseReadyLine(line: string): ReadyPorts | undefined {
  if (!line.startsWith(READY_PREFIX)) return undefined
  try {
    const ports = JSON.parse(line.slice(READY_PREFIX.length)) as Partial<ReadyPorts>
    if (!Array.isArray(ports.nats) || ports.nats.length === 0) return undefined
    return {
      nats: ports.nats,
      monitoring: ports.monitoring ?? [],
      cluster_id: ports.cluster_id ?? '',
      pid: ports.pid ?? 0,
    }
  } catch {
    return undefined
  }
}

/** Find the broker binary: explicit, `$STAN_BROKER_BIN`, or `target/{debug,release}` upwards. */
export function findBrokerBinary(explicit?: string): string {
  if (explicit) return explicit
  const fromEnv = process.env['STAN_BROKER_BIN']
  if (fromEnv) return fromEnv
  for (const start of [process.cwd(), __dirname]) {
    let dir = path.resolve(start)
    for (;;) {
      for (const profile of ['debug', 'release']) {
        const candidate = path.join(dir, 'target', profile, 'stan-broker')
        if (existsSync(candidate)) return candidate
      }
      const parent = path.dirname(dir)
      if (parent === dir) break
      dir = parent
    }
  }
  throw new Error(
    'stan-broker binary not found: build it (cargo build -p stan-broker) or set STAN_BROKER_BIN',
  )
}

/** A running `stan-broker` process. */
export class Broker implements AsyncDisposable {
  /** The client URL, e.g. `nats://127.0.0.1:41234`. */
  readonly url: string
  /** The port it listens on. */
  readonly port: number
  /** Its cluster ID. */
  readonly clusterId: string
  /** The monitoring base URL (e.g. `http://127.0.0.1:8222`) when monitoring is on. */
  readonly monitoringUrl: string | undefined
  /** Everything its ready line said. */
  readonly ports: ReadyPorts
  readonly #child: ChildProcess
  readonly #exited: Promise<void>
  readonly #output: string[]

  /** @internal */
  constructor(
    child: ChildProcess,
    ports: ReadyPorts,
    clusterId: string,
    exited: Promise<void>,
    output: string[],
  ) {
    this.#child = child
    this.ports = ports
    this.url = ports.nats[0]!
    this.port = Number(new URL(this.url).port)
    this.monitoringUrl = ports.monitoring[0]
    this.clusterId = clusterId
    this.#exited = exited
    this.#output = output
  }

  /** The process ID. */
  get pid(): number | undefined {
    return this.#child.pid
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** The broker's log lines so far (its standard error), for diagnostics. */
  get output(): readonly string[] {
    return this.#output
  }

  /** Freeze the broker (SIGSTOP): it stops answering, as a hung server would. */
  pause(): void {
    this.#child.kill('SIGSTOP')
  }

  /** Let a paused broker run again (SIGCONT). */
  resume(): void {
    this.#child.kill('SIGCONT')
  }

  /** Stop the broker (SIGTERM; SIGKILL if it is still running after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return this.#exited
    this.#child.kill('SIGCONT')
    this.#child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#child.kill('SIGKILL')
        resolve()
      }, timeoutMs)
    })
    await Promise.race([this.#exited, killed])
    clearTimeout(timer)
    await this.#exited
  }

  /**
   * Stop this broker and start a new one with the same cluster ID on the same port (and the
   * same monitoring port, if monitoring is on).
   */
  async restart(options: Omit<BrokerOptions, 'port' | 'clusterId'> = {}): Promise<Broker> {
    await this.stop()
    const monitoring =
      this.monitoringUrl !== undefined ? Number(new URL(this.monitoringUrl).port) : options.monitoring
    return startBroker({ ...options, monitoring, clusterId: this.clusterId, port: this.port })
  }

  /** `await using broker = await startBroker()`: stops it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/** Start a `stan-broker` and resolve once it accepts clients. */
export function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const binary = findBrokerBinary(options.binary)
  const clusterId = options.clusterId ?? 'test-cluster'
  const args = [
    '-p',
    String(options.port ?? 0),
    '-a',
    '127.0.0.1',
    '-cid',
    clusterId,
    ...monitoringArgs(options.monitoring),
    ...(options.args ?? []),
  ]
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
  const timeoutMs = options.startTimeoutMs ?? 30_000
  return new Promise<Broker>((resolve, reject) => {
    let settled = false
    const fail = (why: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`stan-broker (${binary} ${args.join(' ')}): ${why}\n${output.join('\n')}`))
    }
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs)
    child.once('error', (err) => fail(err.message))
    child.once('exit', (code, signal) => fail(`exited before it was ready (${signal ?? code})`))
    // Both streams are read for as long as the broker runs, so it never blocks on a full pipe.
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const ports = settled ? undefined : parseReadyLine(line)
        if (!ports) {
          output.push(line)
          return
        }
        settled = true
        clearTimeout(timer)
        resolve(new Broker(child, ports, clusterId, exited, output))
      })
    }
    if (child.stderr) createInterface({ input: child.stderr }).on('line', (line) => output.push(line))
  })
}

function monitoringArgs(monitoring: boolean | number | undefined): string[] {
  if (monitoring === undefined || monitoring === false) return []
  return ['-m', String(monitoring === true ? 0 : monitoring)]
}

/**
 * The native test exports. They exist only in an addon built with the cargo feature
 * `test-hooks` (the package's test build: `npm run build`, node/ci.sh); the release addon that
 * `npm install` builds has none of them, and the helpers below then throw.
 */
interface NativeTestHooks {
  errorKindCodes(): string[]
  throwErrorForCode(code: string, message: string): void
  rejectErrorForCode(code: string, message: string): Promise<unknown>
  panicAsyncForTest(message: string): Promise<unknown>
  panicSyncForTest(message: string): void
}

function testHook<K extends keyof NativeTestHooks>(name: K): NativeTestHooks[K] {
  const hook: unknown = (native as unknown as Partial<NativeTestHooks>)[name]
  if (typeof hook !== 'function') {
    throw new Error(
      `stan-client/testing: ${name} needs the addon's test hooks; build it with the cargo ` +
        'feature test-hooks (npm run build:native)',
    )
  }
  return hook as NativeTestHooks[K]
}

/**
 * Test helper (test-hooks addon only): the code of every core error kind (the core's
 * `ErrorKind::ALL`), to check that each maps to a distinct {@link StanErrorCode}.
 */
export function errorKindCodes(): string[] {
  return testHook('errorKindCodes')()
}

/**
 * Test helper (test-hooks addon only): the error thrown (synchronously) for a core error of kind
 * `code`, with `message` and a two-level cause chain.
 */
export function errorForCode(code: StanErrorCode | string, message: string): unknown {
  const throwErrorForCode = testHook('throwErrorForCode')
  try {
    throwErrorForCode(code, message)
  } catch (err) {
    return err
  }
  throw new Error('throwErrorForCode did not throw')
}

/**
 * Test helper (test-hooks addon only): the rejection of an asynchronous call failing with a core
 * error of kind `code`.
 */
export async function rejectionForCode(code: StanErrorCode | string, message: string): Promise<unknown> {
  const rejectErrorForCode = testHook('rejectErrorForCode')
  try {
    await rejectErrorForCode(code, message)
  } catch (err) {
    return err
  }
  throw new Error('rejectErrorForCode did not reject')
}

/** Test helper (test-hooks addon only): a promise whose native future panics (rejects with code `PANIC`). */
export async function panicAsync(message: string): Promise<void> {
  await testHook('panicAsyncForTest')(message)
}

/** Test helper (test-hooks addon only): a native call that panics (throws with code `PANIC`). */
export function panicSync(message: string): void {
  testHook('panicSyncForTest')(message)
}
