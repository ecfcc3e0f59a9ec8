// @vitest-environment jsdom
// The browser signals of the event pipeline: a page being hidden sends what is queued with
// `fetch(…, { keepalive: true })`, each body under 64 KB; nothing is sent while the browser
// says it is offline, and the `online` event sends what waited.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver
const clients: FlagClient[] = []
let calls: { url: string; keepalive: boolean; bytes: number }[] = []

beforeEach(async () => {
  receiver = await startEventsReceiver()
  calls = []
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver.close()
  setVisibility('visible')
  setOnline(true)
})

const realFetch = globalThis.fetch
/** Records what the client asked of fetch, then really sends it. */
const recordingFetch: typeof fetch = (input, init) => {
  const url = String(input)
  if (url === receiver.url) calls.push({ url, keepalive: init?.keepalive === true, bytes: new TextEncoder().encode(String(init?.body)).length })
  return realFetch(input, init)
}

function make(batchSize = 100) {
  const client = createClient({
    url: receiver.flagsUrl,
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName('events-browser'),
    logger: createTestLogger(),
    fetch: recordingFetch,
    events: { url: receiver.url, batchSize, backoff: { baseMs: 10, maxMs: 50 } },
  })
  clients.push(client)
  return client
}

function setVisibility(state: 'visible' | 'hidden') {
  Object.defineProperty(document, 'visibilityState', { value: state, configurable: true })
}
function setOnline(online: boolean) {
  Object.defineProperty(navigator, 'onLine', { value: online, configurable: true })
}

test('when the page is hidden, queued events go out with keepalive', async () => {
  const client = make()
  await client.start()
  client.logEvent('read-article', { value: 3 })
  client.logEvent('scroll')
  expect(calls).toHaveLength(0)

  setVisibility('hidden')
  document.dispatchEvent(new Event('visibilitychange'))
  await until(() => client.getEventStats().sent === 2, 'the hidden-page flush')
  expect(receiver.events().map((e) => e.name)).toEqual(['read-article', 'scroll'])
  expect(calls.length).toBeGreaterThan(0)
  expect(calls.every((c) => c.keepalive)).toBe(true)
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2 })
})

test('pagehide sends too, and a large queue goes in several keepalive requests, each under 64 KB', async () => {
  const client = make(1000)
  await client.start()
  const padding = 'x'.repeat(1000)
  for (let i = 0; i < 200; i++) client.logEvent('big', { value: i, metadata: { padding } })

  window.dispatchEvent(new Event('pagehide'))
  await until(() => receiver.events().length === 200, 'the pagehide flush')
  expect(calls.length).toBeGreaterThanOrEqual(4) // ~200 KB of events
  expect(calls.every((c) => c.keepalive && c.bytes < 64 * 1024)).toBe(true)
  expect(receiver.events().map((e) => e.value)).toEqual(Array.from({ length: 200 }, (_, i) => i))
})

test('an ordinary flush does not use keepalive', async () => {
  const client = make()
  client.logEvent('a')
  await client.flush()
  expect(calls).toEqual([expect.objectContaining({ keepalive: false })])
})

test('nothing is sent while the browser is offline; the online event sends what waited', async () => {
  const client = make(2)
  await client.start()
  setOnline(false)
  for (let i = 0; i < 5; i++) client.logEvent('offline-click', { value: i })
  await client.flush()
  setVisibility('hidden')
  document.dispatchEvent(new Event('visibilitychange'))
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(calls).toHaveLength(0)
  expect(client.getEventStats()).toMatchObject({ queued: 5, sent: 0 })

  setVisibility('visible')
  setOnline(true)
  window.dispatchEvent(new Event('online'))
  await until(() => client.getEventStats().sent === 5, 'the events after `online`')
  expect(receiver.events().map((e) => e.value)).toEqual([0, 1, 2, 3, 4])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 5, dropped: 0 })
})

test('close() removes the listeners: hiding a closed client’s page sends nothing', async () => {
  const client = make()
  await client.start()
  await client.close()
  client.logEvent('after-close')
  setVisibility('hidden')
  document.dispatchEvent(new Event('visibilitychange'))
  window.dispatchEvent(new Event('pagehide'))
  await new Promise((resolve) => setTimeout(resolve, 150))
  expect(calls).toHaveLength(0)
})
