// IndexedDB's bound (3 s) against a page that was frozen, asleep or stalled while an operation was
// out. On thaw the bound's timer can run before the operation's own answer, though IndexedDB was
// fine: the time passed was the freeze's, not IndexedDB's. That must not move the page to memory,
// where every later event lives only until a reload. A really stuck IndexedDB must still fail
// over within its bound. The freeze is the system clock jumping while no timer runs; the timers
// are then run before fake-indexeddb's answer (which comes on setImmediate, not faked here).
import { afterEach, expect, test, vi } from 'vitest'
import { createSafeStorage } from '../../packages/core/src/platform/storage'
import { createTestLogger, uniqueStorageName } from '../support/clock'

afterEach(() => {
  vi.useRealTimers()
})

function open(name: string) {
  const logger = createTestLogger()
  const fallbacks: unknown[] = []
  return { logger, fallbacks, storage: createSafeStorage(undefined, name, logger, (error) => fallbacks.push(error)) }
}

test('a write out while the page was frozen for a minute stays in IndexedDB, and so do later ones', async () => {
  const name = uniqueStorageName('thaw')
  const { storage, fallbacks, logger } = open(name)
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  const written = storage.set('holdfast:event:1', { n: 1 })
  // Frozen for a minute with the write out; on thaw the bound's timer runs first.
  vi.setSystemTime(Date.now() + 60_000)
  vi.advanceTimersByTime(3000)
  vi.useRealTimers()
  expect(await written).toBe(true)
  expect(fallbacks).toEqual([])
  expect(logger.warnings).toEqual([])
  expect(storage.kind()).toBe('indexeddb')
  // What a reload would read: both writes, the one out during the freeze and the next.
  expect(await storage.set('holdfast:event:2', { n: 2 })).toBe(true)
  expect(await open(name).storage.getMany(['holdfast:event:1', 'holdfast:event:2'])).toEqual([{ n: 1 }, { n: 2 }])
})

test('an IndexedDB that never answers still fails over within its bound, on time or after a freeze', async () => {
  const transaction = IDBDatabase.prototype.transaction
  const { storage, fallbacks } = open(uniqueStorageName('thaw-stuck'))
  const again = open(uniqueStorageName('thaw-stuck-2'))
  // Both opened before IndexedDB wedges.
  await storage.set('warm', 1)
  await again.storage.set('warm', 1)
  // A transaction whose requests never answer (a wedged database): nothing settles by itself.
  IDBDatabase.prototype.transaction = function () {
    return { objectStore: () => ({ get: () => ({}) }) } as never
  }
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  try {
    let settled = false
    const read = storage.get('warm').then(() => (settled = true))
    // Frozen for a minute, then thawed: failed over 3 s after the thaw at the latest.
    vi.setSystemTime(Date.now() + 60_000)
    await vi.advanceTimersByTimeAsync(3000)
    await vi.advanceTimersByTimeAsync(3100)
    expect(settled).toBe(true)
    await read
    expect(fallbacks).toHaveLength(1)
    expect(storage.kind()).toBe('memory')
    // Not frozen: on time, within the 3 s bound.
    let other = false
    const second = again.storage.get('x').then(() => (other = true))
    await vi.advanceTimersByTimeAsync(2900)
    expect(other).toBe(false)
    await vi.advanceTimersByTimeAsync(200)
    await second
    expect(again.fallbacks).toHaveLength(1)
  } finally {
    vi.useRealTimers()
    IDBDatabase.prototype.transaction = transaction
  }
})
