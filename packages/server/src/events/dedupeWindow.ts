// The bounded memory of which event ids were accepted. Ids are kept in acceptance order (a Map
// iterates in insertion order), so the oldest is always first and eviction is O(1).

/** Default {@link DedupeWindowOptions.maxIds}: 100,000 ids (about 10 MB). */
export const DEFAULT_DEDUPE_MAX_IDS = 100_000

/** Default {@link DedupeWindowOptions.windowMs}: 24 hours. */
export const DEFAULT_DEDUPE_WINDOW_MS = 24 * 60 * 60 * 1000

/** Options of {@link createDedupeWindow}. */
export interface DedupeWindowOptions {
  /** The most ids remembered; the oldest go first. Default {@link DEFAULT_DEDUPE_MAX_IDS}. */
  maxIds?: number
  /** How long an id is remembered after it was accepted. Default {@link DEFAULT_DEDUPE_WINDOW_MS}. */
  windowMs?: number
  /** The clock (epoch ms). Default `Date.now`; the events sink (`eventsDedupe`) passes one that does not step with the system clock. */
  now?: () => number
}

/**
 * Which ids were accepted recently: an id is remembered while it is among the last `maxIds`
 * accepted AND was accepted less than `windowMs` ago. Past either bound it is forgotten, and a
 * late retry of it is accepted again (at-least-once).
 */
export interface DedupeWindow {
  /** Claims `id`: true when it is new (now remembered), false when it is a duplicate. */
  claim(id: string): boolean
  /** Forgets a claim whose write failed, so the client's retry is stored rather than refused. */
  release(id: string): void
  /** Remembers `id` as accepted at `at` (read back at start). Call oldest first. */
  restore(id: string, at: number): void
  /** Ids remembered now. */
  size(): number
  /** Forgets everything. */
  clear(): void
}

/** Creates a {@link DedupeWindow}. */
export function createDedupeWindow(options: DedupeWindowOptions = {}): DedupeWindow {
  const maxIds = Math.max(1, Math.floor(positiveOr(options.maxIds, DEFAULT_DEDUPE_MAX_IDS)))
  const windowMs = positiveOr(options.windowMs, DEFAULT_DEDUPE_WINDOW_MS)
  const now = options.now ?? Date.now
  const acceptedAt = new Map<string, number>()

  const evict = (time: number) => {
    for (const [id, at] of acceptedAt) {
      if (acceptedAt.size <= maxIds && at > time - windowMs) break
      acceptedAt.delete(id)
    }
  }

  return {
    claim(id) {
      const time = now()
      evict(time)
      const at = acceptedAt.get(id)
      if (at !== undefined && at > time - windowMs) return false
      // Re-inserting moves it to the end: it was accepted (again) now.
      acceptedAt.delete(id)
      acceptedAt.set(id, time)
      evict(time)
      return true
    },
    release: (id) => void acceptedAt.delete(id),
    restore(id, at) {
      acceptedAt.delete(id)
      acceptedAt.set(id, at)
      if (acceptedAt.size > maxIds) evict(now())
    },
    size: () => acceptedAt.size,
    clear: () => acceptedAt.clear(),
  }
}

function positiveOr(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback
}
