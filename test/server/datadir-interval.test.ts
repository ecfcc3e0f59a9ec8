// The least time between two data-dir writes (`minIntervalMs`; in proxy mode 0.5 s, or 1 s per MB of
// the file) held only between writes chained back to back: a change that came just after a write
// ended, with nothing else pending, was written at once. A crawler whose changes came a little
// apart, or a loaded machine, got a large file rewritten many times a second (and made
// relay-datadir-large's "not twice a second" flaky). The interval now holds between any two writes.
import { describe, expect, it } from 'vitest'
import type { GenerationStore } from '../../packages/server/src/flags/generations'
import { createPersistence } from '../../packages/server/src/flags/persistence'

function recordingStore(): GenerationStore & { at: number[]; payloads: string[] } {
  const at: number[] = []
  const payloads: string[] = []
  return {
    dir: '/nowhere',
    at,
    payloads,
    loadNewest: async () => ({ skipped: [] }),
    list: async () => [],
    async save(payload) {
      at.push(performance.now())
      payloads.push(payload)
      return payloads.length
    },
  }
}

describe('the data-dir writer', () => {
  it('waits out the interval before a write that follows an idle writer', async () => {
    const store = recordingStore()
    const persistence = createPersistence({ store, now: Date.now, minIntervalMs: 300 })
    persistence.schedule(() => 'first')
    await persistence.flush()
    // Nothing was pending when the first write ended: the next change starts a new drain.
    persistence.schedule(() => 'second')
    await persistence.flush()
    expect(store.payloads).toEqual(['first', 'second'])
    // Timers may fire a millisecond early by performance.now().
    expect(store.at[1] - store.at[0]).toBeGreaterThanOrEqual(295)
    await persistence.close()
  })

  it('writes the first change at once, and a change after the interval has passed at once too', async () => {
    const store = recordingStore()
    const persistence = createPersistence({ store, now: Date.now, minIntervalMs: 100 })
    const started = performance.now()
    persistence.schedule(() => 'first')
    await persistence.flush()
    expect(store.at[0] - started).toBeLessThan(50)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const later = performance.now()
    persistence.schedule(() => 'second')
    await persistence.flush()
    expect(store.at[1] - later).toBeLessThan(50)
    await persistence.close()
  })

  it('a close during the wait writes the newest payload at once', async () => {
    const store = recordingStore()
    const persistence = createPersistence({ store, now: Date.now, minIntervalMs: 30_000 })
    persistence.schedule(() => 'first')
    await persistence.flush()
    persistence.schedule(() => 'stale')
    persistence.schedule(() => 'newest')
    const closing = performance.now()
    expect(await persistence.close()).toBe(true)
    expect(store.payloads).toEqual(['first', 'newest'])
    expect(store.at[1] - closing).toBeLessThan(1000)
  })
})
