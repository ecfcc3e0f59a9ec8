import type { ServerLogger } from '../logger'
import { DEFAULT_LEASE_TTL_MS, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from './leaseKeeper'
import { createRedisStore } from './redisStore'
import type { SharedStore } from './sharedStore'
import { namespaceNameProblem, storeNamespace } from './storeNamespace'

/**
 * `redis` of `createFlagServer` (`--redis URL`): relays with the same source and
 * credentials share one store in Redis. A string is the URL with every other field at its default.
 */
export interface RedisRelayOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. Required. */
  url: string
  /** The polling relay's lease: renewed every third of it, taken over within it when the holder dies. Default 15,000 ms. */
  leaseTtlMs?: number
  /** How long one Redis command may take before it counts as failed. Default 500 ms. */
  commandTimeoutMs?: number
  /** TTL of what is stored, renewed on every successful poll. Default 7 days. */
  backupTtlMs?: number
  /**
   * `--redis-namespace NAME`: a name put in front of this relay's keys (`holdfast:NAME:<hash>:…`),
   * so relays of two environments whose source is written the same (and that send no credentials
   * there that differ) do not share. Only relays with the same name, source and credentials share.
   * 1 to 64 letters, digits, `.`, `_`, `-`. Default: none (the namespace is the hash alone, as in
   * releases before the option).
   */
  namespace?: string
}

/** Checks `redis`; throws an `Error` naming the problem. Undefined when not set. */
export function readRedisOptions(redis: string | RedisRelayOptions | undefined): Required<Pick<RedisRelayOptions, 'url' | 'leaseTtlMs'>> & RedisRelayOptions | undefined {
  if (redis === undefined) return undefined
  const options = typeof redis === 'string' ? { url: redis } : redis
  const fail = (message: string): never => {
    throw new Error(`[holdfast-server] invalid options: ${message}`)
  }
  if (typeof options.url !== 'string' || !/^rediss?:\/\/[^/]/i.test(options.url)) fail(`redis must be a redis:// or rediss:// URL, got "${String(options.url)}"`)
  const leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS
  if (!(Number.isFinite(leaseTtlMs) && leaseTtlMs >= MIN_LEASE_TTL_MS && leaseTtlMs <= MAX_LEASE_TTL_MS)) fail(`redis.leaseTtlMs must be from ${MIN_LEASE_TTL_MS} to ${MAX_LEASE_TTL_MS}, got ${leaseTtlMs}`)
  for (const name of ['commandTimeoutMs', 'backupTtlMs'] as const) {
    const value = options[name]
    if (value !== undefined && !(Number.isFinite(value) && value >= 1)) fail(`redis.${name} must be a positive number of milliseconds, got ${value}`)
  }
  // Not coerced: `namespace: null` (a JSON config's "none") read as String(null) put the relay in
  // a namespace named "null", apart from the unnamed fleet of its source, without a word.
  if (options.namespace !== undefined && typeof options.namespace !== 'string') {
    fail(`redis.namespace must be a string (1 to 64 letters, digits, ".", "_" or "-"), got ${options.namespace === null ? 'null' : Array.isArray(options.namespace) ? 'an array' : `a ${typeof options.namespace}`}`)
  }
  const problem = options.namespace === undefined ? undefined : namespaceNameProblem(options.namespace, 'redis.namespace')
  if (problem) fail(problem)
  return { ...options, leaseTtlMs }
}

/**
 * The Redis store of one relay: namespaced by its source (`flags-url URL` or `upstream URL`) and
 * the credentials it sends there, behind `redis.namespace` when given, so only relays of the same
 * name, source and credentials share.
 */
export function createRelayStore(redis: RedisRelayOptions, source: string, credentials: Record<string, string> | undefined, log: ServerLogger): SharedStore {
  // The hash is of the credentials too: shown only when there are none (the status is public
  // without an API key, and an unsalted hash of a weak key could be confirmed by guessing offline).
  const hidden = credentials !== undefined && Object.keys(credentials).length > 0
  try {
    return createRedisStore({
      url: redis.url,
      namespace: storeNamespace(source, credentials, redis.namespace),
      shownNamespace: hidden ? (redis.namespace === undefined ? '*' : `${redis.namespace}:*`) : undefined,
      commandTimeoutMs: redis.commandTimeoutMs,
      backupTtlMs: redis.backupTtlMs,
      log,
    })
  } catch (error) {
    // node-redis checks the URL when the client is made (a port that is not a number, …).
    throw new Error(`[holdfast-server] invalid options: redis: ${(error as Error).message}`)
  }
}
