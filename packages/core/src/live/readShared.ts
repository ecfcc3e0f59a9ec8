// A full answer another tab posted over the channel (tabs.ts), read before it is adopted.
import type { PlatformKit } from '../platform/kit'
import type { OkResult } from '../flags/sync'

/**
 * A full answer another tab posted, read like a response: that tab may run another Holdfast
 * version (or be a stray script). An entry that cannot be read, or whose value is not JSON, is
 * skipped, which makes the answer partial: the held values stay, never "every other flag is gone".
 */
export function readShared(shared: OkResult, kit: PlatformKit): OkResult {
  const entries = []
  for (const item of shared.entries as unknown[]) {
    const entry = kit.parseEntry(item)
    if (entry && (entry.value !== undefined || (item as { value?: unknown }).value == null)) entries.push(entry)
  }
  const { etag, upstream } = shared
  return {
    kind: 'ok',
    entries,
    skipped: shared.entries.length - entries.length + (shared.skipped === 0 ? 0 : 1),
    etag: typeof etag === 'string' ? etag : undefined,
    // Another tab may run another version: a fetchedAt that is not a time is none (it is compared).
    upstream: upstream && { fetchedAt: Number.isFinite(upstream.fetchedAt) ? upstream.fetchedAt : undefined, stale: upstream.stale === true },
  }
}
