// Hostile neighbours in real Chromium: another script of the origin (or a tab still running another
// Holdfast version) deleting or upgrading the IndexedDB database the client has open, and messages
// on the channel the tabs share in a shape this version does not expect.
import { randomUUID } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import type { Page } from 'playwright-core'
import { expectAdaValues, openFixture, readShown, waitForCachedFlags, waitForStatus } from './support/fixturePage'
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
