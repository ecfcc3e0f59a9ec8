// A stale relay answer older than what the browser holds (CONTRACT §4 last known good, §9
// staleness). A fleet of relays behind one URL: relay A follows the upstream; relay B restarts
// during an upstream outage and serves its data dir, `stale: true` with the `fetchedAt` of the
// day it last reached the upstream. Before, the browser replaced the kill switch engaged this
// morning with yesterday's value, and dropped the flag added since (a clean answer without it).
//
//   upstream     kill=false ───────────────── kill=true, +promo ──────── down
//   relay B      fetched (data dir) ── stops                               restarts: stale, fetchedAt=then
//   relay A                                 fetched ──► browser (today)
//   browser      ............................. kill=true, promo ........... must keep them, stale
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type Clock, type EvaluationContext, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFlagServer, silentLogger, type FlagServer } from '@holdfast/server'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger } from '../support/clock'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function upstream(entries: unknown[]): Promise<FaultServer> {
  const server = await createFaultServer(flags(entries))
  cleanup.push(() => server.close())
  return server
}

async function relay(options: { upstream: string; dataDir?: string }): Promise<FlagServer> {
  const server = await createFlagServer({ ...options, port: 0, logger: silentLogger, maxEventLoopDelayMs: 0, liveUpdates: false })
  cleanup.push(() => server.close())
  return server
}

/** One URL in front of the fleet: each request goes to the relay `to()` names now (a load balancer). */
function balancer() {
  let target = ''
  const requests: string[] = []
  const fetchVia: typeof fetch = (input, init) => {
    requests.push(target)
    return fetch(String(input).replace('http://fleet.invalid', target), init)
  }
  return { url: 'http://fleet.invalid', fetch: fetchVia, to: (relay: FlagServer) => void (target = relay.url), requests }
}

function client(fleet: ReturnType<typeof balancer>, storage: FlagStorage | 'memory' = 'memory') {
  const logger = createTestLogger()
  const c: FlagClient = createClient({ url: fleet.url, fetch: fleet.fetch, context: { targetingKey: 'alice' }, storage, logger, clock: createManualClock(), liveUpdates: false, refreshOnFocus: false })
  cleanup.push(() => c.close())
  return { client: c, logger }
}

/** Relay B's data dir holds alice's answer from "yesterday" (kill off); then B stops. The upstream moves on (kill on, promo added). */
async function yesterdayInDataDir() {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-stale-older-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'b')
  const up = await upstream([{ key: 'kill', value: false, variant: 'off' }, { key: 'banner', value: 'old' }])
  const b = await relay({ upstream: up.url, dataDir })
  const fleet = balancer()
  fleet.to(b)
  const seed = client(fleet).client
  await seed.start()
  expect(seed.getGate('kill', true)).toBe(false)
  const yesterday = (await (await fetch(`${b.url}/holdfast/v1/status`)).json()).fetchedAt as number
  await seed.close()
  await b.close()
  // Relay A's first answer must come at least a millisecond after B's, as it would the next day.
  while (Date.now() <= yesterday) await new Promise((done) => setTimeout(done, 1))
  up.always(flags([{ key: 'kill', value: true, variant: 'on' }, { key: 'banner', value: 'new' }, { key: 'promo', value: 'spring' }]))
  return { up, dataDir, fleet, yesterday }
}

/** Relay B again, on its data dir, with the upstream down: it serves yesterday's answer, stale. */
async function restartB(up: FaultServer, dataDir: string) {
  up.always({ status: 503, raw: '' })
  return relay({ upstream: up.url, dataDir })
}

test("a relay's stale answer older than what the browser holds does not take the browser back in time", async () => {
  const { up, dataDir, fleet, yesterday } = await yesterdayInDataDir()
  const a = await relay({ upstream: up.url })
  fleet.to(a)
  const { client: browser, logger } = client(fleet)
  expect((await browser.start()).state).toBe('ready')
  const today = browser.getDetails('kill', false)
  expect(today).toMatchObject({ value: true, variant: 'on', source: 'network', stale: false })

  const b = await restartB(up, dataDir)
  fleet.to(b)
  const status = await browser.refresh()
  expect(fleet.requests.at(-1)).toBe(b.url)
  // The relay said its values are stale, and from when: the page is told so, never silently.
  expect(status).toMatchObject({ state: 'stale', source: 'network', error: { code: 'UPSTREAM_STALE' } })
  // Today's values stay (stale: no fresh answer vouches for them now), with their own updatedAt.
  expect(browser.getDetails('kill', false)).toMatchObject({ value: true, variant: 'on', stale: true, updatedAt: today.updatedAt })
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'new', stale: true })
  // A clean answer without `promo` removes it only when it is not older than what is held.
  expect(browser.getDetails('promo', '')).toMatchObject({ value: 'spring', stale: true })
  expect(browser.getDetails('kill', false).updatedAt!).toBeGreaterThan(yesterday)
  // What the relay said, and that it was not applied, is in the status and the log.
  expect(status.error!.message).toMatch(/older than the values held/)
  expect(logger.warnings.join('\n')).toMatch(/older than the values held/)

  // Asked again, relay B would confirm its snapshot with a 304 to its ETag: that must not pass
  // yesterday's snapshot off as what is held (a 304 keeps only the keys of the snapshot it names).
  expect((await browser.refresh()).state).toBe('stale')
  expect(browser.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
  expect(browser.getDetails('promo', '')).toMatchObject({ value: 'spring', stale: true })

  // Relay A answers again, its own last known good (stale, but from today): applied as always.
  fleet.to(a)
  expect((await browser.refresh()).error?.message).not.toMatch(/older/)
  expect(browser.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
  // The upstream is back: fresh, stale no more.
  up.always(flags([{ key: 'kill', value: true, variant: 'on' }, { key: 'banner', value: 'new' }, { key: 'promo', value: 'spring' }]))
  expect((await browser.refresh()).state).toBe('ready')
  expect(browser.getDetails('kill', false)).toMatchObject({ value: true, stale: false })
})

test('after a reload during the outage, the cached values are not replaced by the older stale answer either', async () => {
  const { up, dataDir, fleet } = await yesterdayInDataDir()
  const a = await relay({ upstream: up.url })
  fleet.to(a)
  const storage = createMemoryStorage()
  const before = client(fleet, storage).client
  await before.start()
  expect(before.getGate('kill', false)).toBe(true)
  await before.close()

  // The page is reloaded; the load balancer sends it to relay B, restarted on yesterday's data dir.
  const b = await restartB(up, dataDir)
  fleet.to(b)
  const { client: browser } = client(fleet, storage)
  const status = await browser.start()
  expect(status).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  expect(browser.getDetails('kill', false)).toMatchObject({ value: true, variant: 'on', stale: true })
  expect(browser.getDetails('promo', '')).toMatchObject({ value: 'spring', stale: true })
  // And what was written back is still today's: the next reload shows it too.
  await browser.close()
  const again = client(fleet, storage).client
  await again.start()
  expect(again.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
  expect(again.getDetails('promo', '')).toMatchObject({ value: 'spring' })
})

// Times come from the relays' clocks. A relay whose clock runs hours ahead must not make this page
// refuse what comes after it: fresh answers always apply, and a stale answer is measured against
// times capped by this device's clock, so one dated a minute after what the page holds applies.
test('a relay clock hours ahead holds no later answer off', async () => {
  const HOUR = 3600_000
  const server = await createFaultServer()
  cleanup.push(() => server.close())
  const answer = (value: string, fetchedAt: number, stale: boolean) => ({
    status: 200,
    body: { flags: [{ key: 'banner', value }], metadata: { holdfast: { source: stale ? 'data-dir' : 'upstream', fetchedAt, stale } } },
  })
  const clock = createManualClock()
  const browser = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false })
  cleanup.push(() => browser.close())
  // A relay 5 hours ahead answers first.
  server.always(answer('ahead', clock.now() + 5 * HOUR, false))
  await browser.start()
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'ahead', stale: false })
  expect(browser.getDetails('banner', '').updatedAt).toBeLessThanOrEqual(clock.now())
  // A minute later, a relay with a right clock: fresh, applied.
  clock.advance(60_000)
  server.always(answer('right', clock.now(), false))
  await browser.refresh()
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'right', stale: false })
  // Then a relay whose upstream failed after that answer: its stale values are newer, applied.
  clock.advance(60_000)
  server.always(answer('newer, kept by the relay', clock.now() - 30_000, true))
  expect((await browser.refresh()).error?.message).not.toMatch(/older/)
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'newer, kept by the relay', stale: true })
  // The relay 5 hours ahead, stale now: dated after everything held, applied.
  server.always(answer('ahead, kept', clock.now() + 5 * HOUR - 1000, true))
  await browser.refresh()
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'ahead, kept', stale: true })
  // And one dated before what is held: kept, said so.
  server.always(answer('yesterday', clock.now() - 24 * HOUR, true))
  expect((await browser.refresh()).error?.message).toMatch(/older than the values held/)
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'ahead, kept', stale: true })
  // A fresh answer always applies, whatever its time.
  server.always(answer('fresh, clock behind', clock.now() - 5 * HOUR, false))
  expect((await browser.refresh()).state).toBe('ready')
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'fresh, clock behind', stale: false })
})

const HOUR = 3600_000
/** An answer for `banner` as a relay sends it: fresh, or stale with the time of its last known good. */
const answer = (value: string, fetchedAt: number, stale: boolean) => ({
  status: 200,
  body: { flags: [{ key: 'banner', value }], metadata: { holdfast: { source: stale ? 'data-dir' : 'upstream', fetchedAt, stale } } },
})

// The page's values are another context's (the same user with other attributes: a plan upgrade
// through setContext, or a reload with them, the cache being one entry per targetingKey): a stale
// answer for the new context is that context's last known good, and nothing held is newer for it.
// Measured against the other attributes' times, it was refused and the free plan's values stayed
// for the pro user (kept, marked stale) for the whole outage, after every reload too.
test("a stale answer for the same user's new attributes is not refused as older than the old attributes' values", async () => {
  const server = await createFaultServer()
  cleanup.push(() => server.close())
  const clock = createManualClock()
  const options = { url: server.url, storage: createMemoryStorage(), logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false }
  const browser = createClient({ ...options, context: { targetingKey: 'alice', plan: 'free' } })
  cleanup.push(() => browser.close())
  server.always(answer('free', clock.now(), false))
  await browser.start()
  expect(browser.getValue('banner', '')).toBe('free')
  // The upstream goes down; the relay holds alice-as-pro from an hour ago.
  clock.advance(60_000)
  server.always(answer('pro', clock.now() - HOUR, true))
  const status = await browser.setContext({ targetingKey: 'alice', plan: 'pro' })
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'pro', stale: true })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  expect(status.error?.message).not.toMatch(/older/)
})

test("after a reload with new attributes, the cache entry of the old ones does not hold off their stale answer", async () => {
  const server = await createFaultServer()
  cleanup.push(() => server.close())
  const clock = createManualClock()
  const storage = createMemoryStorage()
  const options = { url: server.url, storage, logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false }
  // The page as bob on the free plan saved its values; he upgrades on another device, then reloads.
  const first = createClient({ ...options, context: { targetingKey: 'bob', plan: 'free' } })
  cleanup.push(() => first.close())
  server.always(answer('free', clock.now(), false))
  await first.start()
  await first.close()
  clock.advance(60_000)
  server.always(answer('pro', clock.now() - HOUR, true))
  const reloaded = createClient({ ...options, context: { targetingKey: 'bob', plan: 'pro' } })
  cleanup.push(() => reloaded.close())
  expect((await reloaded.start()).error?.message).not.toMatch(/older/)
  expect(reloaded.getDetails('banner', '')).toMatchObject({ value: 'pro', stale: true })
})

// The same with nothing cached yet: a page rendered for the free plan (its bootstrap) switches to pro
// before any answer; the bootstrap's values stand in, and the relay's stale pro answer replaces them.
test("a bootstrap of the user's old attributes does not hold off a stale answer for the new ones", async () => {
  const server = await createFaultServer()
  cleanup.push(() => server.close())
  const clock = createManualClock()
  server.always(answer('pro', clock.now() - HOUR, true))
  const bootstrap = { context: { targetingKey: 'alice', plan: 'free' }, flags: [{ key: 'banner', value: 'free' }], fetchedAt: clock.now() }
  const browser = createClient({ url: server.url, storage: 'memory', logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false, bootstrap, context: bootstrap.context })
  cleanup.push(() => browser.close())
  expect(browser.getValue('banner', '')).toBe('free')
  // Switched before start (the app knew the plan by then): the first request asks for pro.
  void browser.setContext({ targetingKey: 'alice', plan: 'pro' })
  const status = await browser.start()
  expect(browser.getDetails('banner', '')).toMatchObject({ value: 'pro', stale: true })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  expect(status.error?.message).not.toMatch(/older/)
})

// A per-flag `updatedAt` read back from the cache is this device's record of when it got the value:
// one later than this device's now (written by an older SDK from a bootstrap dated up to a day
// ahead, or corrupt), not finite or negative, is unknown (the entry's save time stands in). Read as
// given, 1e300 made every stale answer "older" for that flag, for good: its cached value was kept
// over every relay's last known good until a fresh answer came.
test.each([['a day ahead', 24 * HOUR], ['1e300', 1e300], ['negative', -5]])(
  "a cached flag's untrustworthy updatedAt (%s) does not hold off a stale answer after a reload",
  async (_name, bad) => {
    const server = await createFaultServer()
    cleanup.push(() => server.close())
    const clock = createManualClock()
    const map = new Map<string, unknown>()
    const options = { url: server.url, storage: createMemoryStorage(map), logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false, context: { targetingKey: 'alice' } }
    const first = createClient(options)
    cleanup.push(() => first.close())
    server.always(answer('cached', clock.now(), false))
    await first.start()
    await first.close()
    const savedAt = clock.now()
    const entries = [...map.values()].filter((v): v is { flags: Array<{ updatedAt?: number }>; heldAt?: number } => (v as { v?: unknown }).v === 1)
    expect(entries).toHaveLength(1)
    delete entries[0]!.heldAt
    entries[0]!.flags[0]!.updatedAt = bad === 24 * HOUR ? savedAt + bad : bad

    // Two hours later the page is reloaded during an outage: first shown from the cache alone.
    clock.advance(2 * HOUR)
    server.always({ status: 503, raw: '' })
    const reloaded = createClient(options)
    cleanup.push(() => reloaded.close())
    expect((await reloaded.start()).source).toBe('cache')
    const cached = reloaded.getDetails('banner', '')
    expect(cached.value).toBe('cached')
    expect(cached.updatedAt).toBeGreaterThan(0)
    expect(cached.updatedAt).toBeLessThanOrEqual(savedAt)
    // A relay's last known good from an hour ago is newer than that entry: applied.
    server.always(answer('an hour ago', clock.now() - HOUR, true))
    const status = await reloaded.refresh()
    expect(status).toMatchObject({ state: 'stale', source: 'network', error: { code: 'UPSTREAM_STALE' } })
    expect(status.error?.message).not.toMatch(/older/)
    expect(reloaded.getDetails('banner', '')).toMatchObject({ value: 'an hour ago', stale: true })
  },
)

// Status.source is the source of the data most recently applied (CONTRACT §4): a stale answer
// refused as older for every flag applied nothing, and the page still shows the cache's values.
test('a stale answer refused entirely leaves Status.source as the source of what is shown', async () => {
  const server = await createFaultServer()
  cleanup.push(() => server.close())
  const clock = createManualClock()
  const options = { url: server.url, storage: createMemoryStorage(), logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false, context: { targetingKey: 'alice' } }
  const first = createClient(options)
  cleanup.push(() => first.close())
  server.always(answer('today', clock.now(), false))
  await first.start()
  await first.close()
  clock.advance(60_000)
  server.always(answer('yesterday', clock.now() - 24 * HOUR, true))
  const reloaded = createClient(options)
  cleanup.push(() => reloaded.close())
  const status = await reloaded.start()
  expect(status.error?.message).toMatch(/older than the values held/)
  expect(reloaded.getDetails('banner', '')).toMatchObject({ value: 'today', source: 'cache', stale: true })
  expect(status).toMatchObject({ state: 'stale', source: 'cache', error: { code: 'UPSTREAM_STALE' } })
})

/** A page that got `banner` = `value` at the clock's now and closed, on a storage the next page reads. */
async function visited(context: EvaluationContext, value: string, clock: Clock = createManualClock(), map = new Map<string, unknown>()) {
  const server = await createFaultServer()
  cleanup.push(() => server.close())
  const options = { url: server.url, storage: createMemoryStorage(map), logger: createTestLogger(), clock, liveUpdates: false, refreshOnFocus: false }
  const first = createClient({ ...options, context })
  cleanup.push(() => first.close())
  server.always(answer(value, clock.now(), false))
  await first.start()
  await first.close()
  return { server, options }
}

// The same user's attributes set before start() (an app that learns the plan while the page
// loads): the switch has nothing of this page's memory to show, so what is held stands in (NaN: no
// time to measure against) until start() reads the cache, whose entry is exactly these attributes'.
// Before, that NaN swallowed the entry's time: yesterday's stale relay answer replaced this
// morning's cached values (a kill switch turned back off) although they are this very context's.
test("attributes set before start: the cache entry of exactly those attributes still holds off an older stale answer", async () => {
  const clock = createManualClock()
  const pro = { targetingKey: 'alice', plan: 'pro' }
  const { server, options } = await visited(pro, 'today', clock)

  // Reloaded during the outage; the relay behind the load balancer holds yesterday's answer.
  clock.advance(60_000)
  server.always(answer('yesterday', clock.now() - 24 * HOUR, true))
  // The page was rendered for alice before her plan was known: its values stand in until then.
  const anonymous = { targetingKey: 'alice' }
  const bootstrap = { context: anonymous, flags: [{ key: 'banner', value: 'anonymous' }, { key: 'signup-nudge', value: true }], fetchedAt: clock.now() }
  const reloaded = createClient({ ...options, context: anonymous, bootstrap })
  cleanup.push(() => reloaded.close())
  void reloaded.setContext(pro)
  const status = await reloaded.start()
  expect(server.requests.at(-1)!.body).toMatchObject({ context: pro })
  expect(reloaded.getDetails('banner', '')).toMatchObject({ value: 'today', source: 'cache', stale: true })
  // Nor does a flag only the other attributes' page had pass for the pro plan's.
  expect(reloaded.getDetails('signup-nudge', false)).toMatchObject({ value: false, source: 'default' })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  expect(status.error?.message).toMatch(/older than the values held/)
})

// The same read with an injected clock that reads 0 (sinon's fake timers start there, so an app's
// own test suite runs Holdfast so): the "later than now" check was skipped at 0 (`now ? … : …`), so
// a cached `updatedAt` of 1e300 was read as given there and not in production.
test("with a clock reading 0, a cached updatedAt later than now is still not trusted", async () => {
  const map = new Map<string, unknown>()
  const alice = { targetingKey: 'alice' }
  const { server, options } = await visited(alice, 'cached', { ...createManualClock(), now: () => 0 }, map)
  const entry = [...map.values()].find((v): v is { flags: Array<{ updatedAt?: number }> } => (v as { v?: unknown }).v === 1)!
  entry.flags[0]!.updatedAt = 1e300

  server.always({ status: 503, raw: '' })
  const reloaded = createClient({ ...options, context: alice })
  cleanup.push(() => reloaded.close())
  await reloaded.start()
  expect(reloaded.getDetails('banner', '')).toMatchObject({ value: 'cached', source: 'cache' })
  expect(reloaded.getDetails('banner', '').updatedAt).not.toBe(1e300)
})
