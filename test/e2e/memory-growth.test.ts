// Memory under churn in real Chromium: the browser-only paths a dashboard tab left open for days
// goes through again and again (test/core|react|server's memory-growth tests measure the rest in
// Node). Each workload warms up, then the page's JS heap is measured over CDP (garbage collected)
// before and after N more iterations against real servers on 127.0.0.1:
//
//   1. a live stream the server drops, reconnected (backoff waits on the page's manual clock)
//   2. two tabs of one origin: the stream's leadership handed over (Web Locks, BroadcastChannel)
//   3. setContext across 2,000 users with the IndexedDB cache on (its 10-entry LRU evicting)
//   4. <FlagProvider> owning its client (events and live updates on) mounted and unmounted
//   5. change notices on an open stream, each a refetch answered 304
//
// Nothing leaks: no workload grows the heap by more than the warm-up noise, and none leaves an
// IndexedDB connection, BroadcastChannel, stream or timer behind. Every test can fail:
// HOLDFAST_INJECT_LEAK=1024 npx vitest run test/e2e/memory-growth.test.ts keeps 1 KB a measured
// iteration in the page (support/pageHeap.ts), and each limit (450 B an iteration) is passed.
//
// Measured 2026-12-07 on a 2-core machine, Chromium 156, growth an iteration, clean / 1 KB injected:
//   1. reconnects (1,000 after 200)              84-111 B / 1,159-1,180 B
//   2. handovers (100 rounds of 2, after 30)     1.7-3.3 B / 1,044 B a round (objects, see objectHeap;
//                                                the heap in use: 535 B a round, compiled code)
//   3. user switches (2,000 after 300)           56-57 B / 1,102 B; 10 cached users in the database
//   4. provider cycles (500 after 700)           110-116 B / 1,188 B; 1,200 streams opened, none left
//   5. notices (10,000 after 300)                5-17 B / 1,046-1,056 B
// What remains is V8 still compiling the paths a workload runs (compared by constructor between
// heap snapshots: code objects, no kind of script object growing), falling with a longer warm-up
// (provider cycles: 1,201 B after 50, 364 B after 400, 107 B after 1,000, 36 B after 2,000).
// The page's own console would look like a leak: Chromium keeps its last 1,000 messages, and a
// debug line a reconnect filled it over the first 1,000 (134-268 B a reconnect); the clients here
// log warnings and errors only. The file takes about 115 s, each test 10-37 s (notices the longest).
import { mkdtemp, rm } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createFlagServer, silentLogger, type FlagServer, type Middleware } from '@holdfast/server'
import { launchChromium } from './support/browser'
import { startFixture } from './support/fixture'
import { fixtureFlags, openFixture } from './support/fixturePage'
import { INJECT_LEAK, installPageHooks, liveCounts, objectHeap, pageGrowth, type PageGrowth } from './support/pageHeap'
import type { Closable } from './support/servers'

/**
 * Bytes an iteration may add to the heap: four times the most noise measured (116 B), below an
 * injected 1 KB (522 B a handover, the least of them). 300 B left CI's busier cores, which
 * compile later, 2.6 times the noise.
 */
const LIMIT = 450

let browser: Browser
let fixture: Closable
let dir: string
/** Serves the fixture page's own client: no stream, so it takes no part in any workload. */
let home: FlagServer
/** The workloads' server: live updates on, its streams tracked so a test can drop them. */
let live: FlagServer
let context: BrowserContext

const streams = new Set<ServerResponse>()
/** Resolved at the next stream opened or bulk request answered (see `until`). */
let served: () => void = () => {}
let nextServed = new Promise<void>((resolve) => (served = resolve))
function tell() {
  served()
  nextServed = new Promise<void>((resolve) => (served = resolve))
}
let streamOpens = 0
let bulks = 0
let notModified = 0
const track: Middleware = async (req, res, _route, next) => {
  if (req.url?.startsWith('/holdfast/v1/stream')) {
    streamOpens++
    streams.add(res)
    res.on('close', () => streams.delete(res))
    setImmediate(tell)
  } else if (req.url?.startsWith('/ofrep/v1/evaluate/flags')) {
    res.on('finish', () => {
      bulks++
      if (res.statusCode === 304) notModified++
      tell()
    })
  }
  return next()
}

beforeAll(async () => {
  browser = await launchChromium()
  dir = await mkdtemp(join(tmpdir(), 'holdfast-e2e-memory-'))
  const serve = { port: 0, host: '127.0.0.1', logger: silentLogger, maxEventLoopDelayMs: 0 }
  ;[fixture, home, live] = await Promise.all([
    startFixture(),
    createFlagServer({ ...serve, flags: fixtureFlags() as never, liveUpdates: false }),
    createFlagServer({ ...serve, flags: fixtureFlags() as never, eventsFile: join(dir, 'events.jsonl'), middleware: [track], liveUpdates: { retryMs: 500 } }),
  ])
})
afterAll(async () => {
  await Promise.all([browser?.close(), fixture?.close(), home?.close(), live?.close()])
  await rm(dir, { recursive: true, force: true })
})
beforeEach(async () => {
  context = await browser.newContext()
  await installPageHooks(context)
})
afterEach(async () => {
  await context?.close()
})

/** The fixture page, its own client on `home` (memory storage, no events): a quiet page to run a workload in. */
async function quietPage(): Promise<Page> {
  const page = await openFixture(context, fixture.url, { flags: home.url, events: 'off', storage: 'memory' })
  await page.waitForFunction(() => window.holdfast?.getStatus().state === 'ready', undefined, { timeout: 15_000 })
  return page
}

/** Waits for `check`, looking again at each stream opened or bulk answer; `step` (firing a timer on the page's clock) runs when `quietMs` pass without one. */
async function until(check: () => boolean, what: string, step?: () => Promise<unknown>, quietMs = 5): Promise<void> {
  const timeoutMs = 10_000
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    const quiet = await Promise.race([nextServed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), quietMs))])
    if (quiet && step) await step()
  }
}

/** Fires the page clock's next timer due within two minutes, once no request is waiting for its answer (a request's timeout is on that clock too). */
const fireNext = (page: Page) => page.evaluate(() => window.__live.fetches === 0 && window.__clock.fireNext(120_000))

/** The injected leak of `count` iterations (nothing unless HOLDFAST_INJECT_LEAK is set). */
const leak = (page: Page, count: number) => page.evaluate((count) => Array.from({ length: count }, () => window.__leak()), count)

function report(name: string, growth: PageGrowth): void {
  console.info(`[memory-growth] ${name}: ${growth.perIteration.toFixed(1)} B/iteration over ${growth.iterations} (${growth.bytes} B, heap ${growth.heapBefore} -> ${growth.heapAfter}, injected ${INJECT_LEAK} B x ${growth.kept})`)
}

/** A client in `page` on the live server, its timers on the page's manual clock, its stream never timed out (the server drops it). */
async function liveClient(page: Page, storageName: string): Promise<void> {
  await page.evaluate(
    async ([url, storageName]) => {
      // Warnings and errors counted; the debug line each drop writes is dropped (Chromium keeps the
      // page's last 1,000 console messages: 140 KB of the heap, which filled over the first 1,000
      // reconnects and looked like a leak of 134-268 B a reconnect).
      const logged = ((window as unknown as { logged: string[] }).logged = [] as string[])
      const logger = { debug() {}, info() {}, warn: (...a: unknown[]) => logged.push(a.join(' ')), error: (...a: unknown[]) => logged.push(a.join(' ')) }
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName, events: false, logger, clock: window.__clock, liveUpdates: { heartbeatTimeoutMs: 3_600_000 } })
      ;(window as unknown as { live: typeof client }).live = client
      await client.start()
    },
    [live.url, storageName] as const,
  )
  await until(() => streams.size === 1, 'the stream to open', () => fireNext(page))
}

test('a live stream the server drops 1,000 times: reconnecting keeps nothing', async () => {
  const page = await quietPage()
  streamOpens = 0
  await liveClient(page, 'reconnects')
  const reconnect = async (count: number) => {
    await leak(page, count)
    for (let i = 0; i < count; i++) {
      const opened = streamOpens
      for (const stream of streams) stream.destroy()
      await until(() => streamOpens > opened && streams.size === 1, `reconnect ${i + 1}`, () => fireNext(page))
    }
  }
  const growth = await pageGrowth(page, reconnect, 1000, 200)
  report('reconnects', growth)
  expect(streams.size).toBe(1)
  expect(growth.perIteration).toBeLessThan(LIMIT)
}, 90_000)

test('10,000 change notices on an open stream, each refetched and answered 304: nothing kept', async () => {
  const page = await quietPage()
  await liveClient(page, 'notices')
  // A second passes after each answer: each notice is refetched at once, not held back by the
  // 500 ms the client keeps between refetches for notices (which would merge a flood into one).
  await page.evaluate(() => (window.__clock.perFetchMs = 1000))
  const notices = async (count: number) => {
    await leak(page, count)
    for (let i = 0; i < count; i++) {
      const answered = notModified
      live.handler.stream!.notify({ type: 'refetchEvaluation' })
      // 1 ms: the refetch waits for a timer on the page's clock (the request scheduler's).
      await until(() => notModified > answered, `the refetch of notice ${i + 1}`, () => fireNext(page), 1)
    }
  }
  const growth = await pageGrowth(page, notices, 10_000, 300)
  report('notices', growth)
  expect(growth.perIteration).toBeLessThan(LIMIT)
}, 120_000)

/** Entries in the IndexedDB database `name`, by key prefix (`holdfast:flags:` for cached contexts). */
function storedKeys(page: Page, name: string): Promise<string[]> {
  return page.evaluate(
    (name) =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open(name)
        open.onerror = () => reject(open.error)
        open.onsuccess = () => {
          const db = open.result
          const keys = db.transaction('keyval').objectStore('keyval').getAllKeys()
          keys.onsuccess = () => (db.close(), resolve(keys.result.map(String)))
          keys.onerror = () => (db.close(), reject(keys.error))
        }
      }),
    name,
  )
}

test('setContext across 2,000 users with the IndexedDB cache on: nothing kept, and the database keeps 10 users', async () => {
  const page = await quietPage()
  await page.evaluate(async (url) => {
    const client = window.createHoldfastClient({ url, context: { targetingKey: 'user-0' }, storageName: 'switches', events: false, liveUpdates: false })
    ;(window as unknown as { switching: typeof client }).switching = client
    await client.start()
  }, home.url)
  let user = 0
  const switches = async (count: number) => {
    await leak(page, count)
    const from = user
    user += count
    const wrong = await page.evaluate(
      async ([from, to]) => {
        const client = (window as unknown as { switching: ReturnType<typeof window.createHoldfastClient> }).switching
        let wrong = 0
        for (let i = from + 1; i <= to; i++) {
          await client.setContext({ targetingKey: `user-${i}`, plan: 'pro' })
          if (client.getDetails('beta-dashboard', false).source !== 'network') wrong++
        }
        return wrong
      },
      [from, user] as const,
    )
    expect(wrong, 'switches whose values did not come from the server').toBe(0)
  }
  const growth = await pageGrowth(page, switches, 2000, 300)
  report('user switches', growth)
  const keys = await storedKeys(page, 'switches')
  expect(keys.filter((k) => k.startsWith('holdfast:flags:')).length).toBeLessThanOrEqual(10)
  expect(keys.length).toBeLessThanOrEqual(12)
  expect(growth.perIteration).toBeLessThan(LIMIT)
}, 90_000)

test('<FlagProvider> owning its client (events and live updates on) mounted and unmounted 500 times (after 700 to warm up): nothing kept, no connection, channel, stream or timer left', async () => {
  const page = await quietPage()
  const eventsUrl = `${live.url}/holdfast/v1/events`
  const before = await liveCounts(page)
  const cycles = async (count: number) => {
    await leak(page, count)
    await page.evaluate(
      async ([url, eventsUrl, count]) => {
        const shown = () => document.querySelector('[data-testid="owned"]')?.textContent
        for (let i = 0; i < count; i++) {
          // On the page's clock: the stream, dialled a second after the first answer, opens at once.
          const unmount = window.mountOwnedProvider({ url, context: { targetingKey: 'ada' }, storageName: 'owned', events: { url: eventsUrl }, liveUpdates: true, clock: window.__clock })
          const started = Date.now()
          const streams = window.__live.streamsAnswered
          while ((shown() !== 'true network' && shown() !== 'true cache') || window.__live.streamsAnswered === streams) {
            if (Date.now() - started > 10_000) throw new Error(`cycle ${i}: the provider showed ${shown()}, ${window.__live.streamsAnswered - streams} streams`)
            if (window.__live.fetches === 0) window.__clock.fireNext(2000)
            await new Promise((r) => setTimeout(r, 1))
          }
          unmount()
        }
      },
      [live.url, eventsUrl, count] as const,
    )
  }
  const growth = await pageGrowth(page, cycles, 500, 700)
  report('provider cycles', growth)
  // What the last unmounted clients let go of asynchronously (a database open in flight, a stream being dialled).
  await until(() => streams.size === 0, 'every stream to close')
  await page.waitForTimeout(500)
  const after = await liveCounts(page)
  console.info(`[memory-growth] open before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`)
  expect(after).toEqual({ ...before, fetches: 0, streamsAnswered: after.streamsAnswered })
  expect(after.streamsAnswered - before.streamsAnswered).toBe(1200)
  expect(growth.perIteration).toBeLessThan(LIMIT)
}, 90_000)

test('two tabs: the stream\'s leadership handed over 200 times (the leader tab closed and reopened): the surviving tab keeps nothing', async () => {
  // Each tab runs a client on the live server (its timers on the page's clock). The survivor leads
  // first; the other tab follows. Each round: the survivor is frozen (the browser's 'freeze' event:
  // a background tab about to be frozen gives its place up at once) and the other tab takes the
  // stream over; the survivor resumes and queues behind it; the leader tab is closed and the
  // survivor takes the stream back; a new tab opens and follows. Two handovers in the survivor a round.
  const open = async () => {
    const page = await quietPage()
    await page.evaluate(async (url) => {
      const client = window.createHoldfastClient({ url, context: { targetingKey: 'ada' }, storageName: 'tabs', events: false, clock: window.__clock, liveUpdates: { heartbeatTimeoutMs: 3_600_000 } })
      await client.start()
    }, live.url)
    return page
  }
  const survivor = await open()
  await until(() => streams.size === 1, 'the survivor to take the stream', () => fireNext(survivor))
  let other = await open()
  const rounds = async (count: number) => {
    await leak(survivor, count)
    for (let i = 0; i < count; i++) {
      let opened = streamOpens
      await survivor.evaluate(() => document.dispatchEvent(new Event('freeze')))
      await until(() => streamOpens > opened && streams.size === 1, `round ${i + 1}: the other tab to take the stream over`, () => fireNext(other))
      await survivor.evaluate(() => document.dispatchEvent(new Event('resume')))
      opened = streamOpens
      await other.close()
      await until(() => streamOpens > opened && streams.size === 1, `round ${i + 1}: the survivor to take the stream back`, () => fireNext(survivor))
      other = await open()
    }
  }
  // Objects, not compiled code (see objectHeap): the heap in use grew 535 B a round after 30 or
  // 150 rounds of warm-up alike, all of it code and the browser's own (network records,
  // resource timings) when snapshots 80 rounds apart were compared by constructor.
  const growth = await pageGrowth(survivor, rounds, 100, 30, objectHeap)
  report('leader handovers (2 a round), objects', growth)
  // The survivor's own two databases (the client's, and the fixture's events off: none) and its channel.
  expect(await liveCounts(survivor)).toMatchObject({ idb: 1, channels: 1, eventSources: 0 })
  expect(growth.perIteration / 2).toBeLessThan(LIMIT)
}, 90_000)
