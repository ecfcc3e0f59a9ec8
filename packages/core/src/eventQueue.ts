// STUB: the events issue replaces this with the persisted, multi-tab, retrying queue of
// CONTRACT §6. This version only keeps events in memory and posts them on flush.
import type { SafeStorage } from './storage'
import type { Clock, EventOptions, EventStats, HoldfastEvent, Logger } from './types'

export interface EventQueueOptions {
  options: EventOptions
  storage: SafeStorage
  /** Names the Web Lock and keys shared by the tabs of one origin. */
  storageName: string
  fetch: typeof fetch
  headers?: Record<string, string> | (() => Record<string, string>)
  logger: Logger
  clock: Clock
  random: () => number
  requestTimeoutMs: number
  /** Called whenever the counts move. */
  onStats: (stats: EventStats) => void
}

export interface EventQueue {
  /** Attaches timers and listeners and picks up events earlier pages left. Idempotent. */
  start(): void
  enqueue(event: HoldfastEvent): void
  flush(): Promise<void>
  stats(): EventStats
  /** Flushes (bounded by `requestTimeoutMs`), then stops timers and listeners. */
  close(): Promise<void>
}

export function createEventQueue(config: EventQueueOptions): EventQueue {
  const queue: HoldfastEvent[] = []
  const counts: EventStats = { queued: 0, sent: 0, dropped: 0, retries: 0 }
  const report = () => config.onStats({ ...counts, queued: queue.length })
  return {
    start() {},
    enqueue(event) {
      queue.push(event)
      report()
    },
    async flush() {
      if (queue.length === 0) return
      const batch = queue.splice(0)
      try {
        const res = await config.fetch(config.options.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ events: batch }) })
        if (res.ok) counts.sent += batch.length
        else queue.unshift(...batch)
      } catch {
        queue.unshift(...batch)
      }
      report()
    },
    stats: () => ({ ...counts, queued: queue.length }),
    async close() {
      await this.flush()
    },
  }
}
