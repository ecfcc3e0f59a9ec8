// The shape every way of holding flags shares (definitions from a file or URL, per-context answers
// from an OFREP upstream), so the routes, the status and the metrics need not know which it is.
import type { EvaluationContext } from '@openfeature/core'
import type { OfrepBulkResponse, OfrepEntry } from '../evaluate'
import type { ServedSource } from './servedDefinitions'
import type { UpstreamHealth, UpstreamState } from './upstreamHealth'

/** Where the flags come from: `--flags FILE`, `--flags-url URL`, `--upstream URL`, or an object in code. */
export type RelayMode = 'file' | 'flags-url' | 'upstream' | 'inline'

/** `metadata.holdfast` of every bulk answer (CONTRACT §9). */
export interface HoldfastMetadata {
  source: ServedSource
  /** Epoch ms when the source last vouched for what is served. */
  fetchedAt: number
  /** True when what is served is not confirmed current by the latest attempt. */
  stale: boolean
}

/** A bulk evaluation answer with the Holdfast flag-set metadata. */
export interface RelayBulkBody extends Omit<OfrepBulkResponse, 'metadata'> {
  metadata: Record<string, unknown> & { holdfast: HoldfastMetadata }
}

/** What a route sends for a bulk request. */
export type RelayAnswer =
  | { status: 200; body: RelayBulkBody }
  /** Nothing to serve (never an empty 200, never a 401): try again after `retryAfter` seconds. */
  | { status: 503; retryAfter: number; body: { errorCode: string; errorDetails: string } }
  /** The upstream refused this request itself (e.g. a 400 for a bad context): passed through. */
  | { status: number; body: unknown }

/** `GET /holdfast/v1/status` (CONTRACT §9, plus more). */
export interface RelayStatus {
  ready: boolean
  mode: RelayMode
  source: ServedSource | 'none'
  /** A hash of the definitions served (definitions modes); the number of contexts held (proxy). */
  version: string | null
  fetchedAt: number | null
  /** Seconds since `fetchedAt`, at the time of the request. */
  ageSeconds: number | null
  stale: boolean
  upstream: {
    state: UpstreamState
    url?: string
    lastSuccessAt?: number
    lastAttemptAt?: number
    lastError?: UpstreamHealth['lastError']
  }
  refused: number
  refusedBy: UpstreamHealth['refusedBy']
  flags?: number
  contexts?: number
  dataDir?: { dir: string; lastSavedAt?: number; lastGeneration?: number; lastError?: string; writeFailures: number }
}

/** What `POST /holdfast/v1/refresh` answers. */
export interface RefreshResult {
  outcome: 'applied' | 'unchanged' | 'refused' | 'failed'
  version: string | null
  changed: string[]
  error?: { kind: string; message: string }
  /** Proxy mode: how many held contexts were asked again. */
  contexts?: number
}

/** The flags held and how to answer with them; see the file comment. */
export interface Relay {
  readonly mode: RelayMode
  /** Loads the data dir / snapshot, starts the source and asks the upstream at once. */
  open(): Promise<void>
  bulk(context: EvaluationContext, forwarded: Record<string, string>): Promise<RelayAnswer> | RelayAnswer
  /** One flag, for `POST /ofrep/v1/evaluate/flags/{key}`; undefined when not held. */
  single(key: string, context: EvaluationContext, forwarded: Record<string, string>): Promise<OfrepEntry | RelayAnswer | undefined> | OfrepEntry | RelayAnswer | undefined
  ready(): boolean
  status(): RelayStatus
  /** Asks the upstream now; concurrent calls share one request. */
  refresh(options?: { acceptShrink?: boolean }): Promise<RefreshResult>
  /** Waits for pending data-dir writes, stops polling and watching. */
  close(): Promise<void>
}

/** Default `Retry-After` (seconds) of a 503 while nothing can be served. */
export const NOT_READY_RETRY_AFTER_SECONDS = 5

/** The 503 answered while nothing can be served. */
export function notReady(details: string, retryAfter = NOT_READY_RETRY_AFTER_SECONDS): RelayAnswer {
  return { status: 503, retryAfter, body: { errorCode: 'GENERAL', errorDetails: details } }
}

/** Seconds since `at`, never negative (a clock set back must not show "-3 s old"). */
export function ageSeconds(at: number | undefined | null, now: number): number | null {
  return at === undefined || at === null ? null : Math.max(0, Math.round((now - at) / 1000))
}
