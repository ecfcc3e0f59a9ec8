// Who is told what: flag listeners only about their flag, once per response, never for an
// identical re-confirmation; global listeners for any value or status change.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
let client: FlagClient
const entries = [{ key: 'a', value: 1 }, { key: 'b', value: 2 }, { key: 'c', value: 3 }]
beforeEach(async () => {
  server = await createFaultServer(flags(entries))
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('notify'), logger: createTestLogger(), clock: createManualClock() })
  await client.start()
})
afterEach(async () => {
  await client.close()
  await server.close()
})

function count(key?: string) {
  const calls = { n: 0 }
  if (key) client.subscribeFlag(key, () => calls.n++)
  else client.subscribe(() => calls.n++)
  return calls
}

test('a change to one flag tells only that flag listener, once', async () => {
  const a = count('a'), b = count('b'), c = count('c'), all = count()
  server.always(flags([{ key: 'a', value: 1 }, { key: 'b', value: 20 }, { key: 'c', value: 3 }]))
  await client.refresh()
  expect([a.n, b.n, c.n, all.n]).toEqual([0, 1, 0, 1])
})

test('an identical re-confirmation tells no flag listener and does not move updatedAt', async () => {
  const before = client.getDetails('a', 0)
  const lastSuccess = client.getStatus().lastSuccessAt
  const a = count('a'), all = count()
  await new Promise((r) => setTimeout(r, 5))
  await client.refresh()
  expect(a.n).toBe(0)
  expect(client.getDetails('a', 0)).toBe(before)
  expect(client.getDetails('a', 0).updatedAt).toBe(before.updatedAt)
  // The status did change: the values were confirmed later.
  expect(client.getStatus().lastSuccessAt).toBeGreaterThan(lastSuccess!)
  expect(all.n).toBe(1)
})

test('a failure tells every flag listener once (stale) and a recovery once more', async () => {
  const a = count('a'), b = count('b'), all = count()
  server.always({ status: 500, raw: '' })
  await client.refresh()
  await client.refresh() // a second failure changes nothing visible
  expect([a.n, b.n]).toEqual([1, 1])
  expect(all.n).toBe(1)
  server.always(flags(entries))
  await client.refresh()
  expect([a.n, b.n]).toEqual([2, 2])
})

test('unsubscribe stops notifications; a throwing listener does not stop the others', async () => {
  const logger = createTestLogger()
  await client.close()
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('notify2'), logger, clock: createManualClock() })
  await client.start()
  const seen: string[] = []
  client.subscribeFlag('a', () => {
    throw new Error('app bug')
  })
  const off = client.subscribeFlag('a', () => seen.push('first'))
  client.subscribeFlag('a', () => seen.push('second'))
  server.always(flags([{ key: 'a', value: 9 }]))
  await client.refresh()
  off()
  server.always(flags([{ key: 'a', value: 10 }]))
  await client.refresh()
  expect(seen).toEqual(['first', 'second', 'second'])
  expect(logger.errors.some((m) => m.includes('[holdfast]'))).toBe(true)
})

test('a listener unsubscribed by another during a notification (a component unmounted by a sibling) is not called after its unsubscribe', async () => {
  const seen: string[] = []
  let offFlag = () => {}
  let offAll = () => {}
  client.subscribeFlag('a', () => {
    seen.push('flag-first')
    offFlag()
  })
  offFlag = client.subscribeFlag('a', () => seen.push('flag-unmounted'))
  client.subscribe(() => {
    seen.push('all-first')
    offAll()
  })
  offAll = client.subscribe(() => seen.push('all-unmounted'))
  server.always(flags([{ key: 'a', value: 9 }, { key: 'b', value: 2 }, { key: 'c', value: 3 }]))
  await client.refresh()
  expect(seen).toEqual(['flag-first', 'all-first'])
})

// An injected clock reading 0 (sinon's fake timers start there): the answer's time is 0, which a
// flag does not carry as updatedAt (unknown, not 1970); a re-confirmation is still no change.
test('with a clock reading 0, an identical re-confirmation tells no flag listener either', async () => {
  await client.close()
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storage: 'memory', logger: createTestLogger(), clock: { ...createManualClock(), now: () => 0 } })
  await client.start()
  const a = count('a')
  await client.refresh()
  await client.refresh()
  expect(a.n).toBe(0)
  expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network' })
})

test("a second switch while the first new user's answer is out tells no flag listener: the previous values stand in as before", async () => {
  server.always('hang')
  const switching = client.setContext({ targetingKey: 'bob' })
  await server.waitForRequests(2)
  // Alice's values stand in for bob: stale, `fallback` (CONTRACT §5), value and time unchanged.
  const standIn = client.getDetails('a', 0)
  expect([standIn.value, standIn.source, standIn.stale]).toEqual([1, 'fallback', true])
  const a = count('a')
  const carol = client.setContext({ targetingKey: 'carol' })
  await server.waitForRequests(3)
  // The same value, source and staleness for carol: no change (§3 subscribeFlag, §4), the same details.
  expect(client.getDetails('a', 0)).toBe(standIn)
  expect(client.getStatus().state).toBe('loading')
  expect(a.n).toBe(0)
  void switching, void carol
})
