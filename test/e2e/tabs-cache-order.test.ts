// Two pages of one origin share one IndexedDB entry per user. Within a page, a relay's stale answer
// older than the values held never replaces them (CONTRACT §9: a relay restarted on an old data dir
// never takes the page back). Across pages the entry was written blind, last writer wins: a page
// that still held older values took such a stale answer (its values are older still) and wrote it
// over the newer values another page had saved. After a reload in an outage the older values came
// back. Now such a write leaves a newer entry of the same context alone.
//
//   relay      v1 fresh (t-3 s) ── v2 fresh (t-1 s) ─────────── stale v1.5 (t-2 s) ── 503
//   page A     v1                   refresh: v2, saved
//   page B     v1                                                refresh: v1.5, saved over v2 (before)
//   reload A                                                                         shows v1.5 (before), v2 (now)
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Page } from 'playwright-core'
import { holdDatabase, openFixture, readShown, releaseDatabase, waitForCachedFlags, waitForStatus } from './support/fixturePage'
import { HOST } from './support/servers'
import { useFixtureSuite } from './support/suite'

const e2e = useFixtureSuite()
/** What the relay answers now: a banner text and its metadata.holdfast, or a status. */
let answer: { banner: string; fetchedAt: number; stale: boolean } | 503 = 503
const relay = createServer((req, res) => {
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*' }
  req.resume()
  req.on('end', () => {
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end()
    if (answer === 503) return void res.writeHead(503, cors).end()
    const { banner, fetchedAt, stale } = answer
    res.writeHead(200, { ...cors, 'Content-Type': 'application/json' }).end(
      JSON.stringify({
        flags: [
          { key: 'checkout-kill-switch', value: true, reason: 'STATIC' },
          { key: 'banner-config', value: { text: banner }, reason: 'STATIC' },
        ],
        metadata: { holdfast: { source: stale ? 'data-dir' : 'upstream', fetchedAt, stale } },
      }),
    )
  })
})
let relayUrl = ''
beforeAll(async () => {
  await new Promise<void>((resolve) => relay.listen(0, HOST, resolve))
  relayUrl = `http://${HOST}:${(relay.address() as AddressInfo).port}`
})
let asked = 0
relay.on('request', (req) => void (req.method === 'POST' && asked++))
afterAll(async () => {
  relay.closeAllConnections()
  await new Promise((resolve) => relay.close(resolve))
})

const banner = async (page: Page) => (await readShown(page)).values['banner-config']
/** A page of the fixture on the relay, once it shows the relay's answer. */
const openReady = async (params: Record<string, string> = {}) => {
  const page = await openFixture(e2e.context, e2e.fixture.url, { flags: relayUrl, events: 'off', ...params })
  await waitForStatus(page, 'ready', 'network')
  return page
}
const refresh = (page: Page) => page.evaluate(() => window.holdfast.refresh())

test("a page holding older values takes a relay's older stale answer, but does not write it over the newer values another page saved", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const a = await openReady()
  const b = await openReady()
  await waitForCachedFlags(a)

  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(a)
  expect(await banner(a)).toBe('v2')
  await a.waitForTimeout(300) // the write lands

  // A relay replica restarted on an old data dir: stale, as of a time between v1 and v2. Page B
  // still holds v1, older than that: it shows v1.5 (stale), as it must.
  answer = { banner: 'v1.5', fetchedAt: now - 2000, stale: true }
  expect((await refresh(b)).state).toBe('stale')
  expect(await banner(b)).toBe('v1.5')
  await b.waitForTimeout(300)

  answer = 503
  await a.reload()
  await waitForStatus(a, 'stale')
  // Before: 'v1.5', the older values page B wrote last.
  expect(await banner(a)).toBe('v2')
})

// A page that takes a user (at start, on a switch) reads their entry and then "touches" it (writes it
// back with its recency). Read and touch were two transactions: another page's write that landed
// between them was overwritten with the entry as it was read, older values.
//
//   page B   ada v1 ── refresh: v2 ── write(v2) ─────────────┐
//   page A   bob ── switch to ada: read(v1) ─────────────────┴── touch(v1 + usedAt): v2 gone (before)
//   reload B (outage)                                            shows v1 (before), v2 (now)
test("a page taking a user while another saves newer values for them does not write the older entry it read back over them", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const b = await openReady()
  const a = await openReady({ user: 'bob' })
  await waitForCachedFlags(b)
  await b.waitForTimeout(300) // the writes land

  await holdDatabase(b) // a busy disk, for well under the client's 3 s storage bound
  const before = asked
  await a.evaluate(() => window.fixture.switchUser({ targetingKey: 'ada', plan: 'pro' }))
  await a.waitForTimeout(100)
  expect(asked, "page A is still reading ada's entry").toBe(before)
  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(b)
  expect(await banner(b)).toBe('v2')
  await b.waitForTimeout(100) // B's write is queued behind the busy database, after A's read
  answer = 503
  await releaseDatabase(b)

  await waitForStatus(a, 'stale')
  expect(await banner(a)).toBe('v1') // what it read before B's answer: honest
  // Still on IndexedDB: the read and its touch went through (a failed one would fall back to memory).
  expect(await a.evaluate(() => window.holdfast.getStatus().storage)).toBe('indexeddb')
  await a.waitForTimeout(300) // the writes land
  await b.reload()
  await waitForStatus(b, 'stale')
  // Before: 'v1', the entry page A read and wrote back over B's newer one.
  expect(await banner(b)).toBe('v2')
})

// The stale write's check (read the entry, keep it when vouched for later) and its write were two
// transactions as well: a newer entry another tab wrote in the same moment landed between them.
//
//   page B   v1 ── stale v1.5: read(v1, older) ───────────────┐
//   page A   v1 ── v2: write(v2) ──────────────────────────────┴── write(v1.5): v2 gone (before)
test("a relay's older stale answer and another page's newer values written at the same moment leave the newer ones saved", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const a = await openReady()
  const b = await openReady()
  await waitForCachedFlags(a)
  await a.waitForTimeout(300) // the writes land

  await holdDatabase(a) // both writes below queue behind it, B's first
  answer = { banner: 'v1.5', fetchedAt: now - 2000, stale: true }
  expect((await refresh(b)).state).toBe('stale')
  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  expect((await refresh(a)).state).toBe('ready')
  await a.waitForTimeout(100)
  answer = 503
  await releaseDatabase(a)
  await a.waitForTimeout(300) // the writes land

  await b.reload()
  await waitForStatus(b, 'stale')
  // Before: 'v1.5', written over A's v2 after its check had read v1.
  expect(await banner(b)).toBe('v2')
})

// A page switching back to a user it showed before takes their values from its own memory at once
// (no flash of defaults). Another page may have saved newer ones for that user meanwhile: the page
// showed what it remembered, older than what the device holds, for as long as the network failed.
//
//   page A   ada v1 ── switch to bob ───────────────────────── back to ada: v1 (before), v2 (now)
//   page B                      ada: refresh: v2, saved                    (relay down: 503)
test('a page switching back to a user shows the newest values saved for them, not the older ones it remembered', async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const a = await openReady()
  await waitForCachedFlags(a)
  await a.evaluate(() => window.fixture.switchUser({ targetingKey: 'bob', plan: 'pro' }))
  await waitForStatus(a, 'ready', 'network')

  const b = await openReady()
  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(b)
  expect(await banner(b)).toBe('v2')
  await b.waitForTimeout(300) // the write lands

  answer = 503
  await a.evaluate(() => window.fixture.switchUser({ targetingKey: 'ada', plan: 'pro' }))
  await waitForStatus(a, 'stale')
  // Before: 'v1', what page A remembered of ada, although v2 was saved for her.
  expect(await banner(a)).toBe('v2')
})

/** Waits until the page's first attempt has settled, whatever it shows (stale cached values, or an error with none). */
const settled = (page: Page) =>
  page.waitForFunction(() => ['ready', 'stale', 'error'].includes(document.querySelector('[data-testid="status-state"]')?.textContent ?? ''), undefined, {
    timeout: 15_000,
  })

/**
 * How many cache entries (users) the origin's database holds; with `corrupt`, each is first
 * overwritten with another version's (or another script's) entry, unreadable to this client.
 */
const cachedUsers = (page: Page, corrupt = false) =>
  page.evaluate(
    (corrupt) =>
      new Promise<number>((resolve) => {
        const open = indexedDB.open('holdfast')
        open.onsuccess = () => {
          const db = open.result
          const store = db.transaction('keyval', corrupt ? 'readwrite' : 'readonly').objectStore('keyval')
          const keys = store.getAllKeys()
          keys.onsuccess = () => {
            const entries = keys.result.filter((k) => String(k).startsWith('holdfast:flags:'))
            if (corrupt) for (const key of entries) store.put({ v: 999, flags: 'garbage' }, key)
            store.transaction.oncomplete = () => (db.close(), resolve(entries.length))
          }
        }
      }),
    corrupt,
  )

// A page deleting a corrupt entry for a user it takes read it in one transaction and deleted it in
// another: the newer values another page saved for that user in between were deleted with it.
//
//   page B   ada v1 ── (entry corrupted) ── refresh: v2 ── write(v2) ──┐
//   page A   bob ── switch to ada: read(corrupt) ───────────────────────┴── delete: v2 gone (before)
//   reload B (outage)                                                       shows nothing (before), v2 (now)
test("a page discarding a corrupt entry does not delete the newer values another page saved over it meanwhile", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const b = await openReady()
  await waitForCachedFlags(b)
  await b.waitForTimeout(300) // the write lands
  expect(await cachedUsers(b, true)).toBe(1) // ada's entry, unreadable to this client now
  const a = await openReady({ user: 'bob' })
  await a.waitForTimeout(300) // the writes land

  await holdDatabase(b)
  await a.evaluate(() => window.fixture.switchUser({ targetingKey: 'ada', plan: 'pro' }))
  await a.waitForTimeout(100)
  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(b)
  expect(await banner(b)).toBe('v2')
  await b.waitForTimeout(100) // B's write is queued behind the busy database, after A's read
  answer = 503 // A's own request for ada fails: it writes nothing for her
  await releaseDatabase(b)
  await waitForStatus(a, 'error')
  await a.waitForTimeout(300) // the writes land

  await b.reload()
  await settled(b)
  // Before: the default text, ada's entry deleted with the newer values B had saved into it.
  expect(await banner(b)).toBe('v2')
})

// Past ten users a page removes the least recently used entry: it read every entry in one
// transaction and deleted in another, so the user another page had just saved (used most recently
// by then) was deleted when it had been the oldest a moment before.
//
//   page B   ada v1 (the oldest of 11) ───────── refresh: v2 ── write(v2) ──┐
//   page A   u1…u9 ── u10: write ── read all (ada oldest) ─────────────────┴── delete ada: v2 gone (before)
//   reload B (outage)                                                           shows nothing (before), v2 (now)
test("a page evicting the least recently used user does not delete the newer values another page has just saved for them", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const b = await openReady()
  await waitForCachedFlags(b)
  await b.waitForTimeout(300) // ada's entry lands first: the oldest
  const a = await openReady({ user: 'u1' })
  for (let i = 2; i <= 9; i++) {
    await a.evaluate((user) => window.fixture.switchUser({ targetingKey: user, plan: 'pro' }), `u${i}`)
    await expect.poll(() => cachedUsers(a), { timeout: 10_000 }).toBe(i + 1)
  }
  // The eviction's read of every entry waits behind a busy database: page A's listing of the keys
  // (the first after arming) holds it, as a slow disk would, until released.
  await a.evaluate(() => {
    const w = window as unknown as { armed?: boolean; holding?: boolean; release?: boolean }
    const getAllKeys = IDBObjectStore.prototype.getAllKeys
    IDBObjectStore.prototype.getAllKeys = function (this: IDBObjectStore, ...args: Parameters<typeof getAllKeys>) {
      const request = getAllKeys.apply(this, args)
      if (w.armed) {
        w.armed = false
        const store = this.transaction.db.transaction('keyval', 'readwrite').objectStore('keyval')
        const spin = () => void (w.release || (store.get('holdfast:busy').onsuccess = spin))
        spin()
        w.holding = true
      }
      return request
    }
    w.armed = true
  })
  await a.evaluate(() => window.fixture.switchUser({ targetingKey: 'u10', plan: 'pro' }))
  await a.waitForFunction(() => (window as unknown as { holding?: boolean }).holding === true)
  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(b)
  expect(await banner(b)).toBe('v2')
  await b.waitForTimeout(100) // B's write is queued behind the held database, after A's read of every entry
  answer = 503
  await releaseDatabase(a)
  await a.waitForTimeout(500) // the eviction and the writes land

  await b.reload()
  await settled(b)
  // Before: the default text, ada's entry evicted with the newer values B had saved into it.
  expect(await banner(b)).toBe('v2')
  expect(await cachedUsers(b)).toBe(10)
})

// A page whose stale write was skipped (the entry held newer values another page saved) still kept
// that skipped record in its memory of the user, dated by when it tried to save it: switching away
// and back showed the memory, older values, over the newer entry.
//
//   page A   v1 ── v2, saved
//   page B   v1 ─────────────── stale v1.5: shown, write skipped ── bob ── back to ada: v1.5 (before), v2 (now)
test("a page whose older stale answer was not saved shows the newer saved values when switching back to that user", async () => {
  const now = Date.now()
  answer = { banner: 'v1', fetchedAt: now - 3000, stale: false }
  const a = await openReady()
  const b = await openReady()
  await waitForCachedFlags(a)
  await a.waitForTimeout(300)

  answer = { banner: 'v2', fetchedAt: now - 1000, stale: false }
  await refresh(a)
  await a.waitForTimeout(300) // v2 lands
  answer = { banner: 'v1.5', fetchedAt: now - 2000, stale: true }
  expect((await refresh(b)).state).toBe('stale')
  expect(await banner(b)).toBe('v1.5')
  await b.waitForTimeout(300) // the skipped write

  answer = 503
  await b.evaluate(() => window.fixture.switchUser({ targetingKey: 'bob', plan: 'pro' }))
  await waitForStatus(b, 'error')
  await b.evaluate(() => window.fixture.switchUser({ targetingKey: 'ada', plan: 'pro' }))
  await waitForStatus(b, 'stale')
  await b.waitForTimeout(300) // the cache read lands too
  // Before: 'v1.5', the page's memory of the answer it had not saved.
  expect(await banner(b)).toBe('v2')
})
