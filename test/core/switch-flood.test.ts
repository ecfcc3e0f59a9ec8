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
