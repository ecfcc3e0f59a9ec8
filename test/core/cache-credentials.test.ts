// The IndexedDB cache is the origin's: every tab and every later page of it reads it. Two clients
// on one OFREP URL for one user but with different credentials (a staging and a production SDK
// key in the same app, an admin page switching environments, localhost used against both) fetch
// different values. Before, the cache was keyed by URL and targetingKey only: a production page
// started in an outage showed the values staging had cached, as its own last known good, for as
// long as the outage lasted. Static `headers` now name the entry too (hashed, like the rest of the key).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/** Answers `banner` = `<X-API-Key>-value`, or 503 while `up` is false. */
async function perKeyServer() {
  const state = { url: '', up: true }
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (!state.up) return void res.writeHead(503).end()
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ flags: [{ key: 'banner', value: `${String(req.headers['x-api-key'])}-value` }] }))
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanup.push(() => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))))
  return state
}

async function page(url: string, storageName: string, key: string): Promise<FlagClient> {
  const client = createClient({ url, context: { targetingKey: 'user-1' }, headers: { 'X-API-Key': key }, storageName, logger: createTestLogger(), liveUpdates: false, refreshOnFocus: false })
  cleanup.push(() => client.close())
  await client.start()
  return client
}

it("a page on another key, started in an outage, never shows the values this key cached; its own key's are still there", async () => {
  const server = await perKeyServer()
  const storageName = uniqueStorageName('cache-credentials')
  const production = await page(server.url, storageName, 'production')
  expect(production.getValue('banner', 'none')).toBe('production-value')
  await production.close()
  // Then staging, last to write.
  const staging = await page(server.url, storageName, 'staging')
  expect(staging.getValue('banner', 'none')).toBe('staging-value')
  await staging.close()

  server.up = false
  const reloaded = await page(server.url, storageName, 'production')
  // Before: 'staging-value' (staging wrote last), source 'cache'.
  expect(reloaded.getDetails('banner', 'none')).toMatchObject({ value: 'production-value', source: 'cache', stale: true })
  const other = await page(server.url, storageName, 'canary')
  expect(other.getDetails('banner', 'none')).toMatchObject({ value: 'none', source: 'default' })
  expect(other.getStatus().state).toBe('error')
})
