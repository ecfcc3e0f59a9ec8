// A cache read that finishes after an answer for the same user was applied (a slow IndexedDB, or
// one queued behind a write and its eviction): the answer is newer than anything saved before it
// was asked for, and the entry read must not bring back what it removed or replaced.
//
//   start()  read cache ─────────────────────────────────── entry {kill, old-flag} lands
//   refresh()      request ──── 200 {kill} (clean: old-flag is gone) applied
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true }, { key: 'old-flag', value: 'on' }], '"e1"'))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

/** Memory storage whose reads wait while `hold()` is on, so a test can land one after an answer. */
function slowStorage() {
  const inner = createMemoryStorage()
  let gate: Promise<void> | undefined
  let open = () => {}
  const storage: FlagStorage = {
    ...inner,
    get: async (key) => {
      const wait = gate
      if (wait) await wait
      return inner.get(key)
    },
  }
  return {
    storage,
    hold: () => void (gate = new Promise<void>((resolve) => (open = resolve))),
    release: () => {
      gate = undefined
      open()
    },
  }
}

function make(storage: FlagStorage, targetingKey = 'alice', options: Partial<Parameters<typeof createClient>[0]> = {}) {
  const client = createClient({ url: server.url, context: { targetingKey }, storage, logger: createTestLogger(), clock: createManualClock(), refreshOnFocus: false, liveUpdates: false, ...options })
  clients.push(client)
  return client
}

/** An earlier page saved bob's entry (both flags, from the first answer). */
async function savedForBob(storage: FlagStorage) {
  const first = make(storage, 'bob')
  await first.start()
  await first.close()
}

/** Switches `client` to bob and refreshes at once; bob's entry is read only after that answer. */
async function switchToBobReadLate(slow: ReturnType<typeof slowStorage>, client: FlagClient) {
  slow.hold()
  const switched = client.setContext({ targetingKey: 'bob' })
  await client.refresh()
  slow.release()
  await switched
}

test('a cache read that lands after the answer to a refresh() does not bring back a flag that answer removed', async () => {
  const slow = slowStorage()
  // Yesterday's page saved alice's entry with both flags.
  const first = make(slow.storage)
  await first.start()
  await first.close()

  // Today the server removed `old-flag` (a clean answer without it) and turned the kill switch off.
  server.always(flags([{ key: 'kill', value: false }], '"e2"'))
  slow.hold()
  const client = make(slow.storage)
  const started = client.start()
  const refreshed = await client.refresh()
  expect(refreshed.state).toBe('ready')
  expect(client.getGate('kill', true)).toBe(false)
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'default', errorCode: 'FLAG_NOT_FOUND' })

  slow.release()
  await started
  // What the user sees once yesterday's entry has been read: still today's answer.
  expect(client.getGate('kill', true)).toBe(false)
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'default', source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
})

test('a switch whose cache read lands after the answer to a refresh() right after it shows that answer, not the entry', async () => {
  const slow = slowStorage()
  await savedForBob(slow.storage)

  server.always(flags([{ key: 'kill', value: false }], '"e2"'))
  const client = make(slow.storage, 'alice')
  await client.start()
  slow.hold()
  const switched = client.setContext({ targetingKey: 'bob' })
  // The app asks for fresh values for the user it just switched to.
  await client.refresh()
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'default', errorCode: 'FLAG_NOT_FOUND' })
  slow.release()
  await switched
  expect(client.getGate('kill', true)).toBe(false)
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'default', source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
})

test('a switch whose cache read lands after an empty answer to a refresh() right after it shows the cached values, never every flag off', async () => {
  const slow = slowStorage()
  await savedForBob(slow.storage)

  // An outage that answers `{"flags": []}`: taken while nothing of bob's was held yet.
  server.always(flags([]))
  const client = make(slow.storage, 'alice')
  await client.start()
  await switchToBobReadLate(slow, client)
  // The kill switch bob's last good answer had, not the caller's default.
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'cache' })
})

test('with clearCacheOnUnauthorized, a switch whose cache read lands after the 401 to a refresh() right after it does not bring the refused user\'s values back', async () => {
  const slow = slowStorage()
  await savedForBob(slow.storage)

  const client = make(slow.storage, 'alice', { clearCacheOnUnauthorized: true })
  await client.start()
  server.always({ status: 401, body: { errorCode: 'UNAUTHORIZED' } })
  await switchToBobReadLate(slow, client)
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default' })
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'default', source: 'default' })
  expect(client.getStatus()).toMatchObject({ state: 'error', error: { code: 'UNAUTHORIZED' } })
  await client.close()
  // Nor is bob's entry left on disk for the next page.
  expect((await slow.storage.keys()).length).toBe(1)
})

test('with clearCacheOnUnauthorized, a cache read that lands after the 401 does not bring the refused user\'s values back', async () => {
  const slow = slowStorage()
  const first = make(slow.storage)
  await first.start()
  await first.close()

  server.always({ status: 401, body: { errorCode: 'UNAUTHORIZED' } })
  slow.hold()
  const client = make(slow.storage, 'alice', { clearCacheOnUnauthorized: true })
  const started = client.start()
  await client.refresh()
  expect(client.getGate('kill', false)).toBe(false)
  slow.release()
  await started
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default' })
  expect(client.getStatus()).toMatchObject({ state: 'error', error: { code: 'UNAUTHORIZED' } })
})

// A partial answer (it holds a failure entry) removes nothing it leaves out (CONTRACT §4), and per
// flag the cache ranks just below the network (§5): a flag only bob's entry has is his last known
// good whichever of the read and the answer lands first.
test('a switch whose cache read lands after a partial answer to a refresh() still shows the flags only the entry had, stale', async () => {
  const slow = slowStorage()
  await savedForBob(slow.storage)

  // The flag service has a bad moment: one flag fails, the kill switch is left out.
  server.always(flags([{ key: 'banner', value: 'hi' }, { key: 'old-flag', errorCode: 'GENERAL' }]))
  const client = make(slow.storage, 'alice')
  await client.start()
  await switchToBobReadLate(slow, client)
  expect(client.getDetails('banner', 'x')).toMatchObject({ value: 'hi', source: 'network' })
  // bob's last known good kill switch, not the caller's default.
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'cache', stale: true })
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'on', stale: true, errorCode: 'GENERAL' })
})

test('the same partial answer with the cache read first shows the same values', async () => {
  const slow = slowStorage()
  await savedForBob(slow.storage)

  server.always(flags([{ key: 'banner', value: 'hi' }, { key: 'old-flag', errorCode: 'GENERAL' }]))
  const client = make(slow.storage, 'alice')
  await client.start()
  await client.setContext({ targetingKey: 'bob' })
  expect(client.getDetails('banner', 'x')).toMatchObject({ value: 'hi', source: 'network' })
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'cache', stale: true })
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'on', stale: true, errorCode: 'GENERAL' })
})

test('a cache read that lands after a partial answer does not bring back what that answer removed (FLAG_NOT_FOUND)', async () => {
  const slow = slowStorage()
  await savedForBob(slow.storage)

  server.always(flags([{ key: 'kill', errorCode: 'FLAG_NOT_FOUND' }, { key: 'banner', errorCode: 'GENERAL' }]))
  const client = make(slow.storage, 'alice')
  await client.start()
  await switchToBobReadLate(slow, client)
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  expect(client.getDetails('old-flag', 'default')).toMatchObject({ value: 'on', source: 'cache', stale: true })
})
