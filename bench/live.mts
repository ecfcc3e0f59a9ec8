// Live updates, measured end to end in Chromium (issue 16). Prints:
//   1. time from a flags-file edit to an open tab showing it (median and p95 over 20 changes),
//      polling off: file watch + notice + refetch + render;
//   2. stream connections and bulk requests per change with 1 and with 5 tabs (counted at the server);
//   3. the bytes live updates add to the first load and on demand (the `npm run size` rows).
// Uses the built packages: `npm run bench:live` builds first. Usage: tsx bench/live.mts [--changes 20]
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createFlagServer, type Middleware } from '@holdfast/server'
import { launchChromium } from '../test/e2e/support/browser'
import { startFixture } from '../test/e2e/support/fixture'
import { fixtureFlags, openFixture } from '../test/e2e/support/fixturePage'

const { values } = parseArgs({ options: { changes: { type: 'string', default: '20' } } })
const CHANGES = Number(values.changes)
const KEY = 'checkout-kill-switch'

const dir = await mkdtemp(join(tmpdir(), 'holdfast-bench-live-'))
const file = join(dir, 'flags.json')
await writeFile(file, JSON.stringify(fixtureFlags(), null, 2))
const counts: Record<string, number> = {}
const count: Middleware = (_req, _res, route, next) => {
  counts[route.name] = (counts[route.name] ?? 0) + 1
  return next()
}
const server = await createFlagServer({ flags: file, port: 0, logger: { info() {}, warn() {}, error() {} }, middleware: [count] })
const browser = await launchChromium()
const fixture = await startFixture()

let current = true
async function flip(): Promise<string> {
  current = !current
  const flags = JSON.parse(await readFile(file, 'utf8'))
  flags.flags[KEY].defaultVariant = current ? 'on' : 'off'
  await writeFile(file, JSON.stringify(flags, null, 2))
  return String(current)
}
const waitShown = (page: import('playwright-core').Page, value: string) =>
  page.waitForFunction(([key, value]) => document.querySelector(`[data-testid="flag-${key}-value"]`)?.textContent === value, [KEY, value] as const, { timeout: 15_000, polling: 'raf' })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]

async function tabs(n: number) {
  const context = await browser.newContext()
  const pages = []
  for (let i = 0; i < n; i++) {
    const page = await openFixture(context, fixture.url, { flags: server.url, events: 'off' })
    await waitShown(page, String(current))
    pages.push(page)
    if (i === 0) while (server.handler.stream!.connections() < 1) await sleep(20)
  }
  await sleep(1000)
  return { context, pages }
}

try {
  // 1. Latency, one tab.
  const one = await tabs(1)
  const times: number[] = []
  for (let i = 0; i < CHANGES; i++) {
    const started = performance.now()
    await waitShown(one.pages[0], await flip())
    times.push(performance.now() - started)
    await sleep(300) // the file watcher's debounce must not merge two edits
  }
  times.sort((a, b) => a - b)
  console.log(`Flag change → shown in an open tab (polling off), ${CHANGES} changes: median ${quantile(times, 0.5).toFixed(0)} ms, p95 ${quantile(times, 0.95).toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms`)

  // 2. Connections and requests per change, 1 and 5 tabs.
  const rows: string[] = []
  let takeover = NaN
  for (const [n, open] of [[1, one] as const, [5, undefined] as const]) {
    const session = open ?? (await tabs(n))
    const changes = 5
    const before = { bulk: counts['ofrep.bulk'] ?? 0, stream: counts.stream ?? 0 }
    for (let i = 0; i < changes; i++) {
      const value = await flip()
      await Promise.all(session.pages.map((p) => waitShown(p, value)))
      await sleep(700)
    }
    const bulk = ((counts['ofrep.bulk'] ?? 0) - before.bulk) / changes
    const opened = (counts.stream ?? 0) - before.stream
    rows.push(`| ${n} | ${server.handler.stream!.connections()} | ${bulk.toFixed(2)} | ${opened} |`)
    if (n > 1) {
      // The leader is the first tab opened: close it and time the stream's move to another tab.
      const streams = counts.stream ?? 0
      await session.pages[0].close()
      const closed = performance.now()
      while ((counts.stream ?? 0) === streams) await sleep(5)
      takeover = performance.now() - closed
    }
    await session.context.close()
    await sleep(500)
  }
  console.log('\n| tabs | stream connections open | bulk requests per change | streams opened during the changes |')
  console.log('| ---: | ---: | ---: | ---: |')
  for (const row of rows) console.log(row)
  console.log(`\nLeader tab closed → another tab's stream open: ${takeover.toFixed(0)} ms`)
} finally {
  await browser.close()
  await fixture.close()
  await server.close()
  await rm(dir, { recursive: true, force: true })
}

// 3. Bytes: the size script's rows (first load with live updates in the client; the chunk on demand).
const size = spawnSync(process.execPath, ['scripts/size.mjs'], { encoding: 'utf8' })
console.log('\nBytes (npm run size):')
for (const line of size.stdout.split('\n')) if (/^\| \(b\)|live-updates chunk/.test(line)) console.log(line)
