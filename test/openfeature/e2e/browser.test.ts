// HoldfastWebProvider in headless Chromium with real IndexedDB: values through the official
// OpenFeature web SDK, a reload while the flag server hangs (READY from the cache, reason CACHED),
// the outage turning into PROVIDER_STALE with the values kept, and a tracked event reaching the
// events file exactly once.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_FLAGS } from '../../server/helpers'
import { launchChromium } from '../../e2e/support/browser'
import { serveStatic, startFlagServer, waitFor, type Closable, type TestFlagServer } from '../../e2e/support/servers'

let browser: Browser
let site: Closable
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'holdfast-of-e2e-'))
  // From packages/*/dist through their `exports` maps: what an installed copy gives a bundler.
  await build({
    entryPoints: [join(process.cwd(), 'test/openfeature/e2e/page/main.js')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['browser', 'import'],
    outfile: join(dir, 'main.js'),
    logLevel: 'warning',
  })
  await writeFile(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>openfeature</title><script type="module" src="/main.js"></script>')
  site = await serveStatic(dir)
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await site?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

type App = { app: any }
const ready = (page: Page) => page.evaluate(() => (window as unknown as App).app.ready)
const evaluateFlags = (page: Page) => page.evaluate(() => (window as unknown as App).app.evaluate())
const events = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as App).app.events())

describe('HoldfastWebProvider in Chromium', () => {
  it('values, a reload during an outage served from IndexedDB (CACHED → STALE), and track() once', async () => {
    const flags: TestFlagServer = await startFlagServer(DEMO_FLAGS)
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      const url = `${site.url}/?flags=${encodeURIComponent(flags.url)}`
      await page.goto(url)
      expect(await ready(page)).toBe('ok')
      expect(await evaluateFlags(page)).toMatchObject({
        beta: { value: true, variant: 'on', reason: 'TARGETING_MATCH', source: 'network', stale: false },
        banner: { value: { text: 'Hello', color: 'blue' }, reason: 'STATIC' },
      })
      await waitFor(() => page.evaluate(() => (window as unknown as App).app.cached()), 'the cache entry in IndexedDB')
      await page.waitForTimeout(300) // the exposures just logged are in IndexedDB within 100 ms; the reload comes after

      // The reload meets a server that does not answer: READY from the cache, at once.
      await flags.setOutage('hang')
      await page.reload()
      expect(await ready(page)).toBe('ok')
      expect(await events(page)).toEqual(['PROVIDER_READY'])
      expect(await evaluateFlags(page)).toMatchObject({
        beta: { value: true, variant: 'on', reason: 'CACHED', source: 'cache', stale: false },
        banner: { value: { text: 'Hello', color: 'blue' }, reason: 'CACHED' },
      })

      // The held request now gets a 503: STALE, values kept.
      await flags.setOutage('503')
      await waitFor(async () => (await events(page)).includes('PROVIDER_STALE'), 'PROVIDER_STALE', 20_000)
      expect(await page.evaluate(() => (window as unknown as App).app.status())).toBe('STALE')
      expect(await evaluateFlags(page)).toMatchObject({
        beta: { value: true, reason: 'STALE', source: 'cache', stale: true },
        banner: { value: { text: 'Hello', color: 'blue' }, reason: 'STALE' },
      })

      // The events endpoint is up: a tracked event arrives once, beside the exposures.
      await page.evaluate(() => (window as unknown as App).app.track('checkout', { value: 3, plan: 'pro' }))
      await page.evaluate(() => (window as unknown as App).app.close())
      const received = await flags.readEvents()
      const tracked = received.filter((e) => e.name === 'checkout')
      expect(tracked).toHaveLength(1)
      expect(tracked[0]).toMatchObject({ type: 'custom', value: 3, targetingKey: 'browser-user', metadata: { plan: 'pro' } })
      // Two page sessions, each evaluating beta and banner several times: one exposure per flag
      // per session, and the first page's (logged before the reload, never closed) were not lost.
      const exposures = received.filter((e) => e.type === 'exposure').map((e) => `${e.flagKey}:${JSON.stringify(e.value)}`)
      expect(exposures.sort()).toEqual(['banner:{"text":"Hello","color":"blue"}', 'banner:{"text":"Hello","color":"blue"}', 'beta:true', 'beta:true'])
    } finally {
      await context.close()
      await flags.close()
    }
  })
})
