// What the relay says of itself: `GET /holdfast/v1/status` (RelayStatus, with `redis` under
// --redis) and `metadata.holdfast` of every bulk answer. Built by the sources (relay.ts's statusOf
// and freshnessOf, and each relay source's own relayStatus).
import type { LeaseRole } from '../store/leaseKeeper'
import type { StoreStatus } from '../store/sharedStore'
import type { PersistenceState } from './persistence'
import type { RefreshResult } from './refreshResult'
import type { SnapshotState } from './snapshotFile'
import type { UpstreamHealth, UpstreamState } from './upstreamHealth'

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
