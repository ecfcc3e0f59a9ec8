// What the relay's sources (--flags-url, --upstream) add to a FlagSource: freshness for
// `metadata.holdfast`, a detailed status and a refresh that says what changed. Local sources
// (a file, an object in code) get the same through the small adapters at the bottom.
import { ageSeconds, createAgeReader, type AgeReader } from './ageReader'
import type { FlagSource, FlagDefinitionsVersion, FlagSourceStatus } from './flagSource'
import type { ServerLogger } from '../logger'
import type { FleetStreams } from '../ofrep/streamHub'
import type { GenerationStore } from './generations'
import type { RelayEvents } from './relayEvents'
import type { UnauthorizedPolicy, UpstreamHealth, UpstreamState } from './upstreamHealth'
import type { LeaseRole } from '../store/leaseKeeper'
import type { StoreStatus } from '../store/sharedStore'
import type { SnapshotState } from './snapshotFile'
import type { PersistenceState } from './persistence'

/** `metadata.holdfast.source`: where what is served came from. */
export type ServedSource = 'upstream' | 'data-dir' | 'snapshot' | 'file'

/** `metadata.holdfast` of every bulk answer. */
export interface HoldfastMetadata {
  /** Where what is served came from: the upstream, the data dir, the `--snapshot` or the flags file. */
  source: ServedSource
  /** Epoch ms when the source last vouched for what is served. */
  fetchedAt: number
  /** True when what is served is not confirmed current by the latest attempt. */
  stale: boolean
}

/** Where the flags come from: `--flags FILE`, `--flags-url URL`, `--upstream URL`, or an object in code. */
export type RelayMode = 'file' | 'flags-url' | 'upstream' | 'inline'

/** `GET /holdfast/v1/status`: at least `ready, source, version, fetchedAt, upstream, refused`, plus more. */
export interface RelayStatus {
  /** True once the relay can serve: a generation of definitions is in service (proxy mode: an answer is held, or the upstream answered); `/readyz` answers 200 while it is true, except while the server drains (503). */
  ready: boolean
  /** Where the flags come from: `--flags`, `--flags-url`, `--upstream` (proxy mode) or an object in code. */
  mode: RelayMode
  /** Where what is served now came from; `none` while nothing is. */
  source: ServedSource | 'none'
  /**
   * A hash of the definitions served; in proxy mode a hash of every answer held (see
   * `ContextCache.version`); null while nothing is served.
   */
  version: string | null
  /** Epoch ms when the source last vouched for what is served; null while nothing is served. */
  fetchedAt: number | null
  /** Seconds since `fetchedAt`, when the status was asked. */
  ageSeconds: number | null
  /** True when what is served is not confirmed current by the latest attempt (bulk answers say so in `metadata.holdfast`). */
  stale: boolean
  /** The origin as the relay sees it (for `--flags`, only `state: 'none'` and a read failure). */
  upstream: {
    /**
     * `ok` while the latest attempt succeeded, `failing` after it failed and until the first success
     * (also before any attempt), `unauthorized` after a 401/403, `none` without an upstream
     * (`--flags`, definitions in code). Proxy mode: an answer refused for one context (emptied,
     * shrunk, too large, one user's 401/403 while others' are accepted) is counted in `refused` and
     * leaves the state as it was.
     */
    state: UpstreamState
    /** The upstream's URL, with user and password removed and a query string shown as `?…` (tokens live there). */
    url?: string
    /** Epoch ms of the latest attempt that got a usable answer (200 applied or unchanged, 304). */
    lastSuccessAt?: number
    /** Epoch ms of the latest attempt, successful or not. */
    lastAttemptAt?: number
    /** What the latest failed attempt said (its kind, message, time and HTTP status); kept after a success (compare its `at` with `lastSuccessAt`). */
    lastError?:
      | UpstreamHealth['lastError']
      | {
          /** What the latest failed read of the flags file said. */
          message: string
        }
    /**
     * Proxy mode: the breaker on the upstream's health. `open` after two contexts in a row met an
     * outage (no answer, a timeout, 5xx, 408/429, HTML): users' requests are then answered from
     * what is held (stale) or 503 without an upstream request each (`unasked`, since start), and
     * one goes upstream as the probe at `nextProbeAt` at the earliest (1 s doubling to 5 s,
     * jittered); the first answer with values (or a 304) closes it. Each relay of a `--redis` fleet
     * has its own (an answer another relay shares makes its next probe due at once).
     */
    breaker?: {
      /** `open`: users are answered from what is held (or 503) without asking the upstream. */
      state: 'open' | 'closed'
      /** When it opened (epoch ms); only while open. */
      openedAt?: number
      /** The earliest time the next probe goes upstream (epoch ms); only while open. */
      nextProbeAt?: number
      /** True while a probe is out; only while open. */
      probing?: boolean
      /** Probes sent since it opened (0 while closed). */
      probes: number
      /** Users' requests answered without an upstream request because it was open, since start. */
      unasked: number
    }
  }
  /** Answers or documents refused since start: failed attempts and guarded documents (emptied, shrunk, too large). */
  refused: number
  /** `refused` by kind of failure (`network`, `timeout`, `http`, `unauthorized`, `shrink`, ...). */
  refusedBy?: UpstreamHealth['refusedBy']
  /** Definitions modes: how many flags the generation served defines. */
  flags?: number
  /** Proxy mode: how many contexts' answers are held. */
  contexts?: number
  /**
   * Proxy mode: the latest round of asking the upstream again for the held contexts (every poll
   * interval while event streams are open, and `POST /holdfast/v1/refresh`): when it started, how
   * many contexts it had to ask, how many it asked (fewer when it ended at an upstream that is
   * down), how long it took, and its outcome.
   */
  reask?: {
    /** When the round started (epoch ms). */
    at: number
    /** Held contexts it had to ask. */
    contexts: number
    /** Contexts it asked (fewer when it ended at an upstream that is down). */
    asked: number
    /** Contexts the upstream answered (values, 304, 400, or an answer the guard refused). */
    answered: number
    /** How long the round took, in ms. */
    durationMs: number
    /** As `RefreshResult.outcome`: `applied`, `unchanged`, `refused`, `failed` or `running`. */
    outcome: RefreshResult['outcome']
    /** Held contexts this process cannot ask again (read back from the data dir, not asked for since). */
    unknown: number
  }
  /** Proxy mode: the round of re-asks going on now (started `at`, `asked` of `contexts` so far); absent between rounds. */
  reaskRunning?: {
    /** When the round started (epoch ms). */
    at: number
    /** Held contexts it has to ask. */
    contexts: number
    /** Contexts asked so far. */
    asked: number
  }
  /** With `--data-dir`: its writes, and what was read back at start (the generation served, the newer ones skipped and why). */
  dataDir?: PersistenceState
  /** With `--snapshot`: whether it could be used at start (a torn or invalid one is not served, and said so here). */
  snapshot?: SnapshotState
  /** With `--redis`: the connection to the shared store, this relay's role and what it took from it. */
  redis?: RedisStatus
}

/**
 * `redis` in the status: the store's connection, plus the role (definitions modes), the documents
 * taken from it, and (proxy mode) the answers it could not take yet, retried with backoff.
 */
export type RedisStatus = StoreStatus & {
  taken: number
  role?: LeaseRole
  version?: number
  unshared?: number
  /**
   * Proxy mode with a data dir: answers read back from it whose recorded store version
   * (`storeVersion`) was ahead of the store's clock (a data dir written against another Redis, or
   * edited by hand), since the start: that version is not used, the answer is written back at a new
   * one (each write-back with any says so in the log). Also `holdfast_redis_places_ahead_total`.
   */
  aheadOfStore?: number
  /**
   * `--flags-url`: the store's copy this relay refuses to serve (its shrink guard, and no lineage
   * vouching for it), the store's version of it and why, naming the remedy. Absent once a copy
   * is taken or other flags are applied.
   */
  refusedCopy?: { version: number; at: number; message: string }
}

/** What `POST /holdfast/v1/refresh` answers. */
export interface RefreshResult {
  /**
   * `running`: proxy mode, the round of re-asks outlasted `refreshAnswerWithinMs` and goes on in
   * the background; `changed` and `asked` say how far it got. A later refresh joins it.
   */
  outcome: 'applied' | 'unchanged' | 'refused' | 'failed' | 'running'
  /** The version in service afterwards, as in the status (in proxy mode: of every answer held). */
  version: string | null
  /** Flag keys added, removed or changed by this refresh. */
  changed: string[]
  /** Why the refresh failed or was refused; absent when it applied or found nothing new. */
  error?: {
    /** The kind of failure (`network`, `timeout`, `http`, `unauthorized`, `invalid`, `shrink`, ...). */
    kind: string
    /** What the failure said, for the log. */
    message: string
  }
  /** Proxy mode: how many held contexts were asked again. */
  contexts?: number
  /** Proxy mode: how many of them have been asked so far in this round (all of them once it is over, less those skipped or not reached). */
  asked?: number
  /**
   * Proxy mode: how many of those the upstream answered (values, 304, 400, or an answer the guard
   * refused). A round `failed` with answers ended at one context's failure beside them: not an
   * outage, and what it finds next is not spread as the end of one (see `watchUpstream`).
   */
  answered?: number
  /**
   * Proxy mode: how many of those asked got no usable answer (no answer, a timeout, 5xx, HTML…).
   * A round that asked every context, some answered, is not `failed` for them: they keep their
   * values (stale), and `error` names the latest such failure.
   */
  failed?: number
  /** Proxy mode: when the round this answer belongs to started (epoch ms). */
  startedAt?: number
  /**
   * Proxy mode: held contexts this process cannot ask again, so not in `contexts`: read back from
   * the data dir (or taken from another relay) and not asked for by their users since. The data
   * dir keeps a hash, never the context or a forwarded token: each is asked again on its user's
   * next request, and from then on by every round.
   */
  unknown?: number
}

/** The options both relay sources (`--flags-url`, `--upstream`) take. */
export interface RelaySourceOptions {
  /** The data dir's generation store (`createGenerationStore`). Default: none (memory only). */
  store?: GenerationStore
  /** Absolute path of a `--snapshot` file, the oldest layer. Default: none. */
  snapshotPath?: string
  /** A new flag set may drop at most this share (percent) of the flags held; zero flags are always refused. Default in `createFlagServer`: 50. */
  maxShrinkPercent: number
  /** `--on-upstream-unauthorized` (default `{ mode: 'keep' }`): what a 401/403 does to what is held. */
  onUnauthorized: UnauthorizedPolicy
  /** Milliseconds one upstream request may take. Default in `createFlagServer`: 5,000. */
  timeoutMs: number
  /** Where failures, refusals and data-dir problems are reported. */
  log: ServerLogger
  /** Counter hooks (metrics). Default: none. */
  events?: RelayEvents
  /** The clock. Default `Date.now`. */
  now?: () => number
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch
}

/** A {@link FlagSource} of the relay. */
export interface RelaySource extends FlagSource {
  /** `metadata.holdfast` for a definitions answer now; undefined while nothing is served. */
  freshness(): HoldfastMetadata | undefined
  /** What `GET /holdfast/v1/status` answers, computed now; never throws. */
  relayStatus(): RelayStatus
  /** Asks the upstream now (concurrent calls share one request) and says what changed. */
  /**
   * `answerWithinMs`: resolve by then at the latest, with outcome `running` and the progress so
   * far when the work goes on (proxy mode's round of re-asks). Default: wait for the whole round.
   */
  refreshDetails(options?: { acceptShrink?: boolean; answerWithinMs?: number }): Promise<RefreshResult>
  /**
   * Proxy mode with `--redis`: `listener` runs when an answer taken from another relay changed
   * what this relay serves for a context (a change that relay found, which this one's own re-ask
   * will now never see as one). Returns the unsubscribe.
   */
  onTaken?(listener: () => void): () => void
  /**
   * Proxy mode: `listener` runs as soon as a re-ask round finds news (a change not yet told of in
   * the round, or a context changed again since), not when the round ends. Returns the unsubscribe.
   */
  onReaskNews?(listener: () => void): () => void
  /**
   * Proxy mode: while a re-ask round runs, has it ask the users seen most recently again (up to 4,
   * on every other request of the round, never holding it open); nothing while none runs. The
   * live-updates tick calls it each interval a round outlasts: a round asks each context once, so a
   * change made for a user just after the round asked them was found only by the next round, once
   * this one had asked every other context held (or after `reaskRoundMs`, a minute).
   */
  reaskRecent?(): void
  /**
   * Proxy mode with `--redis`: streams open anywhere in the fleet (see {@link FleetStreams}), so
   * that this relay re-asks the contexts only it knows while a tab's stream is on another relay.
   */
  fleetStreams?: FleetStreams
  /**
   * Proxy mode: the users' requests waiting on the upstream (or for a turn to ask it) are answered
   * now, as at their timeout (held values, stale, or 503), and the upstream requests in flight are
   * abandoned. Called near the end of a drain: before, the drain's end cut those connections when
   * the upstream timeout was longer than the drain.
   */
  abandonWaits?(): void
}

/** Whether a source is one of the relay's. */
export function isRelaySource(source: FlagSource): source is RelaySource {
  return typeof (source as Partial<RelaySource>).relayStatus === 'function'
}

/** Default `Retry-After` (seconds) of a 503 while nothing can be served. */
export const NOT_READY_RETRY_AFTER_SECONDS = 5

/** The age reader of each file or inline source's status (the relay's sources hold their own). */
const localAges = new WeakMap<FlagSource, AgeReader>()
function localAgeOf(source: FlagSource): AgeReader {
  let reader = localAges.get(source)
  if (!reader) localAges.set(source, (reader = createAgeReader()))
  return reader
}

/** A relay source's `FlagSource` status, from its upstream's health. */
export function sourceStatusOf(health: UpstreamHealth, ready: boolean): FlagSourceStatus {
  const status: FlagSourceStatus = { ready, state: health.state === 'unauthorized' ? 'unauthorized' : health.lastAttemptAt === undefined ? 'none' : health.state === 'ok' ? 'ok' : 'failing', refused: health.refused }
  if (health.lastSuccessAt !== undefined) status.lastSuccessAt = health.lastSuccessAt
  if (health.lastError && health.state !== 'ok') status.lastError = health.lastError.message
  return status
}

/** `upstream` of a relay source's {@link RelayStatus}: its health and its (redacted) `url`. */
export function upstreamStatusOf(health: UpstreamHealth, url: string): RelayStatus['upstream'] {
  const upstream: RelayStatus['upstream'] = { state: health.state, url }
  if (health.lastSuccessAt !== undefined) upstream.lastSuccessAt = health.lastSuccessAt
  if (health.lastAttemptAt !== undefined) upstream.lastAttemptAt = health.lastAttemptAt
  if (health.lastError) upstream.lastError = health.lastError
  return upstream
}

/** `metadata.holdfast.source` for a definitions version's origin. */
export function servedSourceOf(origin: FlagDefinitionsVersion['origin']): ServedSource {
  if (origin === 'url' || origin === 'upstream') return 'upstream'
  if (origin === 'data-dir' || origin === 'snapshot') return origin
  return 'file'
}

/**
 * `metadata.holdfast` for any source: its own for the relay's, else from what it serves. A local
 * file's definitions are stale while its latest read failed (unreadable, invalid, emptied or
 * gutted): the previous definitions go on being served, but they are no longer what the file says.
 */
export function freshnessOf(source: FlagSource): HoldfastMetadata | undefined {
  if (isRelaySource(source)) return source.freshness()
  const version = source.current()
  return version && { source: servedSourceOf(version.origin), fetchedAt: version.fetchedAt, stale: localStale(source, version) }
}

/** Whether a local source's definitions are stale: a layer (data dir, snapshot), or a file whose latest read failed. */
function localStale(source: FlagSource, version: FlagDefinitionsVersion): boolean {
  return version.origin === 'data-dir' || version.origin === 'snapshot' || (source.origin === 'file' && source.status().state === 'failing')
}

/** The status of any source: its own for the relay's, else built from the FlagSource status. */
export function statusOf(source: FlagSource, now: number): RelayStatus {
  if (isRelaySource(source)) return source.relayStatus()
  const version = source.current()
  const status = source.status()
  const result: RelayStatus = {
    ready: status.ready,
    mode: source.origin === 'inline' ? 'inline' : 'file',
    source: version ? servedSourceOf(version.origin) : 'none',
    version: version?.version ?? null,
    fetchedAt: version?.fetchedAt ?? null,
    // On an age reader, as the relay modes: a clock set back an hour made the file look read an hour ahead, 0 s old.
    ageSeconds: ageSeconds(localAgeOf(source), version?.fetchedAt, now),
    stale: version !== undefined && localStale(source, version),
    upstream: { state: 'none' },
    refused: status.refused,
    flags: version?.flagCount ?? 0,
  }
  if (status.lastError) result.upstream.lastError = { message: status.lastError }
  // --flags FILE with --data-dir (flags/persistedSource.ts): its writes show as in the relay modes.
  const layers = source as { dataDirState?: () => RelayStatus['dataDir']; snapshotState?: () => SnapshotState | undefined }
  const dataDir = layers.dataDirState?.()
  if (dataDir) result.dataDir = dataDir
  const snapshot = layers.snapshotState?.()
  if (snapshot) result.snapshot = snapshot
  return result
}
