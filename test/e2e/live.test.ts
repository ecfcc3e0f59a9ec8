// Live updates in real Chromium (issue 16): a flags-file edit reaches open tabs within 2 s with
// polling off; three tabs of one origin hold one stream and make one bulk request per change;
// closing the leader tab moves the stream; a server restart brings the tabs back without a storm.
// Requests are counted at the server, by route.
import { readFile, writeFile } from 'node:fs/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createFlagServer, type FlagServer, type Middleware } from '@holdfast/server'
import { launchChromium } from './support/browser'
import { killSwitch, serveSwitch, shown, waitShown } from './support/killSwitch'
import { startFixture } from './support/fixture'
import { openFixture } from './support/fixturePage'
import type { Closable } from './support/servers'

const silent = { info() {}, warn() {}, error() {} }

let browser: Browser
let fixture: Closable
let context: BrowserContext
let server: FlagServer
const counts: Record<string, number> = {}
/** Delay of every bulk answer (a slow server, or a loaded machine), set by a test. */
let bulkDelayMs = 0
/** Bulk requests still to be answered 503, set by a test. */
let failBulk = 0
const count: Middleware = async (_req, res, route, next) => {
  counts[route.name] = (counts[route.name] ?? 0) + 1
  if (route.name === 'ofrep.bulk' && failBulk > 0) {
    failBulk--
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1' })
    res.end('{"errorDetails":"injected"}')
    return
  }
  if (route.name === 'ofrep.bulk' && bulkDelayMs > 0) await new Promise((r) => setTimeout(r, bulkDelayMs))
  return next()
}
const get = (name: string) => counts[name] ?? 0

async function startServer(port = 0) {
  server = await serveSwitch(sw, [count], { port })
}

const sw = killSwitch()
const flip = async () => String(await sw.flip())

async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000) {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function open(params: Record<string, string> = {}, flagsUrl = server.url): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: flagsUrl, events: 'off', ...params })
  await waitShown(page, String(sw.current), 15_000)
  return page
}

const beta = (page: Page) => page.evaluate(() => document.querySelector('[data-testid="flag-beta-dashboard-value"]')?.textContent)

beforeAll(async () => {
  browser = await launchChromium()
  fixture = await startFixture()
})
afterAll(async () => {
  await Promise.all([browser?.close(), fixture?.close()])
})
beforeEach(async () => {
  await sw.prepare('holdfast-e2e-live-')
  bulkDelayMs = 0
  failBulk = 0
  for (const key of Object.keys(counts)) delete counts[key]
  await startServer()
  context = await browser.newContext()
})
afterEach(async () => {
  await context?.close()
  await server?.close()
  await sw.remove()
})

describe('live updates in Chromium', () => {
  test('an edit of the flags file shows in an open tab within 2 s, with polling off', async () => {
    const page = await open()
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
    // The stream opened after the first answer and caught up with one conditional refetch.
    await new Promise((r) => setTimeout(r, 500))
    for (let i = 0; i < 3; i++) {
      const bulk = get('ofrep.bulk')
      const started = Date.now()
      const value = await flip()
      await waitShown(page, value)
      expect(Date.now() - started).toBeLessThan(2000)
      expect(get('ofrep.bulk') - bulk).toBe(1)
    }
  })

  test('three tabs: one stream connection and one bulk request per change', async () => {
    const pages = [await open()]
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the first tab to take the stream')
    pages.push(await open(), await open())
    // Give the other tabs time to (wrongly) open streams of their own.
    await new Promise((r) => setTimeout(r, 1000))
    expect(server.handler.stream!.connections()).toBe(1)
    for (let i = 0; i < 3; i++) {
      const bulk = get('ofrep.bulk')
      const value = await flip()
      await Promise.all(pages.map((p) => waitShown(p, value)))
      await new Promise((r) => setTimeout(r, 600)) // a follower that fetched late would show here
      expect(get('ofrep.bulk') - bulk).toBe(1)
    }
    expect(server.handler.stream!.connections()).toBe(1)
  })

  test('three tabs of one user and a slow server: still one bulk request per change (the others wait for the leader\'s answer)', async () => {
    // Each answer takes 800 ms: longer than the 100–400 ms a tab waits for another tab of its user.
    // The tabs of the leader's user wait for its answer instead, however long its request takes.
    const pages = [await open()]
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the first tab to take the stream')
    pages.push(await open(), await open())
    await new Promise((r) => setTimeout(r, 1500))
    bulkDelayMs = 800
    for (let i = 0; i < 2; i++) {
      const bulk = get('ofrep.bulk')
      const value = await flip()
      await Promise.all(pages.map((p) => waitShown(p, value)))
      await new Promise((r) => setTimeout(r, 600))
      expect(get('ofrep.bulk') - bulk).toBe(1)
    }
  })

  test('the leader\'s refetch fails: the other tabs of its user are told and fetch for themselves at once', async () => {
    const pages = [await open()]
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the first tab to take the stream')
    pages.push(await open(), await open())
    await new Promise((r) => setTimeout(r, 1500))
    failBulk = 1
    const started = Date.now()
    const value = await flip()
    // Not the 5 s a tab waits for a leader that says nothing: the leader's 503 is posted at once.
    await Promise.all(pages.slice(1).map((p) => waitShown(p, value, 4000)))
    expect(Date.now() - started).toBeLessThan(4000)
    // The leader itself retries on its backoff and gets there too.
    await waitShown(pages[0], value, 10_000)
  })

  test('tabs of two users: each shows its own values after a change, never the other user\'s', async () => {
    const ada = await open({ user: 'ada', plan: 'pro' })
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
    const bob = await open({ user: 'bob', plan: 'free' })
    expect(await beta(ada)).toBe('true')
    expect(await beta(bob)).toBe('false')
    await new Promise((r) => setTimeout(r, 1000))
    const bulk = get('ofrep.bulk')
    // Beta for the free plan instead of pro: ada loses it, bob gets it.
    const flags = JSON.parse(await readFile(sw.file, 'utf8'))
    flags.flags['beta-dashboard'].targeting = { if: [{ '==': [{ var: 'plan' }, 'free'] }, 'on', 'off'] }
    await writeFile(sw.file, JSON.stringify(flags, null, 2))
    await ada.waitForFunction(() => document.querySelector('[data-testid="flag-beta-dashboard-value"]')?.textContent === 'false', undefined, { timeout: 5000 })
    await bob.waitForFunction(() => document.querySelector('[data-testid="flag-beta-dashboard-value"]')?.textContent === 'true', undefined, { timeout: 5000 })
    await new Promise((r) => setTimeout(r, 800))
    expect(await beta(ada)).toBe('false')
    expect(await beta(bob)).toBe('true')
    // One request per user: bob's tab could not use ada's answer, and did not wait for one for ever.
    expect(get('ofrep.bulk') - bulk).toBe(2)
  })

  test('through a relay (--upstream): an edit at the upstream shows in an open tab within 2 s', async () => {
    const relay = await createFlagServer({ upstream: server.url, pollIntervalSeconds: 0.5, port: 0, logger: silent, maxEventLoopDelayMs: 0 })
    try {
      const page = await open({}, relay.url)
      await waitUntil(() => relay.handler.stream!.connections() === 1, 'the stream at the relay')
      for (let i = 0; i < 2; i++) {
        const started = Date.now()
        const value = await flip()
        await waitShown(page, value)
        expect(Date.now() - started).toBeLessThan(2000)
      }
    } finally {
      await relay.close()
    }
  })

  test('closing the leader tab moves the stream to another tab at once', async () => {
    const leader = await open()
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the first tab to take the stream')
    const others = [await open(), await open()]
    const streamsBefore = get('stream')
    await leader.close()
    const closedAt = Date.now()
    await waitUntil(() => get('stream') === streamsBefore + 1 && server.handler.stream!.connections() === 1, 'another tab to take the stream', 5000)
    // The lock passes at once and the new leader connects without the page-load delay: 31 ms in
    // `npm run bench:live`. The bound here is loose, for a loaded CI machine; it still tells a
    // takeover from a tab that only connects after the old leader's lease or a backoff ran out.
    expect(Date.now() - closedAt).toBeLessThan(2000)
    const value = await flip()
    await Promise.all(others.map((p) => waitShown(p, value)))
    expect(await shown(others[0])).toBe(value)
  })

  test('without Web Locks (the storage-lease fallback): still one stream for three tabs, and it moves when the leader closes', async () => {
    // As in a browser without navigator.locks: the tabs elect a leader through a localStorage lease.
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true })
    })
    const leader = await open()
    expect(await leader.evaluate(() => navigator.locks)).toBeUndefined()
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the first tab to take the stream')
    const others = [await open(), await open()]
    await new Promise((r) => setTimeout(r, 1500))
    expect(server.handler.stream!.connections()).toBe(1)
    const streamsBefore = get('stream')
    await leader.close()
    const closedAt = Date.now()
    // Both other tabs may claim the freed lease before either claim reaches the other's renderer
    // (localStorage is synchronised between processes after the fact): the next renewal settles
    // it, and the tab that lost closes its stream (test/core/live-lease.test.ts). So one or two
    // new streams, and one open.
    await waitUntil(() => get('stream') > streamsBefore && server.handler.stream!.connections() === 1, 'another tab to take the stream', 5000)
    // The closed leader renews no more: its lease runs out within a second of its last renewal.
    expect(Date.now() - closedAt).toBeLessThan(2500)
    expect(get('stream') - streamsBefore).toBeLessThanOrEqual(2)
    await new Promise((r) => setTimeout(r, 600))
    expect(server.handler.stream!.connections()).toBe(1)
    const bulk = get('ofrep.bulk')
    const value = await flip()
    await Promise.all(others.map((p) => waitShown(p, value)))
    await new Promise((r) => setTimeout(r, 600))
    // The change, plus at most the new leader's catch-up if it landed after the count was taken.
    expect(get('ofrep.bulk') - bulk).toBeLessThanOrEqual(2)
  })

  test('a server restart: the tabs reconnect without a storm and catch up with a change made meanwhile', async () => {
    const pages = [await open()]
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
    pages.push(await open(), await open())
    const port = server.port
    await server.close()
    const value = await flip()
    for (const key of Object.keys(counts)) delete counts[key]
    await startServer(port)
    const started = Date.now()
    await Promise.all(pages.map((p) => waitShown(p, value, 15_000)))
    // Count everything for 10 s from the restart.
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - started))))
    expect(server.handler.stream!.connections()).toBe(1)
    // One tab reconnects (a second try if its first raced the restart); one catch-up refetch is
    // shared by the tabs of this user. Generous bounds, far below a storm.
    expect(get('stream')).toBeLessThanOrEqual(3)
    expect(get('ofrep.bulk')).toBeLessThanOrEqual(6)
  })

  test('live updates turned off and on again: a tab opened after leads the stream, though the first tab (which gave its stream up) is still open', async () => {
    const first = await open()
    await waitUntil(() => server.handler.stream!.connections() === 1, 'the stream')
    const port = server.port
    // Restarted with live updates off: the first tab's stream drops, and its next answer (a new
    // body without `eventStreams`, so a new ETag: a 200) says there is none.
    await server.close()
    server = await createFlagServer({ flags: sw.file, port, logger: silent, maxEventLoopDelayMs: 0, middleware: [count], liveUpdates: false })
    await first.evaluate(() => window.holdfast.refresh())
    await new Promise((r) => setTimeout(r, 500))
    // On again. The first tab is left alone (no focus, no polling: it hears of nothing).
    await server.close()
    await startServer(port)
    const second = await open()
    // The second tab's answers advertise the stream: it connects, where the first tab holding on to
    // the leadership of a stream it no longer dials would have kept every later tab from it.
    await waitUntil(() => server.handler.stream!.connections() === 1, 'a stream again', 8000)
    const value = await flip()
    await Promise.all([waitShown(second, value), waitShown(first, value)])
  })
})
