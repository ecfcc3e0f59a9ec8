import { randomUUID } from 'node:crypto'
import type { ServerLogger } from '../logger'
import type { SharedStore } from './sharedStore'

/**
 * What a relay on a shared store does about its upstream: `leader` (it holds the lease: it polls
 * and publishes), `follower` (another relay holds it: take documents from the store) or `solo`
 * (the store cannot be reached: poll on your own rather than serve ever older values; the store
 * catches up when it returns).
 */
export type LeaseRole = 'leader' | 'follower' | 'solo'

/** Options of {@link createLeaseKeeper}. */
export interface LeaseKeeperOptions {
  /** The shared store the lease lives in (Redis, or memory in tests). Required. */
  store: SharedStore
  /** This relay's name on the lease. Default: a random UUID (unique per process start). */
  owner?: string
  /**
   * Lease TTL. The leader renews every third of it; when the leader dies, a follower takes over
   * when the lease ends, at most one TTL after the leader's last renewal (a leader that closes
   * releases it, so a follower takes over at once). Default 15000 ms.
   */
  ttlMs?: number
  /** Called whenever {@link LeaseKeeper.role} changes. Default: none. */
  onChange?: (role: LeaseRole) => void
  /**
   * A clock in ms, used for durations only. Default `performance.now()`: monotonic, so a wall clock
   * set back by hours cannot keep a cut-off leader believing in its lease.
   */
  now?: () => number
  /** Where changes of role are reported. Default: none. */
  log?: ServerLogger
}

/** The driver of one relay's lease: see {@link createLeaseKeeper}. */
export interface LeaseKeeper {
  /** This relay's name on the lease. */
  readonly owner: string
  /** The role now (`follower` before {@link start}). */
  role(): LeaseRole
  /** Starts competing for the lease. Idempotent; resolves once the first attempt settled (its role known). */
  start(): Promise<void>
  /** Stops, releasing the lease if held so a follower takes over at once. Never rejects. */
  stop(): Promise<void>
}

/** The default lease TTL of {@link createLeaseKeeper}: 15 s. */
export const DEFAULT_LEASE_TTL_MS = 15_000
/** Bounds of a lease TTL (`redis.leaseTtlMs`, `sharedStore.leaseTtlMs`): renewed every third of it, so 0 would be a tight loop against the store. */
export const MIN_LEASE_TTL_MS = 100
export const MAX_LEASE_TTL_MS = 3_600_000

/**
 * Keeps one relay's side of the lease: tries to take it (when it is free, or the moment the holder
 * releases it or its TTL runs out), renews it every third of the TTL while held, and steps down as
 * soon as a renewal says it is someone else's — or, when the store stops answering, before the
 * lease could have expired (so two leaders never overlap by this relay's doing). A relay that has
 * had no answer from the store for a whole TTL (or never had one) is `solo`.
 */
export function createLeaseKeeper(options: LeaseKeeperOptions): LeaseKeeper {
  const { store } = options
  const ttl = options.ttlMs ?? DEFAULT_LEASE_TTL_MS
  const now = options.now ?? (() => performance.now())
  const owner = options.owner ?? randomUUID()
  let started = false
  let stopped = false
  let held = false
  let confirmedAt = 0 // when the latest successful acquire/renew was *sent*: the lease lasts at least ttl from then
  let contactAt: number | undefined
  let current: LeaseRole = 'follower'
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined
  let again = false
  let unsubscribe: (() => void) | undefined
  let first: Promise<void> | undefined

  const roleNow = (): LeaseRole => {
    if (held) return 'leader'
    if (contactAt === undefined || now() - contactAt > ttl) return 'solo'
    return 'follower'
  }

  const update = () => {
    const next = roleNow()
    if (next === current) return
    options.log?.info(`lease (${owner.slice(0, 8)}): ${current} → ${next}`)
    current = next
    try {
      options.onChange?.(next)
    } catch (error) {
      options.log?.error(`a lease listener threw: ${(error as Error).message}`)
    }
  }

  const schedule = (ms: number) => {
    if (stopped) return
    clearTimeout(timer)
    timer = setTimeout(kick, Math.max(0, Math.round(ms)))
    timer.unref?.()
  }

  const tick = async () => {
    const sentAt = now()
    if (held) {
      const renewed = await store.renewLease(owner, ttl)
      if (stopped) return
      if (renewed.ok) {
        contactAt = now()
        if (renewed.value) {
          confirmedAt = sentAt
          schedule(ttl / 3)
        } else {
          // Expired and taken, or flushed: not ours any more. Try again at once (a flushed lease is free).
          held = false
          schedule(0)
        }
      } else {
        // Step down before the lease could run out, leaving a margin for clocks and a slow reply.
        if (now() - confirmedAt >= ttl * 0.8) held = false
        schedule(Math.min(ttl / 6, 1000))
      }
    } else {
      const acquired = await store.acquireLease(owner, ttl)
      if (stopped) {
        if (acquired.ok && acquired.value.held) await store.releaseLease(owner)
        return
      }
      if (acquired.ok) {
        contactAt = now()
        if (acquired.value.held) {
          held = true
          confirmedAt = sentAt
          schedule(ttl / 3)
        } else schedule(Math.min(acquired.value.retryInMs + 10, ttl / 2))
      } else schedule(Math.min(ttl / 6, 1000))
    }
    update()
  }

  // One attempt at a time; a kick during one runs another right after it.
  function kick() {
    if (stopped) return
    if (running) {
      again = true
      return
    }
    running = tick()
      .catch((error) => options.log?.error(`lease: ${(error as Error).message}`))
      .finally(() => {
        running = undefined
        if (again) {
          again = false
          kick()
        }
      })
  }

  return {
    owner,
    role: () => current,
    start() {
      if (started) return first ?? Promise.resolve()
      started = true
      store.open()
      unsubscribe = store.subscribe((notice) => {
        // The holder let go, or the store is back: try now instead of at the next timer.
        if (!held && (notice.type === 'released' || notice.type === 'connected')) kick()
      })
      kick()
      first = running?.then(() => undefined) ?? Promise.resolve()
      return first
    },
    async stop() {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      unsubscribe?.()
      await running
      if (held) {
        held = false
        await store.releaseLease(owner)
      }
    },
  }
}
