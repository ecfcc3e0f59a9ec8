import type { FlagdCore } from '@openfeature/flagd-core'
import type { FlagdDefinitions } from './flagDefinitions'

/**
 * Where the definitions being served came from, as reported in `metadata.holdfast.source` and in
 * the status: `file` (a watched `--flags` file), `inline` (a definitions object in code), `url`
 * (`--flags-url`), `upstream` (`--upstream`), `data-dir` (`--data-dir`) or `snapshot` (`--snapshot`).
 */
export type FlagOrigin = 'file' | 'inline' | 'url' | 'upstream' | 'data-dir' | 'snapshot'

/**
 * One validated generation of flag definitions, compiled and ready to evaluate. Immutable: a new
 * edit produces a new object, so a request that started on one generation finishes on it.
 */
export interface FlagDefinitionsVersion {
  /** A content hash of the definitions (stable across restarts): the cache and the ETag key on it. */
  version: string
  /** The definitions as validated (the flagd document). */
  definitions: FlagdDefinitions
  /** The compiled evaluator. */
  evaluator: FlagdCore
  /** How many flags the document defines. */
  flagCount: number
  /** Where this generation came from. */
  origin: FlagOrigin
  /** Epoch ms when this generation was obtained from its origin (for a data-dir copy: when it was first fetched). */
  fetchedAt: number
}

/** What a source tells its listeners. */
export type FlagSourceEvent =
  /** A new generation is in service. `changed` lists the flag keys added, removed or edited. */
  | {
      /** `update`: a new generation is in service. */
      type: 'update'
      /** The generation now in service. */
      version: FlagDefinitionsVersion
      /** The generation it replaced; absent for the first one. */
      previous?: FlagDefinitionsVersion
      /** The flag keys added, removed or edited since `previous` (every key for the first one). */
      changed: string[]
    }
  /** A document arrived and was refused; nothing changed. `invalid`: it did not parse or validate (otherwise it was valid but empty or shrunk too far). */
  | {
      /** `refused`: a document arrived and was not put in service. */
      type: 'refused'
      /** Why it was refused, for the log and the status. */
      reason: string
      /** True when it did not parse or validate; absent when it was valid but empty or shrunk too far. */
      invalid?: boolean
    }
  /**
   * The origin could not be read (missing file, network error); nothing changed. `reported`: not by
   * this relay but by the fleet's leader (`--redis`), whose report a follower mirrors: the same
   * failing spell, so that its end is spread on the follower's streams too, but not a read of its own.
   */
  | {
      /** `error`: the origin could not be read. */
      type: 'error'
      /** What the failed read said. */
      error: string
      /** True when the fleet's leader reported it (`--redis`), not a read of this relay's own. */
      reported?: boolean
    }

/** A source's health, for `/readyz`, `/metrics` and the relay's status route. */
export interface FlagSourceStatus {
  /** True once a generation is in service (and from then on). */
  ready: boolean
  /** `ok` while the latest attempt succeeded, `failing` after it failed, `unauthorized` after a 401/403, `none` before any attempt. */
  state: 'ok' | 'failing' | 'unauthorized' | 'none'
  /** Epoch ms of the latest attempt that succeeded (an unchanged document counts). */
  lastSuccessAt?: number
  /** What the latest failed attempt said. Cleared by a success. */
  lastError?: string
  /** How many documents were refused since the start. */
  refused: number
}

/**
 * A request forwarded to a source that evaluates per context itself (a proxy to an upstream OFREP
 * server). `headers` are the incoming request's headers, lower-cased.
 */
export interface ForwardedRequest {
  /** The evaluation context of the request body, as validated by the server. */
  context: Record<string, unknown>
  /** The incoming request's headers, lower-cased (what a proxy picks its forwarded headers from). */
  headers: Record<string, string | string[] | undefined>
}

/**
 * What a per-context source answers: a status, a body and extra headers, sent as is (with CORS).
 * A 200 body should carry `metadata.holdfast` (`{ source, fetchedAt, stale }`).
 */
export interface ForwardedAnswer {
  /** The HTTP status sent to the client. */
  status: number
  /** The JSON body sent to the client; absent for a bodiless answer (a 304). */
  body?: unknown
  /** Extra response headers (an `ETag`, a `Retry-After`); CORS headers are added by the server. */
  headers?: Record<string, string>
}

/**
 * The seam between "where flags come from" and "how they are served" (a file, an HTTP URL, an
 * upstream OFREP server, a data dir...). A definitions source yields validated
 * {@link FlagDefinitionsVersion}s through `current()` and `subscribe()`, and never replaces a good
 * generation with a bad one (it reports the refusal instead). A per-context source (a proxy)
 * implements {@link FlagSource.evaluate} instead and may leave `current()` undefined.
 */
export interface FlagSource {
  /** Where the definitions come from. */
  readonly origin: FlagOrigin
  /**
   * Loads the first generation. Rejects only when the source can never serve (a missing or
   * invalid `--flags` file at start); a remote source that is merely down resolves not ready.
   */
  open(): Promise<void>
  /** The generation in service; undefined while not ready. Cheap: called per request. */
  current(): FlagDefinitionsVersion | undefined
  /** Listens for updates, refusals and errors; returns an unsubscribe function. */
  subscribe(listener: (event: FlagSourceEvent) => void): () => void
  /** Asks the origin now (re-read the file, poll the URL). Resolves true when a generation is in service and the latest attempt succeeded. */
  refresh(): Promise<boolean>
  /** The source's health. */
  status(): FlagSourceStatus
  /** Stops watching or polling. Idempotent. */
  close(): Promise<void>
  /**
   * Optional: answers an OFREP bulk request for one context itself (proxy mode). When present the
   * OFREP route forwards every bulk request here instead of evaluating `current()` locally.
   */
  evaluate?(request: ForwardedRequest): Promise<ForwardedAnswer>
}

/** A small listener set shared by the sources. */
export function createListeners<T>(): { add(listener: (event: T) => void): () => void; emit(event: T): void } {
  const listeners = new Set<(event: T) => void>()
  return {
    add(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    emit(event) {
      for (const listener of [...listeners]) {
        try {
          listener(event)
        } catch {
          // A listener's bug must not stop the others nor the source.
        }
      }
    },
  }
}
