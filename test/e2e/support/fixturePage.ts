// Reading the fixture page the way a user looks at it: the values and sources it shows.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'

export const FLAG_KEYS = ['checkout-kill-switch', 'banner-config', 'new-checkout', 'beta-dashboard'] as const

/**
 * The demo flags with the kill switch ON: a failure that wiped the values (an outage answering
 * `{}` read as "no flags") would show it off, which is exactly what must never happen.
 */
export function fixtureFlags(): Record<string, unknown> {
  const flags = JSON.parse(readFileSync(fileURLToPath(new URL('../../../examples/flags.json', import.meta.url)), 'utf8'))
  flags.flags['checkout-kill-switch'].defaultVariant = 'on'
  return flags
}

/** Opens the fixture in `context` with the given query parameters. */
export async function openFixture(context: BrowserContext, fixtureUrl: string, params: Record<string, string>): Promise<Page> {
  const page = await context.newPage()
  await page.goto(fixtureUrl + '/?' + new URLSearchParams(params).toString())
  return page
}

export interface Shown {
  values: Record<string, string>
  sources: Record<string, string>
  stale: Record<string, boolean>
  state: string
  statusSource: string
  error: string
  http: string
}

/** Everything the page currently shows. */
export async function readShown(page: Page): Promise<Shown> {
  return page.evaluate((keys) => {
    const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() ?? '(missing)'
    const each = <T,>(f: (key: string) => T) => Object.fromEntries(keys.map((k) => [k, f(k)]))
    return {
      values: each((k) => text(`flag-${k}-value`)),
      sources: each((k) => text(`flag-${k}-source`)),
      stale: each((k) => text(`flag-${k}-stale`) === 'stale'),
      state: text('status-state'),
      statusSource: text('status-source'),
      error: text('status-error'),
      http: text('status-http'),
    }
  }, [...FLAG_KEYS])
}

/** Waits until the page shows `state` (and, when given, that status source), then returns what it shows. */
export async function waitForStatus(page: Page, state: string, source?: string, timeout = 15_000): Promise<Shown> {
  await page.waitForFunction(
    ([state, source]) =>
      document.querySelector('[data-testid="status-state"]')?.textContent === state &&
      (source === undefined || document.querySelector('[data-testid="status-source"]')?.textContent === source),
    [state, source] as const,
    { timeout },
  )
  return readShown(page)
}

/** The values a pro user ("ada") gets from `fixtureFlags()`: none of them a default. */
export const ADA_VALUES = {
  'checkout-kill-switch': 'true',
  'banner-config': 'Welcome to the Holdfast demo shop',
  'beta-dashboard': 'true',
} as const

/** Asserts the values ada sees (new-checkout is a 50/50 rollout: only asserted unchanged elsewhere). */
export function expectAdaValues(shown: Shown): void {
  for (const [key, value] of Object.entries(ADA_VALUES)) expect(shown.values[key], key).toBe(value)
}

/** Resolves once this origin's IndexedDB holds a cached flag entry, i.e. a reload can use it. */
export async function waitForCachedFlags(page: Page): Promise<void> {
  // The cache is written after the response is applied, asynchronously; a reload before the write
  // lands would (correctly) find nothing. Database "holdfast", store "keyval" (idb-keyval).
  await page.waitForFunction(
    async () => {
      // Never open a database that does not exist yet: that would create it without idb-keyval's
      // object store, and the client would then find its storage broken.
      if (!(await indexedDB.databases()).some((db) => db.name === 'holdfast')) return false
      return new Promise<boolean>((resolve) => {
        const open = indexedDB.open('holdfast')
        open.onerror = () => resolve(false)
        open.onsuccess = () => {
          const db = open.result
          if (!db.objectStoreNames.contains('keyval')) {
            db.close()
            resolve(false)
            return
          }
          const keys = db.transaction('keyval').objectStore('keyval').getAllKeys()
          keys.onsuccess = () => {
            db.close()
            resolve(keys.result.some((k) => String(k).startsWith('holdfast:flags:')))
          }
          keys.onerror = () => resolve(false)
        }
      })
    },
    undefined,
    { timeout: 10_000 },
  )
}

// Holds the origin's flag database busy (a readwrite transaction kept alive), as a slow disk or
// another script does, until `release`: what the pages ask of it meanwhile queues, in order.
export const releaseDatabase = (page: Page) => page.evaluate(() => void ((window as unknown as { release?: boolean }).release = true))
export const holdDatabase = (page: Page) =>
  page.evaluate(
    () =>
      new Promise<void>((held) => {
        const open = indexedDB.open('holdfast')
        open.onsuccess = () => {
          const db = open.result
          const store = db.transaction('keyval', 'readwrite').objectStore('keyval')
          const w = window as unknown as { release?: boolean }
          const spin = () => (w.release ? db.close() : void (store.get('holdfast:busy').onsuccess = spin))
          spin()
          held()
        }
      }),
  )
