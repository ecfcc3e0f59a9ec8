// The relay's options (CONTRACT §9) and the source they build: --flags-url or --upstream, with
// --data-dir, --snapshot and the rest. `createFlagHandler` calls this when either is given.
import { resolve } from 'node:path'
import type { ServerLogger } from '../logger'
import type { ServerMetrics } from '../metrics'
import { DEFAULT_KEEP_GENERATIONS, MAX_GENERATION_BYTES, createGenerationStore, type GenerationStore } from './generations'
import { DEFAULT_MAX_CONTEXT_BYTES } from './contextCache'
import { statusOf, type RelaySource } from './relay'
import { registerRelayMetrics } from './relayMetrics'
import { DEFAULT_UPSTREAM_TIMEOUT_MS, httpUrlProblem, ofrepEndpoint } from './upstreamFetch'
import { parseUnauthorizedPolicy, type UnauthorizedPolicy } from './upstreamHealth'
import { unforwardableReason } from './headerNames'
import { createUpstreamSource, DEFAULT_FORWARD_HEADERS } from './upstreamSource'
import { createUrlSource } from './urlSource'
import { createRelayStore, readRedisOptions, type RedisRelayOptions } from '../store/relayStore'
import { createSharedContexts } from '../store/sharedContexts'
import { createSharedDefinitions } from '../store/sharedDefinitions'
import { storeNamespace } from '../store/storeNamespace'
import { registerStoreMetrics } from '../store/storeMetrics'
import type { SharedStore } from '../store/sharedStore'

/** Default `--poll-interval`: 10 seconds. */
export const DEFAULT_POLL_INTERVAL_SECONDS = 10

/** The relay's options, part of `FlagHandlerOptions` / `FlagServerOptions`. */
export interface RelayOptions {
  /**
   * flagd definitions over HTTP(S), polled with `If-None-Match` every `pollIntervalSeconds`.
   * Exactly one of `flags`, `flagsUrl`, `upstream` (or `source`). Default: none.
   */
  flagsUrl?: string
  /**
   * An OFREP server to relay (flagd, a vendor, another Holdfast relay): every bulk request is
   * forwarded for its context and merged into that context's last known good. Default: none.
   */
  upstream?: string
  /** Keeps the last good definitions (or per-context answers) here, crash-safely, for restarts. Default: none (memory only). */
  dataDir?: string
  /** How many data-dir generations to keep. Default 3. */
  keepGenerations?: number
  /** A build-time snapshot (`holdfast-server snapshot …`): the oldest layer, served when nothing newer is. Default: none. */
  snapshot?: string
  /** Seconds between polls of `flagsUrl`. Default 10; fractions allowed (at least 0.05). */
  pollIntervalSeconds?: number
  /** Enables `POST /holdfast/v1/refresh` for `Authorization: Bearer KEY`. Default: none (refresh answers 403). */
  adminKey?: string
  /** What an upstream 401/403 does to what is held: `keep` (default), `clear`, or `clear-after=SECONDS`. */
  onUpstreamUnauthorized?: 'keep' | 'clear' | `clear-after=${number}`
  /** Request headers passed to the upstream and hashed into the per-context cache key. Default `['Authorization']`. */
  forwardHeaders?: string[]
  /** Headers the relay itself sends to `flagsUrl` (e.g. a token for a private bucket). Default: none. */
  upstreamHeaders?: Record<string, string>
  /** Milliseconds one upstream request may take. Default 5,000. */
  upstreamTimeoutMs?: number
  /**
   * The `fetch` every request the relay makes to its source goes through (`flagsUrl`, `upstream`,
   * its probes): a proxy agent or client certificate (undici's `dispatcher`), instrumentation, a
   * test's fake. Not the events sink's, which is `eventsForwarding.fetch`. Each request is bounded
   * by `upstreamTimeoutMs` even when it ignores the signal. Default `globalThis.fetch`.
   */
  fetch?: typeof fetch
  /** Contexts whose last good answer is held in proxy mode (least recently used out first). Default 10,000. */
  maxContexts?: number
  /**
   * `--redis URL`: share one store with the other relays of the same source and credentials. One
   * polls `flagsUrl` at a time (a lease) and the others take each new version from Redis at once;
   * with `upstream`, every good per-context answer is shared. Redis down or slow never holds up a
   * request: each relay serves what it holds. A string is the URL. Default: none.
   */
  redis?: string | RedisRelayOptions
  /**
   * Instead of `redis`: a store shared with other relays in this process (`createMemoryStore()`,
   * or your own `SharedStore`), with the same lease and sharing. The relay never closes it, so
   * one store can outlive the relays on it. Use one store per source. Default: none.
   */
  sharedStore?: {
    /** The store the relays share (`createMemoryStore()` or your own `SharedStore`). */
    store: SharedStore
    /** The lease TTL (see `createLeaseKeeper`). Default 15,000 ms. */
    leaseTtlMs?: number
  }
  /** Heap bytes of the answers held in proxy mode (estimated from the parsed answers, not their JSON; least recently used out first). Default 64 MiB. */
  maxContextBytes?: number
  /** Proxy mode: how long a request whose context has a held answer waits for the upstream before that answer goes out, stale. Default 1,000 ms. */
  heldAnswerAfterMs?: number
  /** Proxy mode: upstream requests in flight at once; more wait their turn (within `upstreamTimeoutMs`). Default 256. */
  maxUpstreamRequests?: number
  /** Proxy mode: how long one round of re-asks goes on before it stops (the rest in the next rounds). Default 60,000 ms. */
  reaskRoundMs?: number
  /**
   * How long `POST /holdfast/v1/refresh` waits before it answers 202 `{ outcome: 'running', asked,
   * contexts, changed }` while the round of re-asks goes on (proxy mode: every held context is asked).
   * Default 30,000 ms.
   */
  refreshAnswerWithinMs?: number
}

/** Whether the options ask for a relay source. */
export function wantsRelay(options: RelayOptions): boolean {
  return options.flagsUrl !== undefined || options.upstream !== undefined
}

/**
 * Checks the relay options (throws an `Error` naming the problem) and builds the source, with its
 * metrics registered on `metrics.registry`.
 */
export function createRelaySource(options: RelayOptions & { strictValidation: boolean; maxShrinkPercent: number; log: ServerLogger; metrics: ServerMetrics; dataDirStore?: GenerationStore }): RelaySource {
  const policy = readPolicy(options.onUpstreamUnauthorized)
  const pollSeconds = options.pollIntervalSeconds ?? DEFAULT_POLL_INTERVAL_SECONDS
  if (!(pollSeconds >= 0.05 && pollSeconds <= 86_400)) throw new Error(`[holdfast-server] invalid options: pollIntervalSeconds must be from 0.05 to 86400, got ${pollSeconds}`)
  const timeoutMs = options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
  if (!(timeoutMs >= 1 && timeoutMs <= 600_000)) throw new Error(`[holdfast-server] invalid options: upstreamTimeoutMs must be from 1 to 600000, got ${timeoutMs}`)
  for (const [name, url] of [['flagsUrl', options.flagsUrl], ['upstream', options.upstream]] as const) {
    const problem = url === undefined ? undefined : httpUrlProblem(url, name)
    if (problem) throw new Error(`[holdfast-server] invalid options: ${problem}`)
  }
  const unforwardable = options.forwardHeaders?.find((name) => unforwardableReason(name) !== undefined)
  if (unforwardable !== undefined) throw new Error(`[holdfast-server] invalid options: forwardHeaders: ${unforwardable} cannot be forwarded (${unforwardableReason(unforwardable)})`)
  const store = options.dataDirStore ?? (options.dataDir === undefined ? undefined : createDataDirStore(options.dataDir, options))
  const snapshotPath = options.snapshot === undefined ? undefined : resolve(options.snapshot)
  let source: RelaySource | undefined
  const events = registerRelayMetrics(options.metrics.registry, () => (source ? statusOf(source, Date.now()) : undefined))
  if (options.redis !== undefined && options.sharedStore !== undefined) throw new Error('[holdfast-server] invalid options: give redis or sharedStore, not both')
  const redis = readRedisOptions(options.redis)
  const ownStore = redis !== undefined
  const sharedStore = options.sharedStore?.store ?? (redis && createRelayStore(redis, options.upstream !== undefined ? `upstream ${options.upstream}` : `flags-url ${options.flagsUrl}`, options.upstreamHeaders, options.log))
  const leaseTtlMs = redis?.leaseTtlMs ?? options.sharedStore?.leaseTtlMs
  if (sharedStore) registerStoreMetrics(options.metrics.registry, { status: () => source?.relayStatus().redis ?? { ...sharedStore.status(), taken: 0 }, proxy: options.upstream !== undefined })
  const common = { store, snapshotPath, maxShrinkPercent: options.maxShrinkPercent, onUnauthorized: policy, timeoutMs, log: options.log, events, fetch: options.fetch }
  source = options.upstream !== undefined
    ? createUpstreamSource({
        ...common,
        url: options.upstream,
        forwardHeaders: options.forwardHeaders ?? [...DEFAULT_FORWARD_HEADERS],
        maxContexts: options.maxContexts,
        maxContextBytes: options.maxContextBytes,
        heldAnswerAfterMs: options.heldAnswerAfterMs,
        maxUpstreamRequests: options.maxUpstreamRequests,
        reaskRoundMs: options.reaskRoundMs,
        share: sharedStore && ((take, held) => createSharedContexts({ store: sharedStore, maxContexts: options.maxContexts, log: options.log, take, held, closeStore: ownStore })),
      })
    : createUrlSource({
        ...common,
        url: options.flagsUrl!,
        pollIntervalMs: pollSeconds * 1000,
        headers: options.upstreamHeaders,
        strict: options.strictValidation,
        share: sharedStore && ((hooks) => createSharedDefinitions({ store: sharedStore, leaseTtlMs, checkEveryMs: Math.max(100, Math.min(5000, pollSeconds * 1000)), log: options.log, closeStore: ownStore, ...hooks })),
      })
  return source
}

function readPolicy(text: string | undefined): UnauthorizedPolicy {
  if (text === undefined) return { mode: 'keep' }
  const policy = parseUnauthorizedPolicy(text)
  if (!policy) throw new Error(`[holdfast-server] invalid options: onUpstreamUnauthorized must be keep, clear or clear-after=SECONDS, got "${text}"`)
  return policy
}

/**
 * What the server takes its flags from, as its data dir names it: `upstream ENDPOINT`, `flags-url
 * URL` or `file PATH` (absolute); undefined for definitions given in code. The URLs as requested
 * (host case, a default port, a fragment, an upstream's trailing slash do not count), so the same
 * source written another way at a restart still reads its data dir.
 */
function sourceName(options: Pick<RelayOptions, 'upstream' | 'flagsUrl'> & { flags?: unknown }): string | undefined {
  if (options.upstream !== undefined) return `upstream ${ofrepEndpoint(options.upstream)}`
  if (options.flagsUrl !== undefined) return `flags-url ${asRequested(options.flagsUrl)}`
  return typeof options.flags === 'string' ? `file ${resolve(options.flags)}` : undefined
}

function asRequested(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.hash = ''
    return parsed.href
  } catch {
    return url
  }
}

/**
 * The generation store of the data dir `dir`. Its bound on a generation file: 64 MiB
 * (MAX_GENERATION_BYTES), or in proxy mode twice `maxContextBytes` when that is more: the held
 * answers' JSON is smaller than their heap estimate, so whatever the relay holds is written and read back.
 *
 * Every generation is tagged with the source and the credentials sent there, hashed as the Redis
 * namespace is (see `storeNamespace`; the source's URL as requested, see `sourceName`): a relay restarted on this dir but pointed at another
 * upstream, URL or file, or sending another key, skips what the old one was answered
 * (`other-source` in the status) instead of serving it as its own. (In proxy mode the forwarded
 * credentials are in each context's key already.)
 */
export function createDataDirStore(dir: string, options: Pick<RelayOptions, 'keepGenerations' | 'upstream' | 'flagsUrl' | 'upstreamHeaders' | 'maxContextBytes'> & { flags?: unknown }): GenerationStore {
  const maxBytes = options.upstream === undefined ? MAX_GENERATION_BYTES : Math.max(MAX_GENERATION_BYTES, 2 * (options.maxContextBytes ?? DEFAULT_MAX_CONTEXT_BYTES))
  const name = sourceName(options)
  const source = name === undefined ? undefined : storeNamespace(name, options.upstreamHeaders)
  return createGenerationStore({ dir: resolve(dir), keep: options.keepGenerations ?? DEFAULT_KEEP_GENERATIONS, maxBytes, source })
}
