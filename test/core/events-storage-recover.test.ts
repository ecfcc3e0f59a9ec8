// A page whose storage failed over to memory goes back to it once it answers again, with the
// events it wrote to memory meanwhile copied over (platform/storage.ts, `recover`). From then on
// they are in the shared queue: another tab of the origin can send them. The page that logged them
// must then see them gone like any event of its own that another tab sent, and not send them again.
//
//   tab A   log e1..e3 ─ disk refuses: memory ─ ... a minute ... ─ back to disk, e1..e3 copied
//   tab B                                                       flush: sends e1..e3, removes them
//   tab A                                                                 flush: must send nothing
//
// Before, tab A kept them as "written to memory, still mine" and sent all three a second time.
// Two tabs are two clients on one shared storage (a Map behind a FlagStorage); only A's view of it
// fails. The minute is the system clock moved (fake `Date` only: the receiver and the storage's
// bound run on real timers).
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, type FlagClient, type FlagStorage } from '@holdfast/core'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver
const clients: FlagClient[] = []
beforeEach(async () => {
  receiver = await startEventsReceiver()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver.close()
  vi.useRealTimers()
})

/** One tab's view of the shared disk; `failing` makes every operation of this view reject (quota). */
function view(disk: Map<string, unknown>) {
  const state = { failing: false }
  const guard = async () => {
    if (state.failing) throw new DOMException('quota exceeded', 'QuotaExceededError')
  }
  const storage: FlagStorage = {
    get: async (key) => (await guard(), structuredClone(disk.get(key))),
    set: async (key, value) => void (await guard(), disk.set(key, structuredClone(value))),
    del: async (key) => void (await guard(), disk.delete(key)),
    keys: async () => (await guard(), [...disk.keys()]),
  }
  return { storage, state }
}

function tab(storage: FlagStorage, name: string) {
  const client = createClient({
    url: receiver.flagsUrl,
    context: { targetingKey: 'user-1' },
    storage,
    storageName: name,
    logger: createTestLogger(),
    refreshOnFocus: false,
    liveUpdates: false,
    events: { url: receiver.url, flushIntervalMs: 3_600_000, exposures: false },
  })
  clients.push(client)
  return client
}

test('events copied back to the shared storage after a failover are sent once, also when another tab sends them', async () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  const disk = new Map<string, unknown>()
  const name = uniqueStorageName('events-recover')
  const a = view(disk)
  const b = view(disk)
  const tabA = tab(a.storage, name)
  const tabB = tab(b.storage, name)
  await Promise.all([tabA.start(), tabB.start()])

  // A's disk refuses: its events go to memory (the try right after the failover is refused too).
  a.state.failing = true
  for (const n of [1, 2, 3]) tabA.logEvent('while-on-memory', { value: n })
  await until(() => tabA.getStatus().storage === 'memory', 'tab A on memory')
  await new Promise((r) => setTimeout(r, 200))
  expect([...disk.keys()].filter((k) => k.startsWith('holdfast:event:'))).toEqual([])

  // The disk answers again; a minute later A's next write takes A back to it, with e1..e3.
  a.state.failing = false
  vi.setSystemTime(Date.now() + 61_000)
  tabA.logEvent('after', { value: 4 })
  await until(() => [...disk.keys()].filter((k) => k.startsWith('holdfast:event:')).length === 4, 'the copy')

  // Tab B sends the shared queue (A's four events), then A flushes.
  await tabB.flush()
  expect(tabB.getEventStats().sent).toBe(4)
  await tabA.flush()

  const times = receiver.receivedTimes()
  expect(times.size).toBe(4)
  // Before: the three events logged while on memory went out twice (B's request, then A's).
  expect([...times.values()]).toEqual([1, 1, 1, 1])
  expect(tabA.getEventStats().queued).toBe(0)
})

test('a page that fails over again right after going back still sends the events it copied over', async () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  const disk = new Map<string, unknown>()
  const a = view(disk)
  const tabA = tab(a.storage, uniqueStorageName('events-recover-twice'))
  await tabA.start()
  const onDisk = () => [...disk.keys()].filter((k) => k.startsWith('holdfast:event:')).length

  a.state.failing = true
  for (const n of [1, 2, 3]) tabA.logEvent('while-on-memory', { value: n })
  await until(() => tabA.getStatus().storage === 'memory', 'tab A on memory')
  a.state.failing = false
  vi.setSystemTime(Date.now() + 61_000)
  tabA.logEvent('after', { value: 4 })
  await until(() => onDisk() === 4, 'the copy')
  // Memory is emptied after the copy; then the disk refuses again before any flush.
  a.state.failing = true
  tabA.logEvent('failing again', { value: 5 })
  await new Promise((r) => setTimeout(r, 200))

  await tabA.flush()
  // Before: the page's listing of (emptied) memory made it forget e1..e4 as "sent by another tab";
  // they waited on the disk for another visit, and only e5 went out.
  expect(receiver.receivedTimes().size).toBe(5)
  expect(tabA.getEventStats()).toMatchObject({ sent: 5, queued: 0 })
})

test('the status says when the page is back on persistent storage, without waiting for a flag request', async () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  const a = view(new Map())
  const tabA = tab(a.storage, uniqueStorageName('events-recover-status'))
  await tabA.start()
  a.state.failing = true
  tabA.logEvent('while-on-memory')
  await until(() => tabA.getStatus().storage === 'memory', 'tab A on memory')
  expect(tabA.getStatus().error?.code).toBe('STORAGE')

  a.state.failing = false
  vi.setSystemTime(Date.now() + 61_000)
  tabA.logEvent('after')
  // Before: 'memory' and the STORAGE error until the next flag answer (a focus, a poll), though
  // every write went to persistent storage again.
  for (let i = 0; i < 100 && tabA.getStatus().storage !== 'indexeddb'; i++) await new Promise((r) => setTimeout(r, 20))
  expect(tabA.getStatus().storage).toBe('indexeddb')
  expect(tabA.getStatus().error).toBeUndefined()
})
