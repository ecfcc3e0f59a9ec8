// Cold start from the IndexedDB cache in a real browser: headless Chromium (/usr/bin/chromium, or
// HOLDFAST_CHROMIUM as in the e2e suite) with an on-disk profile. A tiny page, bundled with esbuild
// from an entry that imports `@holdfast/core` by package name (so packages/core/dist, as an app
// gets it), is served by a static server on 127.0.0.1; the OFREP flag server is a second origin
// on 127.0.0.1. A first load fetches 1,000 flags and persists them; then, load after load in the
// same browser context, the flag server never answers (the request hangs) and the page times
// `createClient` → `getStatus().source === 'cache'` with performance.now().
// Plain .mjs (no tsx) with its own launch, because test/e2e/support/browser.ts throws when there
// is no browser, where this prints a "skipped" row instead; the path and flags are shared with it
// through test/e2e/support/chromium.json.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bodyOf, flagEntries, median, report } from './common.mjs'

const GROUP = 'cold start (Chromium)'
const METRIC = 'createClient → 1,000 cached flags served (source: cache)'
// The same browser and flags as the end-to-end suite.
const chromiumConfig = JSON.parse(readFileSync(new URL('../test/e2e/support/chromium.json', import.meta.url), 'utf8'))
const CHROMIUM_PATH = process.env.HOLDFAST_CHROMIUM ?? chromiumConfig.path
const ARGS = chromiumConfig.args
const N = 1000
const WARMUP = 3
const LOADS = 15
const HOST = '127.0.0.1'
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

if (!existsSync(CHROMIUM_PATH)) {
  report([{ group: GROUP, metric: METRIC, skipped: `skipped: no Chromium at ${CHROMIUM_PATH}` }])
  process.exit(0)
}

const { chromium } = await import('playwright-core')
const esbuild = await import('esbuild')

// The page: reads the flag server's URL from the query string; `seed` waits for the network.
const ENTRY = `
import { createClient } from '@holdfast/core'
const params = new URLSearchParams(location.search)
const seed = params.has('seed')
const start = performance.now()
const client = createClient({
  url: params.get('flags'),
  context: { targetingKey: 'bench-user' },
  refreshOnFocus: false,
  storageName: 'holdfast-bench',
  logger: { warn() {}, error() {}, debug() {} },
})
const want = seed ? 'network' : 'cache'
const served = new Promise((resolve) => {
  const stop = client.subscribe(() => {
    if (client.getStatus().source === want) {
      stop()
      resolve(performance.now() - start)
    }
  })
})
void client.start()
served.then((ms) => {
  const { source, state } = client.getStatus()
  // The client stays open: its flag request (sent after the cache read) hangs until the next
  // navigation aborts it.
  window.__bench = { ms, value: client.getValue('flag-2', -1), source, state }
})
`
const INDEX = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>holdfast bench</title></head><body><script type="module" src="/main.js"></script></body></html>'

const built = await esbuild.build({
  stdin: { contents: ENTRY, resolveDir: root, sourcefile: 'bench-entry.js', loader: 'js' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  define: { 'process.env.NODE_ENV': '"production"' },
  write: false,
  outfile: 'main.js',
  logLevel: 'silent',
})
const files = new Map([
  ['/', { type: 'text/html; charset=utf-8', body: INDEX }],
  ['/main.js', { type: 'text/javascript; charset=utf-8', body: built.outputFiles[0].contents }],
])

/** Listens on 127.0.0.1 at a port picked now; `close()` also ends hanging requests. */
function listen(handler) {
  const server = createServer(handler)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () =>
      resolve({
        url: `http://${HOST}:${server.address().port}`,
        close: () =>
          new Promise((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      }),
    )
  })
}

const site = await listen((req, res) => {
  const file = files.get(new URL(req.url ?? '/', 'http://x').pathname)
  if (!file) return res.writeHead(404).end('not found')
  res.writeHead(200, { 'Content-Type': file.type, 'Cache-Control': 'no-store' }).end(file.body)
})

// The flag server: CORS for the page's origin (the POST carries JSON, so there is a preflight);
// `answer` sends 1,000 flags, `hang` never answers the POST.
let mode = 'answer'
const counts = { answered: 0, hung: 0 }
const answer = bodyOf(flagEntries(N))
const flags = await listen((req, res) => {
  const cors = { 'Access-Control-Allow-Origin': site.url, 'Access-Control-Expose-Headers': 'ETag, Retry-After' }
  if (req.method === 'OPTIONS') {
    res
      .writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'Content-Type, Accept, If-None-Match', 'Access-Control-Max-Age': '600' })
      .end()
    return
  }
  if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/ofrep/v1/evaluate/flags') return res.writeHead(404, cors).end()
  req.resume()
  req.on('end', () => {
    if (mode === 'hang') {
      counts.hung++
      return // never answered: the next navigation aborts it; flags.close() ends the socket
    }
    counts.answered++
    res.writeHead(200, { ...cors, 'Content-Type': 'application/json' }).end(answer)
  })
})

// An on-disk profile, as a user's browser has (a plain `launch()` context keeps IndexedDB in memory).
const profile = await mkdtemp(join(tmpdir(), 'holdfast-bench-chromium-'))
let context
try {
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, args: ARGS, headless: true })
  const page = context.pages()[0] ?? (await context.newPage())
  const errors = []
  page.on('pageerror', (error) => errors.push(String(error?.stack ?? error)))

  const load = async (query) => {
    await page.goto(`${site.url}/?flags=${encodeURIComponent(flags.url)}${query}`)
    await page.waitForFunction(() => window.__bench !== undefined, null, { timeout: 10_000 }).catch((error) => {
      throw new Error(`${error.message}\npage errors: ${errors.join('\n') || 'none'}`)
    })
    return page.evaluate(() => window.__bench)
  }

  const seeded = await load('&seed')
  if (seeded.source !== 'network' || seeded.value !== 2 || counts.answered !== 1) throw new Error(`seeding failed: ${JSON.stringify({ seeded, counts })}`)
  // The cache write is fire-and-forget (it follows the response that made the source 'network'):
  // wait until the entry is in the database before the next load.
  await page.waitForFunction(
    () =>
      new Promise((resolve) => {
        const open = indexedDB.open('holdfast-bench')
        open.onerror = () => resolve(false)
        open.onsuccess = () => {
          const db = open.result
          if (!db.objectStoreNames.contains('keyval')) return db.close(), resolve(false)
          const keys = db.transaction('keyval').objectStore('keyval').getAllKeys()
          keys.onsuccess = () => (db.close(), resolve(keys.result.some((k) => String(k).startsWith('holdfast:flags:'))))
          keys.onerror = () => (db.close(), resolve(false))
        }
      }),
    null,
    { timeout: 10_000, polling: 20 },
  )

  mode = 'hang'
  const samples = []
  for (let i = 0; i < WARMUP + LOADS; i++) {
    const r = await load('')
    if (r.source !== 'cache' || r.value !== 2) throw new Error(`load ${i}: cached value not served: ${JSON.stringify(r)}`)
    if (i >= WARMUP) samples.push(r.ms)
    // This load's request reached the flag server and hangs there (and nothing was answered).
    for (const deadline = Date.now() + 5000; counts.hung < i + 1; await new Promise((r) => setTimeout(r, 5)))
      if (Date.now() > deadline) throw new Error(`load ${i}: no flag request reached the server: ${JSON.stringify(counts)}`)
  }
  if (counts.answered !== 1) throw new Error(`the flag server answered after seeding: ${JSON.stringify(counts)}`)
  // A persistent context has no Browser object to ask, and the user agent string is reduced to
  // "156.0.0.0": the high-entropy client hints have the full version (127.0.0.1 is a secure context).
  const version = await page.evaluate(async () => (await navigator.userAgentData?.getHighEntropyValues(['uaFullVersion']))?.uaFullVersion ?? 'unknown')
  const env = `Chromium ${version} headless, on-disk profile (cold start: median of ${LOADS} page loads after ${WARMUP})`
  report([{ group: GROUP, metric: METRIC, value: median(samples), unit: 'ms', env }])
} finally {
  await context?.close()
  await Promise.all([site.close(), flags.close()])
  await rm(profile, { recursive: true, force: true })
}
