// close() lets go of the IndexedDB connection the client opened (platform/storage.ts), in
// Chromium: the connections of the page are counted by wrapping indexedDB.open before any script
// runs, so a test sees what a heap snapshot would (an open connection with a versionchange
// listener is never collected). And nothing the client does around close() fails for it: no
// error reaches the page, no event is lost, no value is lost, another client of the same database
// keeps working.
import { beforeEach, expect, test } from 'vitest'
import type { Page } from 'playwright-core'
import { openFixture } from './support/fixturePage'
import { freePort, waitFor } from './support/servers'
import { useFixtureSuite } from './support/suite'

// One browser, fixture and flag server for the file (its outage reset before each test), a fresh
// browser profile per test.
const suite = useFixtureSuite()
let page: Page
let errors: string[]

declare global {
  interface Window {
    /** Connections opened on the page, by database name, and whether each was closed. */
    __connections: Array<{ name: string; closed: boolean }>
  }
}

beforeEach(async () => {
  await suite.context.addInitScript(() => {
    window.__connections = []
    const open = IDBFactory.prototype.open
    IDBFactory.prototype.open = function (this: IDBFactory, name: string, version?: number) {
      const request = open.call(this, name, version)
      request.addEventListener('success', () => {
        const record = { name, closed: false }
        window.__connections.push(record)
        const db = request.result
        const close = db.close
        db.close = function () {
          record.closed = true
          return close.call(this)
        }
        db.addEventListener('close', () => (record.closed = true))
      })
      return request
    } as typeof open
    addEventListener('unhandledrejection', (event) => console.error('unhandledrejection: ' + String(event.reason)))
  })
  errors = []
  page = await openFixture(suite.context, suite.fixture.url, { flags: suite.flags.url, events: 'off' })
  page.on('pageerror', (error) => errors.push(String(error)))
  // The browser's own line for a refused or failed request is not the page's error.
  page.on('console', (message) => message.type() === 'error' && !message.text().startsWith('Failed to load resource') && errors.push(message.text()))
  await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
})
/** Connections to `name` still open, once what was in flight has settled. */
async function openConnections(name: string): Promise<number> {
  await page.waitForTimeout(300)
  return page.evaluate((name) => window.__connections.filter((c) => c.name === name && !c.closed).length, name)
}

test('a client closed as soon as it was started (a provider unmounted at once) keeps no connection open', async () => {
  const storageName = 'close-at-once'
  await page.evaluate(
    async ([url, storageName]) => {
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName, events: false })
      void client.start()
      await client.close()
    },
    [suite.flags.url, storageName] as const,
  )
  expect(await openConnections(storageName)).toBe(0)
  expect(errors).toEqual([])
})

test('a client started, then closed, keeps no connection open, and its app still reads its values', async () => {
  const storageName = 'close-after-start'
  const gate = await page.evaluate(
    async ([url, storageName]) => {
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName, events: false })
      await client.start()
      await client.close()
      return client.getGate('checkout-kill-switch')
    },
    [suite.flags.url, storageName] as const,
  )
  expect(gate).toBe(true)
  expect(await openConnections(storageName)).toBe(0)
  expect(errors).toEqual([])
})

test('clearCache() after close() removes the values, throws nothing, and leaves no connection open', async () => {
  const storageName = 'clear-after-close'
  await page.evaluate(
    async ([url, storageName]) => {
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName, events: false })
      await client.start()
      await client.close()
      await client.clearCache()
    },
    [suite.flags.url, storageName] as const,
  )
  expect(await openConnections(storageName)).toBe(0)
  // A reload with the flag server failing: nothing cached may come back.
  await suite.flags.setOutage('503')
  expect(await reloadSource(storageName, 'ada')).toBe('default')
  expect(errors).toEqual([])
})

test('events logged just before close() with the sink down are all kept, and sent by the next client', async () => {
  const storageName = 'events-at-close'
  const down = `http://127.0.0.1:${await freePort()}/holdfast/v1/events`
  const ids = await page.evaluate(
    async ([url, down, storageName]) => {
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName, requestTimeoutMs: 500, events: { url: down, exposures: false } })
      await client.start()
      for (let i = 0; i < 5; i++) client.logEvent('at-close', { value: i })
      await client.close()
      return client.getEventStats().queued
    },
    [suite.flags.url, down, storageName] as const,
  )
  expect(ids).toBe(5)
  expect(await openConnections(storageName)).toBe(0)
  await page.evaluate(
    async ([url, events, storageName]) => {
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName, events: { url: events, exposures: false } })
      await client.start()
      await client.flush()
      await client.close()
    },
    [suite.flags.url, `${suite.flags.url}/holdfast/v1/events`, storageName] as const,
  )
  await waitFor(async () => (await suite.flags.readEvents()).filter((e) => e.name === 'at-close').length === 5 || undefined, 'the 5 events at the sink')
  expect(errors).toEqual([])
})

test('two clients of one database: closing one leaves the other reading and writing its cache', async () => {
  const storageName = 'two-clients'
  await page.evaluate(
    async ([url, storageName]) => {
      const make = (targetingKey: string) => window.createHoldfastClient({ url, context: { targetingKey }, storageName, events: false })
      const a = make('ada')
      const b = make('bob')
      await Promise.all([a.start(), b.start()])
      await a.close()
      // b writes a new user's values after a's close.
      await b.setContext({ targetingKey: 'cy' })
      ;(window as unknown as { b: typeof b }).b = b
    },
    [suite.flags.url, storageName] as const,
  )
  expect(await openConnections(storageName)).toBe(1) // b's
  await page.evaluate(() => (window as unknown as { b: { close(): Promise<void> } }).b.close())
  expect(await openConnections(storageName)).toBe(0)
  await suite.flags.setOutage('503')
  expect(await reloadSource(storageName, 'cy')).toBe('cache')
  expect(errors).toEqual([])
})

/** What a new client of `storageName` shows for the kill switch once started (the server failing, it is the cache's or nothing). */
function reloadSource(storageName: string, targetingKey: string): Promise<string> {
  return page.evaluate(
    async ([url, storageName, targetingKey]) => {
      const next = window.createHoldfastClient({ url, context: { targetingKey }, storageName, events: false })
      await next.start()
      const source = next.getDetails('checkout-kill-switch', false).source
      await next.close()
      return source
    },
    [suite.flags.url, storageName, targetingKey] as const,
  )
}

test('a StrictMode provider owning its client (mounted, unmounted, mounted by React) keeps one connection while mounted, none once unmounted, and its values reach a reload', async () => {
  const storageName = 'strict-owned'
  const owned = () => page.evaluate(() => document.querySelector('[data-testid="owned"]')?.textContent)
  const mount = () =>
    page.evaluate(
      ([url, storageName]) => {
        ;(window as unknown as { unmountOwned: () => void }).unmountOwned = window.mountOwnedProvider({ url, context: { targetingKey: 'ada' }, storageName, events: false })
      },
      [suite.flags.url, storageName] as const,
    )
  const unmount = () => page.evaluate(() => (window as unknown as { unmountOwned: () => void }).unmountOwned())
  await mount()
  await waitFor(async () => (await owned()) === 'true network' || undefined, 'the provider to show the served value')
  expect(await openConnections(storageName)).toBe(1)
  await unmount()
  expect(await openConnections(storageName)).toBe(0)
  // A reload with the flag server failing: the value the provider's client cached.
  await suite.flags.setOutage('503')
  await mount()
  await waitFor(async () => (await owned()) === 'true cache' || undefined, 'the reload to show the cached value')
  await unmount()
  expect(await openConnections(storageName)).toBe(0)
  expect(errors).toEqual([])
})
