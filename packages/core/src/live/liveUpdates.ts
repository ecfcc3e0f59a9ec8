// Live updates, the chunk loaded on demand (liveLoader.ts loads it once a bulk answer advertises a
// stream): its entry, which finds the stream an answer advertises (or the one a 304's page
// remembered) and starts the client's live session (liveSession.ts) on it. This module names the
// chunk (liveUpdates-<hash>.js, which scripts/size.mjs reports on its own row).
import type { PlatformKit } from '../platform/kit'
import type { Clock, Environment, LiveOptions, Logger, HeadersOption } from '../types'
import type { AttemptExtra, OkResult } from '../flags/sync'
import type { FetchResult } from '../protocol/fetchFlags'
import { createLiveSession } from './liveSession'
import { safely } from './safely'
import { rememberStream } from './rememberStream'
import { readStreamInfo, type StreamInfo } from './streamInfo'
import { keyTag } from './tabs'

/** What flag sync offers live updates (see flags/sync.ts). */
export interface LiveSync {
  request(trigger: 'explicit' | 'poll', extra?: AttemptExtra): Promise<unknown>
  busy(): boolean
  /** The ETag of the snapshot held for the current context. */
  etag(): string | undefined
  adopt(result: OkResult, contextHash: string): boolean
  contextHash(): string
}

/** Options of `createLiveSession` (liveSession.ts), through `startLiveUpdates`; `liveLoader.ts` fills them from the client's. */
export interface LiveUpdatesDeps {
  stream: StreamInfo
  /** The client's OFREP base URL: with the context hash, the key under which tabs share values. */
  url: string
  sync: LiveSync
  fetch: typeof fetch
  headers?: HeadersOption
  clock: Clock
  random: () => number
  environment: Environment
  logger: Logger
  /** The platform pieces (platform/kit.ts): the loader hands them over, this chunk imports only types. */
  kit: PlatformKit
  /**
   * The client's `liveUpdates` options: `shareTabs` (share one stream and the answers between
   * tabs; default where BroadcastChannel and a document exist), `inactivityDelaySec` (overrides the
   * server's), `fallbackPollMs` (poll period while the stream is down; default 30,000 ms, ±20 %),
   * `heartbeatTimeoutMs` (see `StreamConnectionOptions`).
   */
  options: LiveOptions
}

/** The running live updates of one client. */
export interface LiveUpdates {
  /** An answer this client received for `contextHash` (a 200 is shared with other tabs, and may move the stream). */
  answered(result: FetchResult, contextHash: string): void
  /** Whether this client holds the stream open now. */
  connected(): boolean
  close(): void
}

/**
 * The chunk's entry: reads the answer's `eventStreams` and starts live updates with the client's
 * `LiveOptions` (each with its default); undefined when no advertised stream is usable.
 *
 * A 304 has no body, so what the last 200 advertised is remembered per OFREP URL (and static headers) in localStorage
 * (a new tab whose cached ETag is confirmed still finds the stream). With nothing remembered, one
 * full refetch asks the server (so does a record this version cannot read); its answer comes back
 * here through the loader.
 */
export function startLiveUpdates(
  deps: Omit<LiveUpdatesDeps, 'stream'>,
  result: FetchResult,
  contextHash: string,
): LiveUpdates | undefined {
  const tag = keyTag(deps.headers)
  const ok = result.kind === 'ok'
  const advertised = ok ? (result.streams ?? []) : safely(() => JSON.parse(localStorage.getItem(`holdfast-live:${deps.url}${tag}`) as string) as unknown)
  // Nothing remembered, or a record in a shape this version never writes (another version's).
  // Not after a 200 of this client whose streams were all unusable (another type): with nothing
  // remembered for a 304 (Node, storage blocked) each 304 asked again in full, two requests a poll.
  if (!Array.isArray(advertised)) {
    if (!unusable.has(deps.sync)) void deps.sync.request('explicit', { full: true })
    return undefined
  }
  const stream = readStreamInfo(advertised, deps.url)
  if (ok) unusable[stream ? 'delete' : 'add'](deps.sync)
  // A 200 with a stream is remembered by the live updates' `answered` below, as every later one is.
  if (!stream) return void (ok && rememberStream(deps.url, tag))
  const live = createLiveSession({ ...deps, stream })
  live.answered(result, contextHash)
  return live
}

/** The clients (their sync) whose latest 200 advertised no stream they can use. */
const unusable = new WeakSet<LiveSync>()
