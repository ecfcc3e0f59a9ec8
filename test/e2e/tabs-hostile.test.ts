// Hostile neighbours in real Chromium: another script of the origin (or a tab still running another
// Holdfast version) deleting or upgrading the IndexedDB database the client has open, and messages
// on the channel the tabs share in a shape this version does not expect.
import { randomUUID } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import type { Page } from 'playwright-core'
import { expectAdaValues, holdDatabase, openFixture, readShown, releaseDatabase, waitForCachedFlags, waitForStatus } from './support/fixturePage'
import { waitFor } from './support/servers'
import { useFixtureSuite } from './support/suite'
import { recordConsole } from './support/browser'

const e2e = useFixtureSuite()

/** What another script of the origin sees when it deletes (or opens with `version`) the database: 'success' or 'blocked'. */
function meddle(page: Page, version?: number): Promise<string> {
  return page.evaluate(
    (version) =>
      new Promise<string>((resolve) => {
        const request = version === undefined ? indexedDB.deleteDatabase('holdfast') : indexedDB.open('holdfast', version)
        request.onsuccess = () => {
          if (version !== undefined) (request as IDBOpenDBRequest).result.close()
          resolve('success')
        }
        request.onerror = () => resolve('error')
        // A connection that does not close when asked holds the other script up; `blocked` says so.
        request.onblocked = () => setTimeout(() => resolve('blocked'), 2000)
      }),
    version,
  )
}

/** Keys of the `holdfast` database's `keyval` store, read the way another script would. */
function storedKeys(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    // Never open a database that does not exist: that would create it without the client's store.
    if (!(await indexedDB.databases()).some((db) => db.name === 'holdfast')) return []
    return new Promise<string[]>((resolve) => {
      const open = indexedDB.open('holdfast')
      open.onsuccess = () => {
        const db = open.result
        if (!db.objectStoreNames.contains('keyval')) return db.close(), resolve([])
        const keys = db.transaction('keyval').objectStore('keyval').getAllKeys()
        keys.onsuccess = () => (db.close(), resolve(keys.result.map(String)))
      }
    })
  })
}

describe('another script deletes or upgrades the database the client has open', () => {
  for (const how of ['deleteDatabase', 'open with a higher version'] as const) {
    test(`${how}: the other script is not blocked, and the client goes on persisting in IndexedDB`, async () => {
      const run = randomUUID()
      const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, flushMs: '600000', exposures: '0' })
      const console = recordConsole(page)
      await waitForStatus(page, 'ready', 'network')
      await waitForCachedFlags(page)

      // An app's logout wipe, or its own schema upgrade of a database of the same name.
      expect(await meddle(page, how === 'deleteDatabase' ? undefined : 2)).toBe('success')

      // The client reopens on its next use: an event logged now is persisted, in IndexedDB.
      await page.evaluate((run) => window.holdfast.logEvent('after-wipe', { metadata: { run } }), run)
      await waitFor(async () => ((await storedKeys(page)).some((k) => k.startsWith('holdfast:event:')) ? true : undefined), 'the event in IndexedDB')
      await page.evaluate(() => window.holdfast.refresh())
      await waitForCachedFlags(page)
      const shown = await readShown(page)
      expectAdaValues(shown)
      expect(await page.evaluate(() => window.holdfast.getStatus().storage)).toBe('indexeddb')
      await page.evaluate(() => window.holdfast.flush())
      await waitFor(async () => ((await e2e.flags.readEvents()).some((e) => (e.metadata as { run?: string })?.run === run) ? true : undefined), 'the event sent')
      expect(console.pageErrors).toEqual([])
    })
  }
})

/** Before the page loads: listens on the live-updates channel of its client, keeping the key its `values` messages carry. */
async function listenForValues(): Promise<void> {
  await e2e.context.addInitScript((channel) => {
    const w = window as unknown as { heard?: string }
    new BroadcastChannel(channel).onmessage = (event) => {
      if (event.data?.t === 'values') w.heard = event.data.key
    }
  }, `holdfast-live:2:${e2e.flags.url}/holdfast/v1/stream`)
}

/** The key of the page's client's first `values` message (its first 200, shared with the tabs). */
function valuesKey(page: Page): Promise<string> {
  return waitFor(() => page.evaluate(() => (window as unknown as { heard?: string }).heard), 'a values message from the client')
}

describe('a values message in a shape this version does not expect', () => {
  // A tab still running another Holdfast version (or a stray script) answering for this very user:
  // what it posts is read like a response, so an entry this version cannot read is skipped (a
  // partial answer: the held values stay), never taken as "every other flag is gone".
  const shapes: Record<string, unknown> = {
    'entries under another field name': [{ flagKey: 'checkout-kill-switch', value: false }],
    'entries that are not objects': [null, 7, 'checkout-kill-switch'],
    'a value that is not JSON': [{ key: 'banner-config', value: new Map([['text', 'MAP']]) }],
  }
  for (const [what, entries] of Object.entries(shapes)) {
    test(`${what}: no held value is removed or replaced by junk, nothing throws`, async () => {
      await listenForValues()
      const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off' })
      const console = recordConsole(page)
      expectAdaValues(await waitForStatus(page, 'ready', 'network'))
      const key = await valuesKey(page)
      const before = await readShown(page)
      const banner = () => page.evaluate(() => window.holdfast.getDetails('banner-config', {}).value)
      const bannerBefore = await banner()
      await page.evaluate(
        ({ channel, key, entries }) => {
          const build = new Function(`return ${entries}`) as () => unknown
          new BroadcastChannel(channel).postMessage({ t: 'values', key, result: { kind: 'ok', entries: build(), skipped: 0, etag: { not: 'a string' } } })
        },
        { channel: `holdfast-live:2:${e2e.flags.url}/holdfast/v1/stream`, key, entries: source(entries) },
      )
      await page.waitForTimeout(300)
      const after = await readShown(page)
      expect(after.values).toEqual(before.values)
      expectAdaValues(after)
      expect(await banner()).toEqual(bannerBefore)
      expect(console.pageErrors).toEqual([])
      // The next request goes out with a readable ETag (or none), and is answered.
      await page.evaluate(() => window.holdfast.refresh())
      expectAdaValues(await waitForStatus(page, 'ready', 'network'))
    })
  }
})

/** The entries as JavaScript source, so a Map survives the trip into the page. */
function source(entries: unknown): string {
  return JSON.stringify(entries, (_k, v: unknown) => (v instanceof Map ? { __map: [...v] } : v)).replace(/\{"__map":(\[.*?\]\])\}/g, 'new Map($1)')
}

describe('without Web Locks: a stream lease in localStorage this version would never write', () => {
  // A lease "held" for an hour: written by a tab whose clock ran ahead, by another version that
  // counts in other units, or by a stray script. No honest lease ends more than one lease period
  // (1 s) from now, so one that claims to must not keep every tab of the origin off the stream.
  test('a lease claiming an hour ahead: a tab still takes the stream within a few seconds', async () => {
    const streamUrl = `${e2e.flags.url}/holdfast/v1/stream`
    await e2e.context.addInitScript((streamUrl) => {
      Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true })
      // The lease's key: the stream's name hashed (32-bit FNV-1a, as packages/core/src/live/tabs.ts does).
      const name = `holdfast-live:2:${streamUrl}`
      let h = 2166136261
      for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619)
      localStorage.setItem(`holdfast-live:${(h >>> 0).toString(36)}:leader`, JSON.stringify({ id: 'a-tab-long-gone', until: Date.now() + 3_600_000 }))
    }, streamUrl)
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off' })
    expectAdaValues(await waitForStatus(page, 'ready', 'network'))
    expect(await page.evaluate(() => navigator.locks)).toBeUndefined()
    await waitFor(() => e2e.flags.server.handler.stream!.connections() === 1 || undefined, 'a tab to take the stream', 5000)
    // The tab took over that very lease (one key, now its own), not a lease under another key.
    const leases = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith(':leader')).map((k) => [k, JSON.parse(localStorage.getItem(k)!).id]))
    expect(leases).toHaveLength(1)
    expect(leases[0][1]).not.toBe('a-tab-long-gone')
  })
})

describe('the remembered stream advertisement in localStorage, in a shape this version does not expect', () => {
  // A 304 carries no body, so a tab confirmed by one finds the stream in what the last 200
  // advertised, remembered in localStorage. Another version may have written that record in
  // another shape: that must not leave a tab whose cache is current without live updates.
  test('a reload answered 304 still opens the stream', async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off' })
    expectAdaValues(await waitForStatus(page, 'ready', 'network'))
    await waitForCachedFlags(page)
    await waitFor(() => e2e.flags.server.handler.stream!.connections() === 1 || undefined, 'the first page to take the stream')
    await page.evaluate((flagsUrl) => {
      const key = `holdfast-live:${flagsUrl}`
      localStorage.setItem(key, JSON.stringify({ v: 2, eventStreams: JSON.parse(localStorage.getItem(key) ?? '[]') }))
    }, e2e.flags.url)
    await page.reload()
    expectAdaValues(await waitForStatus(page, 'ready', 'network'))
    await waitFor(() => e2e.flags.server.handler.stream!.connections() === 1 || undefined, 'the reloaded page to take the stream', 5000)
  })
})

describe('IndexedDB failing mid-session', () => {
  test('clearCache() on logout still removes the values persisted before the client went to memory', async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off' })
    await waitForStatus(page, 'ready', 'network')
    await waitForCachedFlags(page)
    // A full quota: writes refused, reads and deletions still allowed. The next write (bob's
    // values) fails and the client goes on in memory. The quota stays full to the end: a client on
    // memory tries IndexedDB again (one write), and would go back to it once writes pass.
    await page.evaluate(async () => {
      const w = window as unknown as { restorePut: () => void }
      const put = IDBObjectStore.prototype.put
      w.restorePut = () => void (IDBObjectStore.prototype.put = put)
      IDBObjectStore.prototype.put = () => {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      }
      await window.holdfast.setContext({ targetingKey: 'bob', plan: 'free' })
      for (let i = 0; i < 100 && window.holdfast.getStatus().storage !== 'memory'; i++) await new Promise((r) => setTimeout(r, 20))
    })
    expect(await page.evaluate(() => window.holdfast.getStatus().storage)).toBe('memory')
    expect((await storedKeys(page)).filter((k) => k.startsWith('holdfast:flags:'))).toHaveLength(1)
    await page.evaluate(() => window.holdfast.clearCache())
    expect((await storedKeys(page)).filter((k) => k.startsWith('holdfast:flags:'))).toEqual([])
    await page.evaluate(() => (window as unknown as { restorePut: () => void }).restorePut())
  })

  // Before: clearCache() resolved after the 3 s bound as if done, getStatus() said nothing, and the
  // client went on writing to IndexedDB, where the user who left still had their values.
  test("a logout's clearCache() that IndexedDB stalls past 3 s: STORAGE on memory, and the clear done before the page goes back", async () => {
    const page = await openFixture(e2e.context, e2e.fixture.url, { flags: e2e.flags.url, events: 'off' })
    await waitForStatus(page, 'ready', 'network')
    await waitForCachedFlags(page)
    await page.evaluate(() => new Promise((r) => setTimeout(r, 300))) // the client's writes land
    const ada = (await storedKeys(page)).filter((k) => k.startsWith('holdfast:flags:'))
    expect(ada).toHaveLength(1)
    // Another connection holds a readwrite transaction on the store (a wedged script, a slow disk)
    // until released: the clear's read of the keys queues behind it past the bound.
    await holdDatabase(page)
    const after = await page.evaluate(async () => {
      await window.holdfast.clearCache()
      return window.holdfast.getStatus()
    })
    expect(after).toMatchObject({ storage: 'memory', error: { code: 'STORAGE', message: expect.stringContaining('clearing the cache failed') } })
    await releaseDatabase(page)
    // The next storage operation (bob's cache read) tries IndexedDB again: the clear first, then back.
    await page.evaluate(() => window.holdfast.setContext({ targetingKey: 'bob', plan: 'free' }))
    await page.waitForFunction(() => window.holdfast.getStatus().storage === 'indexeddb', undefined, { timeout: 10_000 })
    expect(await storedKeys(page)).not.toContain(ada[0])
    expect(await page.evaluate(() => window.holdfast.getStatus().state)).toBe('ready')
  })
})
