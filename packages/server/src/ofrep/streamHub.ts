// What a stream hub is to the rest of the server (the handler, the relay, the index): its path, its
// notices, the fleet's word on open streams, and the hub itself. How it keeps its streams is in
// stream.ts (the file comment there draws the notices); when a relay re-asks, in upstreamWatch.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FlagSource } from '../flags/flagSource'

/** The path of the stream, as advertised in bulk answers (`eventStreams[].endpoint.requestUri`). */
export const STREAM_PATH = '/holdfast/v1/stream'

/** One change notice (the `data` of an OFREP `sseEvent`). */
export interface StreamNotice {
  /** Always `refetchEvaluation`: the client should ask for its values again (with its ETag). */
  type: 'refetchEvaluation'
  /** The definitions version now served; clients send it back as `flagConfigEtag`. */
  etag?: string
  /** Epoch seconds of the change. */
  lastModified?: number
}

/**
 * Proxy mode with `--redis`: whether event streams are open anywhere in the fleet. Behind a load
 * balancer a tab's stream may be on relay B while only relay A, which took its bulk requests,
 * knows its context (the store holds hashes, never a raw context or credentials): A must re-ask
 * while B has streams open, or the change is never found and the tab (which does not poll while
 * its stream is open) keeps the old value for good.
 */
export interface FleetStreams {
  /** Says, for `ttlMs`, that this relay has streams open (fire and forget; said again every interval). */
  announce(ttlMs: number): void
  /** Whether this relay has anything to re-ask and another relay said it has streams open within its TTL. */
  anyOpen(): Promise<boolean>
}

/** The SSE side of the server; see the file comment. */
export interface StreamHub {
  /** Answers `GET /holdfast/v1/stream`. */
  handle(req: IncomingMessage, res: ServerResponse): void
  /** Sends a notice to every open stream; `spread` delays each by a random share of the recovery window. */
  notify(notice: StreamNotice, spread?: boolean): void
  /** Open streams now. */
  connections(): number
  /** Notices sent since the start (one per stream per change). */
  sent(): number
  /** Streams refused since the start: past `maxConnections`, or past `maxConnectionsPerClient` for their client. */
  refused(): Record<StreamRefusal, number>
  /** The `eventStreams` entry bulk answers carry; `mount` (a path the handler is mounted at) goes before the default `requestUri`. */
  advertisement(mount?: string): Array<Record<string, unknown>>
  /** Listens to a definitions source: updates become notices, spread when they end an outage. Returns the unsubscribe. */
  follow(source: FlagSource): () => void
  /**
   * Proxy mode (`--upstream`): the relay holds per-context answers and learns of upstream changes
   * only by asking. While at least one stream is open, `refresh` (the relay's re-ask of every held
   * context) runs every `everyMs`; a refresh that changed anything becomes a notice (spread when it
   * ends a failing spell). With `--redis`, `onTaken` tells of changes another relay found (its
   * answers taken from the store): those taken within {@link TAKEN_GATHER_MS} make one notice, and
   * `fleet` keeps the rounds going while streams are open on another relay only. `onNews` tells of a
   * change a round found as it finds it (gathered as the taken ones are); without it, a round's
   * changes make one notice when the round ends. `again`, at each tick that finds a round still
   * running: has it ask the users seen most recently again (so they are asked each interval,
   * however long a round over every held context lasts).
   * Returns the stop function.
   */
  watchUpstream(refresh: () => Promise<{ outcome: string; changed: string[]; answered?: number }>, everyMs: number, onTaken?: (listener: () => void) => () => void, fleet?: FleetStreams, onNews?: (listener: () => void) => () => void, again?: () => void): () => void
  /** Ends every open stream and refuses new ones (drain, shutdown). Idempotent. */
  close(): void
}

/** Why a stream was refused 503: the global cap, or its client's share. */
export type StreamRefusal = 'max-streams' | 'per-client'
