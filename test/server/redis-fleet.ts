// Relays sharing a real redis-server, for the Redis suites: each test's redis-servers and relays
// are stopped after it (in reverse order), and the relays poll a fake upstream every 0.2 s.
import { afterEach } from 'vitest'
import { createFlagServer, type FlagServer, type FlagServerOptions } from '@holdfast/server'
import { startRedisServer, type RedisServer } from '../support/redisServer'
import { recordingLogger, waitFor } from './helpers'
import type { FakeUpstream } from './relay-fakes'

/** The relays' lease TTL in these suites. */
export const TTL_MS = 1500

/** A relay under test and how many requests it sent to the upstream. */
export interface Relay {
  server: FlagServer
  /** Requests this relay sent to the upstream. */
  polls: () => number
  /** Times its role (leader, follower, solo) changed, as its log says; 0 when the test gave its own `logger`. */
  roleChanges: () => number
}

/** Registers the after-each cleanup and returns the fleet helpers of one test file. */
export function useRedisFleet() {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  async function redisServer(): Promise<RedisServer> {
    const server = await startRedisServer()
    cleanups.push(() => server.stop())
    return server
  }

  /** A relay in this process on --flags-url with --redis, polling every 0.2 s; closed after the test. */
  async function relay(redis: RedisServer, upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<Relay> {
    let polls = 0
    // Counting per relay: the fake upstream cannot tell identical relays apart.
    const counting: typeof fetch = (input, init) => {
      polls++
      return fetch(input, init)
    }
    const logger = recordingLogger()
    const server = await createFlagServer({
      flagsUrl: `${upstream.url}/flags.json`,
      pollIntervalSeconds: 0.2,
      upstreamTimeoutMs: 2000,
      redis: { url: redis.url, leaseTtlMs: TTL_MS, commandTimeoutMs: 300 },
      port: 0,
      logger,
      fetch: counting,
      // Load shedding answers 503 when the event loop lags; on a loaded test machine it would, and
      // it is not what these tests are about.
      maxEventLoopDelayMs: 0,
      ...options,
    } as FlagServerOptions)
    cleanups.push(() => server.close())
    return { server, polls: () => polls, roleChanges: () => logger.lines.filter((line) => /^\[holdfast-server\] lease \(/.test(line)).length }
  }

  return { cleanups, redisServer, relay }
}

/** The relay's `GET /holdfast/v1/status`. */
export async function status(server: FlagServer | string): Promise<Record<string, any>> {
  const url = typeof server === 'string' ? server : server.url
  return (await (await fetch(`${url}/holdfast/v1/status`)).json()) as Record<string, any>
}

/** What the relay serves to user `u1`: the status, the values by key and `metadata.holdfast`. */
export async function values(server: FlagServer | string): Promise<{ status: number; flags: Record<string, unknown>; holdfast?: Record<string, unknown> }> {
  const url = typeof server === 'string' ? server : server.url
  const response = await fetch(`${url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: 'u1' } }) })
  const body = (await response.json()) as { flags?: Array<{ key: string; value: unknown }>; metadata?: { holdfast?: Record<string, unknown> } }
  return { status: response.status, flags: Object.fromEntries((body.flags ?? []).map((f) => [f.key, f.value])), holdfast: body.metadata?.holdfast }
}

/** The relay's role in the fleet (`leader`, `follower`), as its status says. */
export const role = async (server: FlagServer | string) => (await status(server)).redis?.role as string | undefined

/** Waits until exactly one of the relays leads and the others follow; returns [leader, ...followers]. */
export async function settled(relays: Relay[]): Promise<Relay[]> {
  let roles: Array<string | undefined> = []
  await waitFor(async () => {
    roles = await Promise.all(relays.map((r) => role(r.server)))
    return roles.filter((r) => r === 'leader').length === 1 && roles.every((r) => r === 'leader' || r === 'follower')
  }, 20_000)
  const leader = relays[roles.indexOf('leader')]
  return [leader, ...relays.filter((r) => r !== leader)]
}
