// A host app that floods setContext: `<FlagProvider context={{ targetingKey: id, at: new Date() }}>`
// or a setContext per render. Before, every call sent a bulk request of its own (aborting the
// previous one): 60 calls at 16 ms were about 60 requests, and every switch cleared the server's
// `Retry-After`, so a 429 did not slow the flood down either. Against a real server on 127.0.0.1.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type EvaluationContext, type FlagClient } from '@holdfast/core'
import { createFaultServer, delayed, flags, type FaultServer, type RecordedRequest } from '../support/faultServer'
import { createManualClock, createTestLogger, type ManualClock } from '../support/clock'

/** The server's round trip in these tests: a flag service some way off. */
const RTT_MS = 250

/** The server's answer names the context it was computed for: `targetingKey/at`. */
const echo = (request: RecordedRequest) => {
  const { targetingKey, at } = request.body.context
  return flags([{ key: 'who', value: `${targetingKey}/${at ?? ''}` }])
}
const echoSlowly = (request: RecordedRequest) => delayed(echo(request) as never, RTT_MS)

let server: FaultServer
let client: FlagClient
let clock: ManualClock
beforeEach(async () => {
  server = await createFaultServer(echo)
  clock = createManualClock()
})
afterEach(async () => {
  await client?.close()
  await server.close()
})

function make(context: EvaluationContext = { targetingKey: 'alice' }) {
  client = createClient({ url: server.url, context, storage: 'memory', logger: createTestLogger(), clock, random: () => 0.5, liveUpdates: false })
  return client
}

const frame = () => new Promise((resolve) => setTimeout(resolve, 16))

/**
 * Watches what the app is shown: a value the client presents as this user's (not a stand-in while
 * `loading`) must have been computed for the current targetingKey.
 */
function watchForeignValues(c: FlagClient): string[] {
  const foreign: string[] = []
  c.subscribe(() => {
    const details = c.getDetails('who', '', { exposure: false })
    if (c.getStatus().state === 'loading' || details.source === 'default') return
    const shownFor = String(details.value).split('/')[0]
    if (shownFor !== c.getContext().targetingKey) foreign.push(`${c.getContext().targetingKey} shown ${details.value}`)
  })
  return foreign
}

async function settle(c: FlagClient, expected: string) {
  for (let i = 0; i < 100 && c.getValue('who', '') !== expected; i++) await new Promise((r) => setTimeout(r, 20))
}

test('a context attribute that changes every render (60 calls at 16 ms) sends about one request per round trip, and the values settle on the last context', async () => {
  make({ targetingKey: 'alice', at: -1 })
  await client.start()
  server.always(echoSlowly)
  const before = server.requests.length
  const began = Date.now()
  const statuses: Promise<unknown>[] = []
  for (let i = 0; i < 60; i++) {
    statuses.push(client.setContext({ targetingKey: 'alice', at: i }))
    await frame()
  }
  // Every call settles: the superseded ones at once, the last one with its own answer.
  const burstMs = Date.now() - began
  const results = await Promise.all(statuses)
  expect(results).toHaveLength(60)
  await settle(client, 'alice/59')
  const sent = server.requests.length - before
  // 960 ms of calls against a 250 ms round trip: one request at a time, each for the latest
  // context when the previous one settled (6 here, the first abandoned). Before: one per call, 60.
  // The bound: one per round trip of the burst as it really ran (a busy machine stretches it),
  // plus the lone first request the burst abandoned, plus the one for the last context.
  expect(sent).toBeLessThanOrEqual(Math.ceil(burstMs / RTT_MS) + 3)
  expect(server.requests.filter((r) => r.abandoned).length).toBeLessThanOrEqual(1)
  expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'alice', at: 59 })
  expect(client.getDetails('who', '')).toMatchObject({ value: 'alice/59', source: 'network', stale: false })
  expect(client.getStatus().state).toBe('ready')
})

test('60 different users at 16 ms: at most about one request per round trip, never another user’s values as this one’s, and the last user’s values at the end', async () => {
  make()
  await client.start()
  const foreign = watchForeignValues(client)
  server.always(echoSlowly)
  const before = server.requests.length
  const began = Date.now()
  const last: Promise<unknown>[] = []
  for (let i = 0; i < 60; i++) {
    last.push(client.setContext({ targetingKey: `user-${i}` }))
    await frame()
  }
  const burstMs = Date.now() - began
  const final = await last.at(-1)
  await Promise.all(last)
  expect(final).toMatchObject({ state: 'ready' })
  const sent = server.requests.length - before
  expect(sent).toBeLessThanOrEqual(Math.ceil(burstMs / RTT_MS) + 3)
  expect(client.getDetails('who', '')).toMatchObject({ value: 'user-59/', source: 'network' })
  expect(foreign).toEqual([])
})

test('a switch that supersedes a waiting one settles the waiting one at once, not a round trip later', async () => {
  make({ targetingKey: 'alice', at: 0 })
  await client.start()
  server.always('hang') // never answered: the timeouts are on the manual clock
  void client.refresh()
  await server.waitForRequests(2)
  // The refresh is abandoned for the first switch (it is no burst's); that switch's request is
  // the burst's, and the next switch waits for it.
  void client.setContext({ targetingKey: 'alice', at: 1 })
  await server.waitForRequests(3)
  let waitingSettled = false
  const waiting = client.setContext({ targetingKey: 'alice', at: 2 }).then(() => (waitingSettled = true))
  await frame()
  expect(waitingSettled).toBe(false) // waiting for the request out
  void client.setContext({ targetingKey: 'alice', at: 3 })
  await waiting
  expect(server.requests).toHaveLength(3)
  expect(server.requests.filter((r) => r.abandoned)).toHaveLength(1)
})

test('a 429 with Retry-After: 5, then a switch to another user: nothing is sent for 5 s; the new user sees what a failure shows, then their values', async () => {
  make()
  await client.start()
  expect(client.getValue('who', '')).toBe('alice/')
  server.next({ status: 429, raw: '', headers: { 'Retry-After': '5' } })
  await client.refresh()
  expect(client.getStatus()).toMatchObject({ state: 'stale', error: { httpStatus: 429 } })
  const before = server.requests.length
  const foreign = watchForeignValues(client)

  const status = await client.setContext({ targetingKey: 'bob' })
  // Held back by the server's wait, bob is shown what a failed attempt shows: nothing of alice's.
  expect(status).toMatchObject({ state: 'error', error: { code: 'HTTP', httpStatus: 429 } })
  expect(client.getDetails('who', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
  // More switches and refresh() within the wait send nothing either.
  await client.setContext({ targetingKey: 'bob', plan: 'pro' })
  await client.refresh()
  clock.advance(4900)
  await new Promise((r) => setTimeout(r, 50))
  expect(server.requests.length).toBe(before)

  // When the wait ends, one request, for the latest context.
  clock.advance(200)
  await server.waitForRequests(before + 1)
  await settle(client, 'bob/')
  expect(server.requests.length).toBe(before + 1)
  expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'bob', plan: 'pro' })
  expect(client.getStatus().state).toBe('ready')
  expect(foreign).toEqual([])
})

test('a 429 with Retry-After that answers a request for a context already replaced still holds the next one', async () => {
  make({ targetingKey: 'alice', at: 0 })
  await client.start()
  server.next('hang', delayed({ status: 429, raw: '', headers: { 'Retry-After': '5' } }, 100))
  void client.refresh()
  await server.waitForRequests(2)
  void client.setContext({ targetingKey: 'alice', at: 1 }) // abandons the refresh; its request gets the 429
  await server.waitForRequests(3)
  // The next switch waits for the burst's request; its answer (a 429) is not this context's, but
  // the server's wait is the server's.
  const status = await client.setContext({ targetingKey: 'alice', at: 2 })
  expect(server.requests).toHaveLength(3)
  // alice keeps her values (they are still hers), stale, as after a failed attempt.
  expect(status).toMatchObject({ state: 'stale', error: { httpStatus: 429 } })
  expect(client.getDetails('who', '')).toMatchObject({ value: 'alice/0', stale: true })
  clock.advance(4900)
  await new Promise((r) => setTimeout(r, 50))
  expect(server.requests).toHaveLength(3)
  clock.advance(200)
  await settle(client, 'alice/2')
  expect(server.requests).toHaveLength(4)
  expect(client.getStatus().state).toBe('ready')
})

test('the end of a Retry-After asks for a switched-to user while their cache is still being read: that attempt is theirs, the switch sends no second one', async () => {
  // A storage whose reads the test holds (a slow IndexedDB), bounded by the client's own timeout.
  const data = new Map<string, unknown>()
  let hold: Promise<void> | undefined
  const storage = {
    get: async (key: string) => (await hold, data.get(key)),
    set: async (key: string, value: unknown) => void data.set(key, value),
    del: async (key: string) => void data.delete(key),
    keys: async () => [...data.keys()],
  }
  client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage, logger: createTestLogger(), clock, random: () => 0.5, liveUpdates: false })
  await client.start()
  server.next({ status: 429, raw: '', headers: { 'Retry-After': '5' } })
  await client.refresh()
  const before = server.requests.length
  let release!: () => void
  hold = new Promise((resolve) => (release = resolve))
  const switching = client.setContext({ targetingKey: 'bob' })
  clock.advance(5100) // the wait ends while bob's cache entry is still being read
  await server.waitForRequests(before + 1)
  await settle(client, 'bob/')
  release()
  expect(await switching).toMatchObject({ state: 'ready' })
  await new Promise((r) => setTimeout(r, 100))
  expect(server.requests.length).toBe(before + 1)
})

test('attributes the page learns while the first request hangs are asked for at once: that lone request is abandoned, not waited for', async () => {
  make({ targetingKey: 'alice', at: 0 })
  server.next('hang') // the first request never answers (its timeout is on the manual clock)
  const starting = client.start()
  await server.waitForRequests(1)
  const status = await client.setContext({ targetingKey: 'alice', at: 1 })
  expect(status.state).toBe('ready')
  expect(client.getValue('who', '')).toBe('alice/1')
  expect(server.requests).toHaveLength(2)
  await starting
})
