import type { LeaseOutcome, PutOutcome, SharedStore, StoredDocument, StoreNotice, StoreResult, StoreStatus } from './sharedStore'

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Epoch ms now; injected so tests can move time. Default `Date.now`. */
  now?: () => number
  /** TTL of stored documents (renewed by every `put`). Default: never expire. */
  backupTtlMs?: number
}

/**
 * A {@link SharedStore} inside one process, with the same semantics as the Redis one (versions,
 * TTL renewal, lease, notices): what a relay uses when it shares nothing, and what several relays
 * in one process (tests, an embedding app) can share. Notices are delivered asynchronously, as
 * they would be from Redis, so a listener never runs inside the `put` that caused it.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): SharedStore {
  const now = options.now ?? Date.now
  const docs = new Map<string, { doc: StoredDocument; expiresAt: number }>()
  const listeners = new Set<(notice: StoreNotice) => void>()
  let lease: { owner: string; expiresAt: number } | undefined
  const flags = new Map<string, number>()
  let lastTicket = 0
  let closed = false
  const status: StoreStatus = { kind: 'memory', state: 'up', failures: 0 }
  const ok = <T>(value: T): Promise<StoreResult<T>> => Promise.resolve(closed ? { ok: false, error: 'store closed' } : { ok: true, value })
  const emit = (notice: StoreNotice) => {
    queueMicrotask(() => {
      for (const listener of [...listeners]) {
        try {
          listener(notice)
        } catch {}
      }
    })
  }
  const live = (key: string) => {
    const entry = docs.get(key)
    if (entry && entry.expiresAt <= now()) docs.delete(key)
    return docs.get(key)
  }
  const ttl = () => (options.backupTtlMs === undefined ? Infinity : now() + options.backupTtlMs)
  const leaseHolder = () => (lease && lease.expiresAt > now() ? lease.owner : undefined)

  return {
    kind: 'memory',
    open() {},
    connected: () => Promise.resolve(!closed),
    ticket() {
      lastTicket = Math.max(lastTicket + 1, now() * 1000)
      return ok(lastTicket)
    },
    get: (key) => ok(live(key)?.doc),
    peek: (key) => ok(live(key)?.doc.version),
    put(key, doc, owner) {
      if (closed) return Promise.resolve({ ok: false, error: 'store closed' })
      const held = live(key)
      let outcome: PutOutcome
      if (owner !== undefined && leaseHolder() !== owner) outcome = { outcome: 'fenced' }
      else if (held && held.doc.version > doc.version) outcome = { outcome: 'older', current: held.doc.version }
      else if (held && held.doc.version === doc.version) {
        held.expiresAt = ttl()
        outcome = { outcome: 'refreshed' }
      } else {
        docs.set(key, { doc: { ...doc }, expiresAt: ttl() })
        emit({ type: 'changed', key, version: doc.version })
        outcome = { outcome: 'written' }
      }
      return ok(outcome)
    },
    keys: (prefix, limit) => ok([...docs.keys()].filter((key) => key.startsWith(prefix) && live(key)).slice(0, limit)),
    acquireLease(owner, ttlMs) {
      const holder = leaseHolder()
      let outcome: LeaseOutcome
      if (holder === undefined || holder === owner) {
        lease = { owner, expiresAt: now() + ttlMs }
        outcome = { held: true }
      } else outcome = { held: false, retryInMs: lease!.expiresAt - now() }
      return ok(outcome)
    },
    renewLease(owner, ttlMs) {
      if (leaseHolder() !== owner) return ok(false)
      lease = { owner, expiresAt: now() + ttlMs }
      return ok(true)
    },
    releaseLease(owner) {
      if (leaseHolder() !== owner) return ok(false)
      lease = undefined
      emit({ type: 'released' })
      return ok(true)
    },
    raise(name, ttlMs) {
      flags.set(name, now() + ttlMs)
      return ok(undefined)
    },
    raised: (name) => ok((flags.get(name) ?? -Infinity) > now()),
    lower(name) {
      const raised = (flags.get(name) ?? -Infinity) > now()
      flags.delete(name)
      return ok(raised)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    status: () => ({ ...status, lastOkAt: now() }),
    async close() {
      closed = true
      listeners.clear()
    },
  }
}
