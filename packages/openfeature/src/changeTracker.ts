// Which flags changed, for PROVIDER_CONFIGURATION_CHANGED's `flagsChanged`. Holdfast's `subscribe`
// fires once per change batch (one response, one failure, one context switch); the tracker keeps
// the details it last reported per key and compares them with what the client holds now. Built
// only on the public client API, so a redesign of the store underneath changes nothing here.
import { stableStringify, type Details, type FlagClient } from '@holdfast/core'

/** Remembers the details last seen per flag key and says which keys differ now. */
export interface ChangeTracker {
  /** Takes what the client holds now as the baseline; reports nothing. */
  reset(): void
  /** The keys whose details changed since the last call (or reset), in a stable order. */
  changed(): string[]
  /**
   * A key the app read from the build-time `fallback`: compared from now on too. The snapshot
   * names only the flags this user's own answers hold, so without this a fallback flag the first
   * answer leaves out would fall to the caller's default unreported.
   */
  watch(key: string): void
}

/**
 * The details `c` holds for `key`, whatever their type (`null` as the default asks for the held
 * value), without logging an exposure: comparing, or reading a flag's staleness, is not showing.
 */
export const read = (c: FlagClient, key: string) => c.getDetails<unknown>(key, null, { exposure: false })

export function createChangeTracker(client: () => FlagClient | undefined): ChangeTracker {
  let seen = new Map<string, Details<unknown>>()

  function current(c: FlagClient): Map<string, Details<unknown>> {
    const now = new Map<string, Details<unknown>>()
    // The snapshot names the flags held for this context; keys seen before are read again so a
    // removed flag (now the caller's default) is reported once, then forgotten.
    const keys = new Set<string>(seen.keys())
    for (const entry of c.snapshot().flags) keys.add(entry.key)
    for (const key of keys) {
      const details = read(c, key)
      if (details.source !== 'default' || details.errorCode !== 'FLAG_NOT_FOUND') now.set(key, details)
    }
    return now
  }

  return {
    reset() {
      const c = client()
      seen = c ? current(c) : new Map()
    },
    changed() {
      const c = client()
      if (!c) return []
      const now = current(c)
      const keys: string[] = []
      for (const [key, details] of now) {
        const before = seen.get(key)
        if (!before || !sameDetails(before, details)) keys.push(key)
      }
      for (const key of seen.keys()) if (!now.has(key)) keys.push(key)
      seen = now
      return keys.sort()
    },
    watch(key) {
      const c = client()
      if (c && !seen.has(key)) seen.set(key, read(c, key))
    },
  }
}

/** Equal as an OpenFeature caller would see them: value, variant, reason, code, metadata, source, staleness, age. */
export function sameDetails(a: Details<unknown>, b: Details<unknown>): boolean {
  if (a === b) return true
  return (
    a.variant === b.variant &&
    a.reason === b.reason &&
    a.errorCode === b.errorCode &&
    a.source === b.source &&
    a.stale === b.stale &&
    a.updatedAt === b.updatedAt &&
    (Object.is(a.value, b.value) || stableStringify(a.value) === stableStringify(b.value)) &&
    (a.metadata === b.metadata || stableStringify(a.metadata ?? {}) === stableStringify(b.metadata ?? {}))
  )
}
