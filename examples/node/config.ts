/**
 * Shared settings of the example programs.
 *
 * Every example reads the NATS URL from its first argument, else from `STAN_NATS_URL`, else
 * uses `nats://127.0.0.1:4222`; the cluster ID comes from `STAN_CLUSTER_ID` (default
 * `test-cluster`). Start a server first (`stan-broker` or the official `nats-streaming-server`).
 */
import type { ConnectOptions } from 'stan-client'

/** Connect options for `clientId` with the URL and cluster ID above. */
export function options(clientId: string): ConnectOptions {
  return {
    clusterId: process.env['STAN_CLUSTER_ID'] ?? 'test-cluster',
    clientId,
    url: process.argv[2] ?? process.env['STAN_NATS_URL'] ?? 'nats://127.0.0.1:4222',
  }
}
