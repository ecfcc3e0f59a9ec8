// A page being unloaded sends its own events from memory (flusher `leave`, CONTRACT §6: flushed when
// the page is hidden), unless a tab was sending the queue as the page last knew it. A pass that
// threw (storage failing mid-pass) is sending nothing: it must not keep `leave` quiet for the rest
// of the page's life.
import { expect, test } from 'vitest'
import { createFlusher } from '../../packages/core/src/events/delivery/flusher'
import type { FlushLock } from '../../packages/core/src/events/delivery/flushLock'
import type { StoredEvent, StoreReader } from '../../packages/core/src/events/delivery/storeReader'
import { platformKit } from '../../packages/core/src/platform/kit'
import { createManualClock } from '../support/clock'

/** The real flusher over the given store, lock and fetch, on a manual clock. */
const flusherOf = (store: StoreReader, lock: FlushLock, fetch: typeof globalThis.fetch) =>
  createFlusher({
    store,
    lock,
    batchSize: 100,
    url: 'http://127.0.0.1:9/events',
    fetch,
    requestTimeoutMs: 1000,
    clock: createManualClock(),
    logger: { warn() {}, error() {} } as never,
    signal: new AbortController().signal,
    counts: { sent: 0, dropped: 0, retries: 0, retriedRequests: 0 } as never,
    report: () => {},
    kit: platformKit,
  })
const event = (key: string): StoredEvent => ({ key, event: { id: key, type: 'custom', name: 'clicked', time: 1 } }) as StoredEvent

test('a pass that threw under the lock does not keep a page that is left from sending its events', async () => {
  const keys = ['k1', 'k2']
  const store: StoreReader = {
    list: async () => keys,
    read: async (wanted) => ({ events: wanted.map(event), corrupt: [] }),
    remove: async () => {},
    queued: (list) => list.length,
  }
  const lock = {
    run: async (task: Parameters<FlushLock['run']>[0]) => {
      await task(async () => true)
      return true
    },
    away: () => {},
    isAway: () => false,
  } as unknown as FlushLock
  const sent: Array<{ keepalive: boolean | undefined; ids: string[] }> = []
  let failing = true
  const fetch = (async (_url: string, init: RequestInit) => {
    sent.push({ keepalive: init.keepalive, ids: (JSON.parse(String(init.body)) as { events: Array<{ id: string }> }).events.map((e) => e.id) })
    return new Response(null, { status: 202 })
  }) as typeof globalThis.fetch
  const flusher = flusherOf(
    { ...store, read: async (wanted) => (failing ? Promise.reject(new Error('IndexedDB closed')) : store.read(wanted)) },
    lock,
    fetch,
  )
  await expect(flusher.run({ keepalive: false, waitMs: 0, deadline: Infinity, proceed: () => true })).rejects.toThrow('IndexedDB closed')
  failing = false
  await flusher.leave(keys)
  expect(sent).toEqual([{ keepalive: true, ids: ['k1', 'k2'] }])
})

// A page entering the back/forward cache lets the lock go (`FlushLock.away`). The pass its
// `pagehide`/hidden triggers must then not list the queue: a frozen page never gets the IndexedDB
// answer, the read transaction stays open, and Chromium evicts the cached page as soon as another
// tab's write waits on it (test/e2e/tabs-lifecycle.test.ts "mid-flush" proves that part in Chromium).
test('a pass while the page is away starts no storage step and says busy', async () => {
  const steps: string[] = []
  const store: StoreReader = {
    list: async () => (steps.push('list'), ['k1']),
    read: async (wanted) => (steps.push('read'), { events: wanted.map(event), corrupt: [] }),
    remove: async () => void steps.push('remove'),
    queued: (list) => list.length,
  }
  let away = true
  const lock = {
    run: async (task: Parameters<FlushLock['run']>[0]) => (away ? false : (await task(async () => true), true)),
    away: (leaving: boolean) => void (away = leaving),
    isAway: () => away,
  } as unknown as FlushLock
  const flusher = flusherOf(store, lock, (async () => new Response(null, { status: 202 })) as typeof globalThis.fetch)
  const pass = { keepalive: true, waitMs: 0, deadline: Infinity, proceed: () => true }
  expect(await flusher.run(pass)).toEqual({ progressed: false, outcome: 'busy' })
  expect(steps).toEqual([])
  // Shown again, the same pass lists, reads and sends.
  away = false
  expect(await flusher.run(pass)).toMatchObject({ progressed: true, outcome: 'done' })
  expect(steps).toEqual(['list', 'list', 'read', 'remove'])
})
