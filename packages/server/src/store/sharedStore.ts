// The store that relays share: versioned documents, change notices and one lease. Two
// implementations: Redis (`createRedisStore`, several processes) and memory (`createMemoryStore`,
// one process: the embedded default and tests). Every method resolves; failures are values.

/**
 * One stored document: the definitions a relay polled, or one context's answer in proxy mode.
 * `version` orders documents across every relay on the store (it comes from {@link SharedStore.ticket},
 * never from a relay's own clock, which may be hours off); `fetchedAt` is informational only.
 */
export interface StoredDocument {
  /** Position in the store's order, from {@link SharedStore.ticket}. A higher version is newer. */
  version: number
  /** Epoch ms when the writing relay fetched `body` from its upstream (that relay's clock). */
  fetchedAt: number
  /** The payload, as the relay serves it (JSON text). */
  body: string
  /** The upstream's ETag for `body`, so whichever relay polls next can send `If-None-Match`. Default: none. */
  etag?: string
  /**
   * The definitions' recent history (JSON, `flags/lineage.ts`), so a follower that missed steps can
   * tell a fleet that shrank in steps from a broken upstream. Default: none (an older relay wrote it).
   */
  lineage?: string
}

/**
 * A version taken from the store ({@link SharedStore.ticket}) ahead of the answer it will order
 * (see `SharedContexts.ticket`). Here, beside the store's call: dropQueue.ts took it from
 * sharedContexts.ts, which creates the drop queue, an import cycle.
 */
export type SharedTicket = Promise<StoreResult<number>>

/** What a {@link SharedStore} call gives back: the value, or why the store could not answer. */
export type StoreResult<T> =
  | {
      /** The command succeeded. */
      ok: true
      /** What it returned. */
      value: T
    }
  | {
      /** The command failed or timed out; the store's status says so too. */
      ok: false
      /** What the failure said, for the log. */
      error: string
    }

/**
 * What {@link SharedStore.put} did: `written` (the store held nothing for the key or an older
 * version; a notice went out), `refreshed` (it held this very version; only its TTL was renewed),
 * `older` (it holds a newer version, given as `current`; nothing changed) or `fenced` (the put
 * named a lease owner that no longer holds the lease; nothing changed).
 */
export type PutOutcome =
  | {
      /** `written`: the store held nothing for the key or an older version; a notice went out. */
      outcome: 'written'
    }
  | {
      /** `refreshed`: the store held this very version; only its TTL was renewed. */
      outcome: 'refreshed'
    }
  | {
      /** `older`: the store holds a newer version; nothing changed. */
      outcome: 'older'
      /** The newer version the store holds. */
      current: number
    }
  | {
      /** `fenced`: the lease owner named no longer holds the lease; nothing changed. */
      outcome: 'fenced'
    }

/** What {@link SharedStore.acquireLease} found: the lease is ours now, or someone else's for `retryInMs` more. */
export type LeaseOutcome =
  | {
      /** The lease is this owner's now (taken or renewed). */
      held: true
    }
  | {
      /** Someone else holds the lease. */
      held: false
      /** How long until it ends, in ms: when to try again. */
      retryInMs: number
    }

/**
 * A notice from the store: `changed` (a document was written, by any relay, this one included),
 * `released` (the lease holder let go, so a follower may take it now) or `connected` (the store
 * is reachable again after a break: notices may have been missed, so re-read what matters).
 */
export type StoreNotice =
  | {
      /** `changed`: a document was written, by any relay, this one included. */
      type: 'changed'
      /** The key written. */
      key: string
      /** The version it was written at (the store's order). */
      version: number
    }
  | {
      /** `released`: the lease holder let go, so a follower may take it now. */
      type: 'released'
    }
  | {
      /** `connected`: the store is reachable again after a break; notices may have been missed. */
      type: 'connected'
    }

/**
 * The connection as operators see it: `connecting` (not reached yet), `up` (the latest command
 * succeeded) or `down` (the connection broke, the latest command failed or timed out, or Redis
 * refuses a command the relay needs: its scripts without `+@scripting`, `-BUSY`, OOM; until that
 * command is answered, or 30 s after it was last refused).
 */
export interface StoreStatus {
  /** Which implementation: Redis (`--redis`), or memory (relays sharing one process). */
  kind: 'redis' | 'memory'
  /** `connecting` (not reached yet), `up` (the latest command succeeded) or `down` (the connection broke, the latest command failed or timed out, or Redis refuses a command the relay needs). */
  state: 'connecting' | 'up' | 'down'
  /** Epoch ms of the latest successful command. Absent until one succeeds. */
  lastOkAt?: number
  /**
   * Ms since the latest successful command, on a monotonic clock (what
   * `holdfast_redis_last_ok_age_seconds` says): read against `lastOkAt`, a wall clock set back an
   * hour made it 0 for the hour. Absent until one succeeds, and from a store without it (memory).
   */
  lastOkAgeMs?: number
  /** The latest failure, kept after recovery so an operator can see what happened. */
  lastError?: string
  /**
   * Epoch ms when `lastError` last happened (a failure seen again while it lasts moves it on):
   * once `state` is `up` again, an error older than `lastOkAt` is history, not the present.
   */
  lastErrorAt?: number
  /** Commands that failed or timed out since the store was opened. */
  failures: number
  /**
   * Redis: the namespace of this relay's keys (`holdfast:<namespace>:…`), `NAME:<hash>` with
   * `--redis-namespace`, else the hash of the source and credentials. Relays share exactly when
   * theirs are equal, so comparing it across two relays says whether they do. A relay that sends
   * credentials upstream shows `*` for the hash (`NAME:*`, `*`): the status is public without an
   * API key, and an unsalted hash of a weak key could be confirmed by guessing offline.
   */
  namespace?: string
}

/**
 * A store shared by relays (`--redis`). Keys are short names (`definitions`,
 * `context:<hash>`) inside the store's namespace. Nothing here ever rejects or throws: a store
 * that is down or slow answers `{ ok: false }` within its command timeout, so a caller that must
 * not wait (serving a request) simply never awaits it.
 */
export interface SharedStore {
  /** Which implementation this is. */
  readonly kind: 'redis' | 'memory'
  /** Starts connecting (and retrying with backoff); resolves at once. Idempotent. */
  open(): void
  /** Resolves true once connected (notices flowing), or false after `timeoutMs` without that. */
  connected(timeoutMs: number): Promise<boolean>
  /**
   * A version newer than every version handed out before on this store, for {@link put}; above 0
   * (0 is the place of an answer read back from a data dir that recorded none: older than any).
   */
  ticket(): Promise<StoreResult<number>>
  /** Only the version stored under `key` (cheap: no body), or undefined when there is none. */
  peek(key: string): Promise<StoreResult<number | undefined>>
  /** The document stored under `key`, or undefined when there is none (never written, expired, flushed). */
  get(key: string): Promise<StoreResult<StoredDocument | undefined>>
  /**
   * Stores `doc` under `key` unless a newer version is there (an older version never overwrites a
   * newer one), and renews the key's backup TTL either way unless it is older. A write publishes a
   * `changed` notice to every subscriber. With `lease`, only while that owner holds the lease
   * (else `fenced`): a leader stalled past its lease must not write over its successor's version.
   */
  put(key: string, doc: StoredDocument, lease?: string): Promise<StoreResult<PutOutcome>>
  /** The keys that hold documents and start with `prefix` (at most `limit`). */
  keys(prefix: string, limit: number): Promise<StoreResult<string[]>>
  /** Takes the lease for `owner` for `ttlMs` when it is free (or already `owner`'s, then renews it). */
  acquireLease(owner: string, ttlMs: number): Promise<StoreResult<LeaseOutcome>>
  /** Extends `owner`'s lease by `ttlMs`; `false` when it is no longer `owner`'s (expired, or taken over). */
  renewLease(owner: string, ttlMs: number): Promise<StoreResult<boolean>>
  /** Gives the lease up if it is still `owner`'s, and tells the followers (`released`). */
  releaseLease(owner: string): Promise<StoreResult<boolean>>
  /**
   * Raises the flag `name` for `ttlMs` (renewed by raising it again): a fact about the fleet that
   * lasts only while someone keeps saying it, such as "event streams are open on some relay".
   * Optional (stores written before it have none: nothing is raised, nothing is seen raised).
   */
  raise?(name: string, ttlMs: number): Promise<StoreResult<void>>
  /** Whether some relay raised the flag `name` (see {@link raise}) and its TTL has not run out. Optional. */
  raised?(name: string): Promise<StoreResult<boolean>>
  /** Lowers the flag `name` at once, answering whether it was raised: of relays lowering it together, one hears true. Optional. */
  lower?(name: string): Promise<StoreResult<boolean>>
  /** Calls `listener` for every notice until the returned function is called. */
  subscribe(listener: (notice: StoreNotice) => void): () => void
  /** The connection now. */
  status(): StoreStatus
  /**
   * Whether the store answers commands now, though `status()` may say `down` because it refused
   * one (OOM, BUSY, READONLY): asking again is then what tells when it takes them, and costs no
   * timeout. Optional (a store without it is asked only while `up`).
   */
  answering?(): boolean
  /** Disconnects. Idempotent; later calls answer `{ ok: false }`. */
  close(): Promise<void>
}
