// What the relay's sources (--flags-url, --upstream) add to a FlagSource: freshness for
// `metadata.holdfast`, a detailed status and a refresh that says what changed. Local sources
// (a file, an object in code) get the same through the small adapters at the bottom.
import { ageSeconds, createAgeReader, type AgeReader } from './ageReader'
import type { FlagSource, FlagDefinitionsVersion, FlagSourceStatus } from './flagSource'
import type { ServerLogger } from '../logger'
import type { FleetStreams } from '../ofrep/streamHub'
import type { GenerationStore } from './generations'
import type { RefreshResult } from './refreshResult'
import type { RelayEvents } from './relayEvents'
import type { HoldfastMetadata, RelayStatus, ServedSource } from './relayStatus'
import type { UnauthorizedPolicy, UpstreamHealth } from './upstreamHealth'
import type { SnapshotState } from './snapshotFile'

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
