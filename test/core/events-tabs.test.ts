// Several tabs on one database: every event arrives, and no event is in two requests. The
// receiver counts ids over all requests (not its de-duplicated set), so a double send shows.
// Three paths: Web Locks (a minimal in-process polyfill), clients in one realm without Web Locks
// (Node has none), and separate module instances, which stand in for tabs without Web Locks.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
import { createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver
const clients: FlagClient[] = []
beforeEach(async () => {
  receiver = await startEventsReceiver({ delayMs: 5 })
})
// Node 20 has no `navigator`; newer Nodes have one (with `locks` from 24.5). Each test sets the
// one it needs and the original comes back afterwards.
const originalNavigator = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
function setNavigator(value: object) {
  Object.defineProperty(globalThis, 'navigator', { value, configurable: true, writable: true })
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver.close()
  if (originalNavigator) Object.defineProperty(globalThis, 'navigator', originalNavigator)
  else Reflect.deleteProperty(globalThis, 'navigator')
})

type Create = typeof createClient

function make(create: Create, storageName: string, who: string) {
  const client = create({
    url: receiver.flagsUrl,
    context: { targetingKey: who },
    storageName,
    logger: createTestLogger(),
    requestTimeoutMs: 2000,
    events: { url: receiver.url, batchSize: 20, backoff: { baseMs: 10, maxMs: 50 } },
  })
  clients.push(client)
  return client
}

/** Both tabs log and flush at the same moments, several rounds; then everything must be in. */
async function race(a: FlagClient, b: FlagClient) {
  await Promise.all([a.start(), b.start()])
  const flushes: Promise<void>[] = []
  for (let round = 0; round < 25; round++) {
    for (let i = 0; i < 10; i++) {
      a.logEvent('a', { value: round * 100 + i })
      b.logEvent('b', { value: round * 100 + i })
    }
    // Each flushes while the other's latest events are still only in the other's memory.
    flushes.push(a.flush(), b.flush())
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  await Promise.all(flushes)
  await Promise.all([a.flush(), b.flush()])

  const received = receiver.receivedTimes()
  expect(received.size).toBe(500)
  expect([...received.entries()].filter(([, n]) => n !== 1)).toEqual([])
  expect(a.getEventStats().sent + b.getEventStats().sent).toBe(500)
  expect(a.getEventStats().queued + b.getEventStats().queued).toBe(0)
}

test('two clients in one page without Web Locks: each event is sent exactly once', async () => {
  setNavigator({})
  const name = uniqueStorageName('events-tabs')
  await race(make(createClient, name, 'alice'), make(createClient, name, 'bob'))
})

test('two clients with Web Locks: each event is sent exactly once, and the lock is used', async () => {
  const locks = createLocksPolyfill()
  setNavigator({ locks })
  const name = uniqueStorageName('events-weblocks')
  await race(make(createClient, name, 'alice'), make(createClient, name, 'bob'))
  expect(locks.requests).toBeGreaterThan(0)
  expect(locks.names).toEqual(new Set([`holdfast:events:${name}`]))
})

test('two tabs without Web Locks (separate module instances sharing IndexedDB): each event is sent exactly once', async () => {
  setNavigator({})
  vi.resetModules()
  const tabA = (await import('@holdfast/core')).createClient
  vi.resetModules()
  const tabB = (await import('@holdfast/core')).createClient
  expect(tabA).not.toBe(tabB)
  const name = uniqueStorageName('events-lease')
  await race(make(tabA, name, 'alice'), make(tabB, name, 'bob'))
}, 20_000)

/**
 * Just enough of the Web Locks API: exclusive locks by name, `ifAvailable`, `signal`. Counts
 * requests so the test can tell it was used.
 */
function createLocksPolyfill() {
  const queues = new Map<string, Array<() => void>>()
  const state = { requests: 0, names: new Set<string>() }
  function request<T>(name: string, ...args: unknown[]): Promise<T> {
    const callback = args.pop() as (lock: { name: string } | null) => Promise<T> | T
    const options = (args[0] ?? {}) as { ifAvailable?: boolean; signal?: AbortSignal }
    state.requests++
    state.names.add(name)
    const queue = queues.get(name)
    if (queue && options.ifAvailable) return Promise.resolve().then(() => callback(null))
    return new Promise<T>((resolve, reject) => {
      const grant = () => {
        options.signal?.removeEventListener('abort', onAbort)
        Promise.resolve()
          .then(() => callback({ name }))
          .then(resolve, reject)
          .finally(() => {
            const waiting = queues.get(name)!
            const next = waiting.shift()
            if (next) next()
            else queues.delete(name)
          })
      }
      const onAbort = () => {
        const waiting = queues.get(name)
        const i = waiting ? waiting.indexOf(grant) : -1
        if (i >= 0) waiting!.splice(i, 1)
        reject(new DOMException('aborted', 'AbortError'))
      }
      if (!queue) {
        queues.set(name, [])
        grant()
      } else {
        options.signal?.addEventListener('abort', onAbort)
        queue.push(grant)
      }
    })
  }
  return Object.assign(state, { request, query: async () => ({ held: [], pending: [] }) })
}
