// IndexedDB that stalls past its bound (3 s, twice) moves the page to memory. Before, that was for
// the rest of the page's life: every event logged afterwards lived only in memory, and a reload (or
// a crash) lost it, though the stall had long passed. Now the next operation tries IndexedDB
// again (one small write) right after the failover, then at most once a minute; when it takes the
// write, the page goes back, with what it wrote to memory meanwhile. A backend that still fails
// stays given up, without a warning a minute.
// The stall is a transaction whose requests never answer; the minute is the system clock moved
// (fake `Date` and timers; fake-indexeddb answers on setImmediate, not faked here).
import { afterEach, expect, test, vi } from 'vitest'
import { createSafeStorage } from '../../packages/core/src/platform/storage'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const transaction = IDBDatabase.prototype.transaction
afterEach(() => {
  vi.useRealTimers()
  IDBDatabase.prototype.transaction = transaction
})

function open(name: string) {
  const logger = createTestLogger()
  const fallbacks: unknown[] = []
  return { logger, fallbacks, storage: createSafeStorage(undefined, name, logger, (error) => fallbacks.push(error)) }
}

/** IndexedDB wedged until the returned function is called: a write out now fails the page over to memory. */
async function stallUntilFailover(storage: ReturnType<typeof open>['storage']): Promise<() => void> {
  IDBDatabase.prototype.transaction = function () {
    return { objectStore: () => ({ put: () => ({}), get: () => ({}) }) } as never
  }
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  const write = storage.set('holdfast:event:1', { n: 1 })
  await vi.advanceTimersByTimeAsync(3100)
  expect(await write).toBe(false)
  expect(storage.kind()).toBe('memory')
  return () => void (IDBDatabase.prototype.transaction = transaction)
}

test('after a stall, IndexedDB is tried again a minute later: what was written to memory meanwhile is in IndexedDB, and so is what comes after', async () => {
  const name = uniqueStorageName('recover')
  const { storage, fallbacks, logger } = open(name)
  await storage.set('warm', 1)
  const unstall = await stallUntilFailover(storage)
  // The event store writes again, now to memory (eventStore.ts: a failed write is tried once more).
  expect(await storage.set('holdfast:event:1', { n: 1 })).toBe(true)
  unstall()
  // Within the minute (the try right after the failover met the stall): still memory, no try per operation.
  vi.setSystemTime(Date.now() + 30_000)
  expect(await storage.set('holdfast:event:2', { n: 2 })).toBe(true)
  await new Promise((r) => setImmediate(r))
  expect(storage.kind()).toBe('memory')
  // A minute after the failover: the next operation has IndexedDB tried again.
  vi.setSystemTime(Date.now() + 31_000)
  await storage.set('holdfast:event:3', { n: 3 })
  for (let i = 0; i < 50 && storage.kind() === 'memory'; i++) await new Promise((r) => setImmediate(r))
  expect(storage.kind()).toBe('indexeddb')
  expect(await storage.set('holdfast:event:4', { n: 4 })).toBe(true)
  // One event sent meanwhile: its deletion reaches IndexedDB after the copy, not before it.
  await storage.del(['holdfast:event:2'])
  // What a reload reads. Before: nothing of 1-4 (all in memory), so a reload lost them.
  const keys = ['holdfast:event:1', 'holdfast:event:2', 'holdfast:event:3', 'holdfast:event:4']
  expect(await open(name).storage.getMany(keys)).toEqual([{ n: 1 }, undefined, { n: 3 }, { n: 4 }])
  // The failover (what failed, the STORAGE error's message), then the return (no message: no error;
  // the client derives its status again).
  expect(fallbacks).toEqual(['persistent storage failed; running on memory', undefined])
  expect(logger.warnings).toHaveLength(1)
})

test('a backend that still fails stays given up: one try a minute, no warning, no second fallback', async () => {
  const { storage, fallbacks, logger } = open(uniqueStorageName('recover-stuck'))
  await storage.set('warm', 1)
  await stallUntilFailover(storage)
  let tries = 0
  const stuck = IDBDatabase.prototype.transaction
  IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
    tries++
    return stuck.apply(this, args)
  } as never
  for (let minute = 1; minute <= 3; minute++) {
    vi.setSystemTime(Date.now() + 60_000)
    // Several operations in the minute: one try.
    await Promise.all([storage.set('a', minute), storage.get('a'), storage.keys()])
    await vi.advanceTimersByTimeAsync(6200)
    expect(tries).toBe(minute)
    expect(storage.kind()).toBe('memory')
  }
  expect(await storage.get('a')).toBe(3)
  expect(fallbacks).toHaveLength(1)
  expect(logger.warnings).toHaveLength(1)
})

test("the return copies only events: a cache entry another tab cleared (a logout) or wrote anew meanwhile is not put back over it", async () => {
  const name = uniqueStorageName('recover-cache')
  const { storage } = open(name)
  await storage.set('holdfast:flags:user-a', { v: 'before' })
  await storage.set('holdfast:flags:user-b', { v: 'before' })
  const unstall = await stallUntilFailover(storage)
  // On memory, this page refreshes both users' entries and logs an event.
  await storage.set('holdfast:flags:user-a', { v: 'this page, on memory' })
  await storage.set('holdfast:flags:user-b', { v: 'this page, on memory' })
  await storage.set('holdfast:event:9', { n: 9 })
  unstall()
  // Meanwhile another tab of the origin logs user A out (clearCache) and fetches newer values for B.
  const other = open(name).storage
  await other.del(['holdfast:flags:user-a'])
  await other.set('holdfast:flags:user-b', { v: 'other tab, newer' })
  vi.setSystemTime(Date.now() + 61_000)
  await storage.get('holdfast:event:9')
  for (let i = 0; i < 50 && storage.kind() === 'memory'; i++) await new Promise((r) => setImmediate(r))
  expect(storage.kind()).toBe('indexeddb')
  await storage.set('holdfast:event:10', { n: 10 })
  // Before: user A's entry came back after the logout, and B's older values replaced the newer ones.
  expect(await open(name).storage.getMany(['holdfast:flags:user-a', 'holdfast:flags:user-b', 'holdfast:event:9', 'holdfast:event:10'])).toEqual([
    undefined,
    { v: 'other tab, newer' },
    { n: 9 },
    { n: 10 },
  ])
})

test('a system clock set back after the failover does not put off the return for as long: the next operation tries IndexedDB', async () => {
  const name = uniqueStorageName('recover-clock-back')
  const { storage } = open(name)
  await storage.set('warm', 1)
  const unstall = await stallUntilFailover(storage)
  expect(await storage.set('holdfast:event:1', { n: 1 })).toBe(true)
  unstall()
  // The clock is corrected back by an hour (NTP after a laptop's sleep, a user's setting); then a
  // minute and more passes. The next try was set for "a minute after the failover" by the old clock.
  vi.setSystemTime(Date.now() - 3_600_000)
  await storage.set('holdfast:event:2', { n: 2 })
  vi.setSystemTime(Date.now() + 61_000)
  await storage.set('holdfast:event:3', { n: 3 })
  for (let i = 0; i < 50 && storage.kind() === 'memory'; i++) await new Promise((r) => setImmediate(r))
  // Before: memory for another hour, every event logged meanwhile lost by a reload.
  expect(storage.kind()).toBe('indexeddb')
  expect(await open(name).storage.getMany(['holdfast:event:1', 'holdfast:event:2', 'holdfast:event:3'])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
})

test("a logout's clear that IndexedDB stalls past its bound moves the page to memory with a STORAGE error, and the clear is done there before the page goes back", async () => {
  // Before: clear() logged a warning and resolved; the page went on writing to IndexedDB, where the
  // user who left still had their values, and its status said nothing.
  const name = uniqueStorageName('recover-owed-clear')
  const { storage, fallbacks } = open(name)
  await storage.set('holdfast:flags:alice', { v: 'alice' })
  IDBDatabase.prototype.transaction = function () {
    return { objectStore: () => ({ put: () => ({}), get: () => ({}), getAllKeys: () => ({}) }) } as never
  }
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  const cleared = storage.clear('holdfast:flags:')
  await vi.advanceTimersByTimeAsync(3100)
  await expect(cleared).resolves.toBeUndefined()
  expect(storage.kind()).toBe('memory')
  expect(fallbacks).toEqual(['clearing the cache failed; running on memory'])
  IDBDatabase.prototype.transaction = transaction
  // The next user's answer, written while on memory: not beside alice's on disk.
  await storage.set('holdfast:flags:bob', { v: 'bob' })
  for (let i = 0; i < 50 && storage.kind() === 'memory'; i++) await new Promise((r) => setImmediate(r))
  // The stall passed: the try right after the failover paid the clear, then went back.
  expect(storage.kind()).toBe('indexeddb')
  expect(await open(name).storage.getMany(['holdfast:flags:alice', 'holdfast:flags:bob'])).toEqual([undefined, undefined])
})
