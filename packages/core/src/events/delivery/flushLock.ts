// One flusher at a time per origin and storage name, so two tabs (or two clients in one page)
// never send the same persisted event at once.
//
// - Web Locks (`navigator.locks`, every current browser): exact across tabs, and the browser
//   releases the lock of a tab that crashes or closes.
// - Without them (Safari before 15.4, Node, some webviews), two layers:
//   1. a mutex per storage name in this JavaScript realm: exact for several clients in one page;
//   2. a lease record in the shared storage for other tabs: write {owner, expires}, wait, read it
//      back, go on only if it is still ours; re-check and renew it before every request; a tab
//      that dies lets it expire. Storage has no compare-and-set, so one timeline still overlaps:
//
//        tab A: read(free) ─ write(A) ─ wait ─ read(A) ✓ ─ send batch 1 ─ re-check: B ✗ stop
//        tab B: read(free) ────────────────── write(B) ─ wait ─ read(B) ✓ ─ send batch 1
//
//      B's write must land more than CONFIRM_MS after its own read. Then one batch may go out
//      twice; nothing is lost (events leave storage only after a 2xx) and receivers de-duplicate
//      by id, so the worst case is the at-least-once the protocol already allows.
//
// A lease is a promise about time, and clocks move. One written while the clock ran hours ahead
// (then corrected) says "held until hours from now" although its writer may be long gone. No
// honest lease ends more than one lease period after it is read, so one that claims to is cut to
// one lease period from when it was first seen: a live holder renews it with the corrected clock
// before then, a dead one blocks delivery no longer than that.
import type { SafeStorage } from '../../platform/storage'
import type { Clock } from '../../types'

const LEASE_KEY = 'holdfast:events-lease'
const CONFIRM_MS = 40
const POLL_MS = 50

/** Checks (and extends) that the lock is still held; false means stop sending now. */
export type KeepLock = () => Promise<boolean>

/** One flusher at a time per origin and name, across tabs. */
export interface FlushLock {
  /**
   * Runs `task` holding the lock and resolves true; resolves false without running it when the
   * lock stays busy: at once for `waitMs` 0, otherwise after waiting that long.
   */
  run(task: (keep: KeepLock) => Promise<void>, waitMs: number): Promise<boolean>
  /**
   * The page goes into the back/forward cache (`true`, on `pagehide`) or is shown again (`false`).
   * Frozen there, a pass waiting for an answer would keep the Web Lock, and Chromium evicts a
   * cached page holding one that another tab asks for. So the lock is let go at once (that pass
   * stops at its next `keep()`; its requests already out may still land: at least once) and no
   * pass takes it until the page is shown again: the other tabs send the shared queue meanwhile.
   * The same on `freeze` (a background tab Chrome freezes) until `resume`: a lock held, or a
   * wait for it, would otherwise block every other tab of the origin for as long as it stays frozen.
   */
  away(leaving: boolean): void
  /**
   * Whether the page is away now (see `away`). A pass must not even list the queue then: a frozen
   * page never gets its IndexedDB answer, its transaction stays open, and Chromium evicts the cached
   * page when another tab's write waits on it (IgnoreEventAndEvict).
   */
  isAway(): boolean
}

/** Options of `createFlushLock`. */
export interface FlushLockOptions {
  /** Lock name; tabs using the same name exclude each other. */
  name: string
  storage: SafeStorage
  clock: Clock
  /** Identifies this holder in the lease record. */
  owner: string
  /** How long a lease lives without renewal; longer than one request. */
  leaseMs: number
}

/** Creates the lock; nothing is requested or written until `run`. */
export function createFlushLock(options: FlushLockOptions): FlushLock {
  const { storage, clock } = options
  // Expiry is read on the injected clock (the real one in a browser). The short waits below are
  // about how long a real storage write takes, so they are real timers, and counted rather than
  // measured on that clock (a test's manual clock would never let them end).
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
  const wallNow = () => clock.now()
  /** Leases first seen claiming more than one period ahead, and the end we allow them instead. */
  const cut = new Map<string, number>()
  let away = false
  /** Lets the Web Lock held now go, or gives up waiting for it (see `away`). */
  let letGo = () => {}
  /** This lock holds the storage lease now. */
  let leased = false

  /** Runs `task` under a held Web Lock until it ends or the lock is let go. */
  function held(task: (keep: KeepLock) => Promise<void>): Promise<unknown> {
    let gone = false
    return Promise.race([task(() => Promise.resolve(!gone)), new Promise((done) => (letGo = () => done((gone = true))))])
  }

  async function viaWebLocks(locks: LockManager, task: (keep: KeepLock) => Promise<void>, waitMs: number) {
    if (waitMs <= 0) return locks.request(options.name, { ifAvailable: true }, async (lock) => (lock ? (await held(task), true) : false))
    const controller = new AbortController()
    // Frozen while waiting, the page would be granted the lock and keep it, frozen, until thawed.
    letGo = () => controller.abort()
    const timer = clock.setTimeout(letGo, waitMs)
    try {
      return await locks.request(options.name, { signal: controller.signal }, async () => {
        clock.clearTimeout(timer)
        await held(task)
        return true
      })
    } catch (error) {
      if (controller.signal.aborted) return false
      throw error
    } finally {
      clock.clearTimeout(timer)
    }
  }

  // --- the lease, for tabs without Web Locks ---------------------------------------------------
  const readLease = async () => {
    const raw = (await storage.get(LEASE_KEY)) as { owner?: unknown; expires?: unknown } | undefined
    if (!raw || typeof raw.owner !== 'string' || typeof raw.expires !== 'number') return undefined
    const now = wallNow()
    let expires = Number.isFinite(raw.expires) ? raw.expires : now + options.leaseMs
    if (expires > now + options.leaseMs) {
      const id = `${raw.owner}@${raw.expires}`
      if (!cut.has(id)) cut.set(id, now + options.leaseMs)
      expires = cut.get(id) as number
    }
    return { owner: raw.owner, expires }
  }
  const writeLease = () => storage.set(LEASE_KEY, { owner: options.owner, expires: wallNow() + options.leaseMs })

  async function acquireLease(waitMs: number): Promise<boolean> {
    for (let waited = 0; ; waited += POLL_MS) {
      const lease = await readLease()
      if (!lease || lease.owner === options.owner || lease.expires <= wallNow()) {
        await writeLease()
        await sleep(CONFIRM_MS)
        if ((await readLease())?.owner === options.owner) return true
      }
      if (waited + POLL_MS > waitMs) return false
      await sleep(POLL_MS)
    }
  }

  async function viaLease(task: (keep: KeepLock) => Promise<void>, waitMs: number) {
    // Storage in memory is this page's alone: no other tab can see the events, nothing to share.
    if (storage.kind() === 'memory') return (await task(() => Promise.resolve(true)), true)
    if (!(await acquireLease(waitMs))) return false
    const keep: KeepLock = async () => (await readLease())?.owner === options.owner && (await writeLease())
    try {
      leased = true
      await task(keep)
    } finally {
      leased = false
      if ((await readLease())?.owner === options.owner) await storage.del([LEASE_KEY])
    }
    return true
  }

  return {
    isAway: () => away,
    away(leaving) {
      away = leaving
      // The lease goes with the Web Lock: a frozen page cannot renew it, and until it expired
      // (2 × requestTimeoutMs + 5 s) the other tabs would wait. No read first: a frozen page runs
      // nothing more, so the deletion must be asked for now.
      if (leaving) letGo(), leased && void storage.del([LEASE_KEY])
    },
    async run(task, waitMs) {
      if (away) return false
      const locks = webLocks()
      if (locks) {
        let started = false
        const tracked = (keep: KeepLock) => ((started = true), task(keep))
        try {
          return await viaWebLocks(locks, tracked, waitMs)
        } catch (error) {
          // An opaque origin (sandboxed iframe, file://) refuses Web Locks: fall back below.
          if (started) throw error
        }
      }
      const release = await acquireLocal(options.name, waitMs, clock)
      if (!release) return false
      try {
        return await viaLease(task, waitMs)
      } finally {
        release()
      }
    },
  }
}

function webLocks(): LockManager | undefined {
  const locks = typeof navigator !== 'undefined' ? (navigator as { locks?: LockManager }).locks : undefined
  return locks && typeof locks.request === 'function' ? locks : undefined
}

// --- the mutex of this realm ---------------------------------------------------------------------
// Module state on purpose: every client of the page shares it. Nothing is created at import time.
const realm = new Map<string, Array<() => void>>()

function acquireLocal(name: string, waitMs: number, clock: Clock): Promise<(() => void) | undefined> {
  const release = () => {
    const waiters = realm.get(name)
    const next = waiters?.shift()
    if (next) next()
    else realm.delete(name)
  }
  const waiters = realm.get(name)
  if (!waiters) {
    realm.set(name, [])
    return Promise.resolve(release)
  }
  if (waitMs <= 0) return Promise.resolve(undefined)
  return new Promise((resolve) => {
    const grant = () => {
      clock.clearTimeout(timer)
      resolve(release)
    }
    const timer = clock.setTimeout(() => {
      const i = waiters.indexOf(grant)
      if (i >= 0) waiters.splice(i, 1)
      resolve(undefined)
    }, waitMs)
    waiters.push(grant)
  })
}
