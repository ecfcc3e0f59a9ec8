// @vitest-environment jsdom
// Focus, visibility and the network state, as a browser reports them.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName, type ManualClock } from '../support/clock'

let server: FaultServer
let client: FlagClient
let clock: ManualClock
let online = true
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'a', value: true }]))
  clock = createManualClock()
  online = true
  Object.defineProperty(navigator, 'onLine', { configurable: true, get: () => online })
})
afterEach(async () => {
  await client?.close()
  await server.close()
})

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('signals'), logger: createTestLogger(), clock, random: () => 0.5, ...options })
  return client
}

function setVisibility(state: 'visible' | 'hidden') {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
  document.dispatchEvent(new Event('visibilitychange'))
}

test('refetches when the page becomes visible, at most once per 5 s', async () => {
  // Requests counted as they start (a request goes out in the task of the event that asks for it),
  // not as they reach the server: a throttled focus is told from a request still on its way.
  let started = 0
  make({ fetch: (...args: Parameters<typeof fetch>) => (started++, fetch(...args)) })
  await client.start()
  clock.advance(6000)
  const asked = clock.now()
  setVisibility('hidden')
  setVisibility('visible')
  expect(started).toBe(2)
  // Its answer in: a focus while it is out joins it (on a loaded machine the last focus below came
  // before the answer, joined it, and no third request went out).
  await vi.waitFor(() => expect(client.getStatus().lastSuccessAt).toBeGreaterThanOrEqual(asked), { timeout: 10_000 })
  window.dispatchEvent(new Event('focus'))
  clock.advance(1000)
  window.dispatchEvent(new Event('focus'))
  expect(started).toBe(2)
  clock.advance(5000)
  window.dispatchEvent(new Event('focus'))
  expect(started).toBe(3)
  await server.waitForRequests(3)
})

test('refreshOnFocus: false ignores focus', async () => {
  make({ refreshOnFocus: false })
  await client.start()
  clock.advance(10_000)
  setVisibility('visible')
  window.dispatchEvent(new Event('focus'))
  await new Promise((r) => setTimeout(r, 30))
  expect(server.requests).toHaveLength(1)
})

test('retries pause while offline and resume on the online event', async () => {
  server.always({ status: 503, raw: '' })
  make()
  await client.start()
  online = false
  clock.fireNext()
  await new Promise((r) => setTimeout(r, 30))
  expect(server.requests).toHaveLength(1)
  expect(clock.pending()).toEqual([])
  server.always(flags([{ key: 'a', value: false }]))
  online = true
  window.dispatchEvent(new Event('online'))
  await server.waitForRequests(2)
  await client.refresh()
  expect(client.getGate('a', true)).toBe(false)
})

test('refresh() ignores the offline flag', async () => {
  make()
  await client.start()
  online = false
  await client.refresh()
  expect(server.requests).toHaveLength(2)
})

test('close removes every window and document listener', async () => {
  const added: string[] = []
  const removed: string[] = []
  for (const target of [window, document] as EventTarget[]) {
    const add = target.addEventListener.bind(target)
    const remove = target.removeEventListener.bind(target)
    target.addEventListener = (type: string, ...rest: any[]) => (added.push(type), add(type, ...(rest as [any])))
    target.removeEventListener = (type: string, ...rest: any[]) => (removed.push(type), remove(type, ...(rest as [any])))
  }
  make({ events: { url: `${server.url}/events` } })
  expect(added).toEqual([]) // nothing at creation
  await client.start()
  expect(added.length).toBeGreaterThan(0)
  await client.close()
  expect(removed.sort()).toEqual(added.sort())
})
