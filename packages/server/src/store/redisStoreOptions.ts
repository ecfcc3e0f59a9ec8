// What an embedder (or relayStore.ts, from --redis) sets on a Redis store, and the defaults
// createRedisStore fills in.
import type { ServerLogger } from '../logger'

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Required. */
  url: string
  /**
   * Names this store's keys: `holdfast:<namespace>:…`. Relays share documents only when their
   * namespaces match; use {@link storeNamespace} (a hash of the source and its credentials) so
   * fleets on one Redis never mix flags. Required.
   */
  namespace: string
  /**
   * The namespace as `status().namespace` shows it; default `namespace`. A relay that sends
   * credentials shows its hash hidden (see `createRelayStore`).
   */
  shownNamespace?: string
  /** How long any one command may take before it counts as failed. Default 500 ms. */
  commandTimeoutMs?: number
  /**
   * TTL of every stored document, renewed on every successful poll, changed or not, so a quiet
   * upstream never lets the backup expire. Default 7 days.
   */
  backupTtlMs?: number
  /**
   * Longest wait between reconnection attempts after a connection fails or is refused (they back
   * off from 100 ms, with jitter). Default 2000 ms. A connection Redis does not answer (its TCP
   * connect timed out, its handshake or PING unanswered) is replaced after a wait that grows
   * further, to 30 s (or this, when longer).
   */
  reconnectMaxMs?: number
  /**
   * When no command has succeeded for this long, a PING checks the connection, so the status
   * recovers (or notices an outage) even while the relay has nothing to ask; the subscription is
   * PINGed this often too. A connection whose PING is not answered within the command timeout is
   * connected again (a half-open one would otherwise be written to for ever, and a subscription
   * would miss every notice without failing). Default 2000 ms.
   */
  heartbeatMs?: number
  /** Where connection changes are reported. Default: none. */
  log?: ServerLogger
}

export const DEFAULT_TIMEOUT_MS = 500
export const DEFAULT_BACKUP_TTL_MS = 7 * 24 * 3600 * 1000
export const DEFAULT_RECONNECT_MAX_MS = 2000
/**
 * The longest wait before a connection let go (its TCP connect, handshake or PING unanswered) is replaced. From
 * 100 ms, doubling, with jitter, while the replacements go unanswered; from 100 ms again once one
 * is ready. Capped at `reconnectMaxMs` (2 s) instead, a fleet opened a connection per relay every
 * 1.2-3 s into a Redis stuck for good, filling a SIGSTOPped Redis' listen queue.
 */
export const REPLACE_MAX_MS = 30_000
