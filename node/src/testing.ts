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
 * Readiness is the broker's own startup line (`Listening for client connections on <url>`),
 * never a fixed delay.
 *
 * @module
 */

import { ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import * as path from 'node:path'
import { createInterface } from 'node:readline'

import * as native from './native'
import type { StanErrorCode } from './errors'

/** Options of {@link startBroker}. */
export interface BrokerOptions {
  /** Cluster ID (`-cid`); default `test-cluster`. */
  clusterId?: string
  /** Port (`-p`); default 0: the operating system picks a free one. */
  port?: number
  /** Path of the `stan-broker` binary (see the module docs for the default). */
  binary?: string
  /** More command-line flags. */
  args?: string[]
  /** How long to wait for the startup line; default 30 000 ms. */
  startTimeoutMs?: number
}

const LISTEN_LINE = /Listening for client connections on (\S+)/

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
  readonly #child: ChildProcess
  readonly #exited: Promise<void>
  readonly #output: string[]

  /** @internal */
  constructor(
    child: ChildProcess,
    url: string,
    clusterId: string,
    exited: Promise<void>,
    output: string[],
  ) {
    this.#child = child
    this.url = url
    this.port = Number(new URL(url).port)
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

  /** The broker's log lines so far (its stderr), for diagnostics. */
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

  /** Stop this broker and start a new one with the same cluster ID on the same port. */
  async restart(options: Omit<BrokerOptions, 'port' | 'clusterId'> = {}): Promise<Broker> {
    await this.stop()
    return startBroker({ ...options, clusterId: this.clusterId, port: this.port })
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
    const onLine = (line: string): void => {
      output.push(line)
      const m = LISTEN_LINE.exec(line)
      if (m && !settled) {
        settled = true
        clearTimeout(timer)
        resolve(new Broker(child, m[1]!, clusterId, exited, output))
      }
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', onLine)
    }
  })
}

/**
 * Test helper: the code of every core error kind (the core's `ErrorKind::ALL`), to check that
 * each maps to a distinct {@link StanErrorCode}.
 */
export function errorKindCodes(): string[] {
  return native.errorKindCodes()
}

/**
 * Test helper: the error thrown (synchronously) for a core error of kind `code`, with
 * `message` and a two-level cause chain.
 */
export function errorForCode(code: StanErrorCode | string, message: string): unknown {
  try {
    native.throwErrorForCode(code, message)
  } catch (err) {
    return err
  }
  throw new Error('throwErrorForCode did not throw')
}

/** Test helper: the rejection of an asynchronous call failing with a core error of kind `code`. */
export async function rejectionForCode(code: StanErrorCode | string, message: string): Promise<unknown> {
  try {
    await native.rejectErrorForCode(code, message)
  } catch (err) {
    return err
  }
  throw new Error('rejectErrorForCode did not reject')
}

/** Test helper: a promise whose native future panics (rejects with code `PANIC`). */
export function panicAsync(message: string): Promise<void> {
  return native.panicAsyncForTest(message)
}

/** Test helper: a native call that panics (throws with code `PANIC`). */
export function panicSync(message: string): void {
  native.panicSyncForTest(message)
}
