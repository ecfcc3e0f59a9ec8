// @vitest-environment jsdom
// A dashboard left open for days: a config flag whose value changes on every poll, or many users,
// means a new exposure key per value. The page's exposure de-duplication must not keep every one of
// them (with the whole value's JSON) for the page's life, and must still de-duplicate recent ones.
import v8 from 'node:v8'
import vm from 'node:vm'
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})

const FLAGS = 100
const POLLS = 1000
/** A config of about 1 KB, different on every poll. */
const config = (flag: number, poll: number) => ({ rev: poll, flag, text: 'x'.repeat(1000) })

test('after 100,000 distinct config values the page holds under 10 MB (not 100+ MB), and recent exposures are still de-duplicated', async () => {
  let poll = 0
  let down = false
  const fetch = (async (url: string) =>
    down || url.endsWith('/events')
      ? new Response('', { status: 503 })
      : new Response(JSON.stringify({ flags: Array.from({ length: FLAGS }, (_, f) => ({ key: `config-${f}`, value: config(f, poll), reason: 'STATIC' })) }), {
          status: 200,
          headers: { 'Content-Type': 'application/json' },
        })) as typeof globalThis.fetch
  const clock = createManualClock()
  gc()
  const before = process.memoryUsage().heapUsed
  const client = createClient({
    url: 'http://127.0.0.1:9/flags',
    context: { targetingKey: 'wall-screen' },
    storage: 'memory',
    storageName: uniqueStorageName('exposures-memory'),
    logger: createTestLogger(),
    clock,
    fetch,
    refreshOnFocus: false,
    liveUpdates: false,
    // The receiver is down (503): what matters is how many exposures were logged (queued + dropped).
    events: { url: 'http://127.0.0.1:9/events', maxQueued: 10 },
  })
  clients.push(client)
  await client.start()
  const exposed = () => client.getEventStats().queued + client.getEventStats().dropped
  const evaluateAll = () => {
    for (let f = 0; f < FLAGS; f++) client.getConfig(`config-${f}`)
  }
  for (poll = 1; poll <= POLLS; poll++) {
    await client.refresh()
    evaluateAll()
    evaluateAll()
    // A poll a second (the queue writes its events within 100 ms).
    clock.advance(1000)
  }
  await new Promise((r) => setTimeout(r, 0))
  // Every distinct value exposed exactly once (the first answer of start() was never evaluated).
  expect(exposed()).toBe(FLAGS * POLLS)
  gc()
  const held = process.memoryUsage().heapUsed - before
  // Before: every (client, context, flag, value JSON, variant) string stayed, ~1 KB each: 117 MB
  // measured. Now at most 10,000 hashes (well under 1 MB) beside the client itself.
  expect(held).toBeLessThan(10 * 1024 * 1024)

  // The latest values, evaluated again after an outage marked them stale (new details objects,
  // same values): no second exposure.
  down = true
  await client.refresh()
  expect(client.getStatus().state).toBe('stale')
  expect(client.getDetails('config-0', {}).stale).toBe(true)
  evaluateAll()
  expect(exposed()).toBe(FLAGS * POLLS)
}, 60_000)
