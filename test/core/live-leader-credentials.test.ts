// @vitest-environment jsdom
// The tabs of an origin share one stream: the leading tab opens it with its own headers. A flag
// vendor that scopes its stream to the SDK key (as it scopes its answers) sends a stream a notice
// only for that key's environment. Before, a production tab opened beside a staging tab that led
// followed the staging stream: a change in production never reached it (its values stayed old
// until a focus or a reload), though it never missed one with a stream of its own. Now tabs with
// other static headers lead apart, each set its own stream; tabs with the same ones still share.
//
// Also: a 304 has no body to say where the stream is, so the stream a 200 advertised is remembered
// in localStorage for the next page. That record is now per static headers too: a stream path
// another key was given is never opened with this key.
//
// Leadership here is the localStorage lease (jsdom has no Web Locks); timers are real (the first
// stream of a page opens a second after the first answer).
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { createClient, type ClientOptions, type FlagClient } from '@holdfast/core'
import { createTestLogger, uniqueStorageName } from '../support/clock'
import { pollUntil } from '../support/streamingOfrep'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
  localStorage.clear()
})

/** Answers `banner` = `<key>-v<version of that key>`; its stream tells a key's streams only of that key's changes. */
async function perKeyServer(streamPath: (key: string) => string = () => '/stream') {
  const versions: Record<string, number> = {}
  const streams: Array<{ key: string; res: ServerResponse; path: string; at: number }> = []
  /** The key of each bulk request, in arrival order. */
  const asked: string[] = []
  const server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Allow-Headers', '*')
    if (req.method === 'OPTIONS') return void res.writeHead(204).end()
    const key = String(req.headers['x-api-key'])
    if (req.url?.startsWith('/stream')) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' }).write('retry: 100\n\n')
      streams.push({ key, res, path: req.url, at: asked.length })
      return
    }
    req.resume()
    req.on('end', () => {
      // Counted as its answer is decided: a change made after `caughtUp` is not in the catch-up's answer.
      asked.push(key)
      const version = (versions[key] ??= 1)
      const etag = `"${key}-v${version}"`
      if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { ETag: etag }).end()
      res.writeHead(200, { 'Content-Type': 'application/json', ETag: etag }).end(
        JSON.stringify({
          flags: [{ key: 'banner', value: `${key}-v${version}`, reason: 'STATIC' }],
          eventStreams: [{ type: 'sse', endpoint: { requestUri: streamPath(key) } }],
        }),
      )
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  cleanup.push(
    () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  )
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    streams,
    /** How many bulk requests came. */
    requests: () => asked.length,
    /**
     * Whether the newest stream opened with `key` has had its catch-up: a request with that key came
     * after it (a page's first stream opens a second late, then refetches once). Counting requests
     * before that one has come counts it in the next window on a loaded machine.
     */
    caughtUp(key: string) {
      const last = streams.filter((s) => s.key === key).at(-1)
      return !!last && asked.slice(last.at).includes(key)
    },
    /** A change in `key`'s environment, told to the streams opened with that key. */
    change(key: string) {
      versions[key] = (versions[key] ?? 1) + 1
      for (const s of streams) if (s.key === key && !s.res.closed) s.res.write('data: {"type":"refetchEvaluation"}\n\n')
    },
  }
}

function tab(url: string, key: string, extra: Partial<ClientOptions> = {}): FlagClient {
  const client = createClient({
    url,
    context: { targetingKey: 'user-1' },
    headers: { 'X-API-Key': key },
    storage: 'memory',
    storageName: uniqueStorageName('leader-credentials'),
    logger: createTestLogger(),
    refreshIntervalMs: 0,
    refreshOnFocus: false,
    liveUpdates: { shareTabs: true },
    ...extra,
  })
  cleanup.push(() => client.close())
  return client
}

const banner = (client: FlagClient) => client.getValue<string>('banner', 'none')
const open = (server: { streams: Array<{ key: string; res: ServerResponse }> }, key: string) =>
  server.streams.filter((s) => s.key === key && !s.res.closed).length

it('a tab on another SDK key does not follow the stream of a tab on a staging key: a production change reaches it', async () => {
  const server = await perKeyServer()
  const staging = tab(server.url, 'staging')
  await staging.start()
  await pollUntil(() => open(server, 'staging') === 1, 5000, 'the staging tab to lead')
  const production = tab(server.url, 'production')
  const production2 = tab(server.url, 'production')
  await Promise.all([production.start(), production2.start()])
  // Their live chunk loads after their first answer, and a stream opens a second after that.
  await pollUntil(() => open(server, 'production') === 1, 3000, 'a stream opened with the production key').catch(() => {})

  server.change('production')
  // Before: the production tabs followed the staging leader, whose stream carries staging's key
  // only; they kept production-v1.
  await pollUntil(() => banner(production) === 'production-v2' && banner(production2) === 'production-v2', 5000, 'the production change to show')
  // Tabs of one key still share one stream.
  expect([open(server, 'staging'), open(server, 'production')]).toEqual([1, 1])
  expect(banner(staging)).toBe('staging-v1')
}, 20_000)

it('a page whose first answer is a 304 opens the stream its own key was given, not the one remembered from another key', async () => {
  const server = await perKeyServer((key) => `/stream/${key}`)
  const staging = tab(server.url, 'staging')
  await staging.start()
  await pollUntil(() => open(server, 'staging') === 1, 5000, 'the staging stream')
  await staging.close()
  // A production page rendered on the server with production's snapshot: its ETag is current, a 304.
  const production = tab(server.url, 'production', {
    bootstrap: { context: { targetingKey: 'user-1' }, flags: [{ key: 'banner', value: 'production-v1' }], etag: '"production-v1"', fetchedAt: Date.now() },
  })
  await production.start()
  await pollUntil(() => open(server, 'production') === 1, 5000, 'a stream opened with the production key')
  // Before: the staging key's stream (remembered by URL alone), opened with the production key.
  expect(server.streams.filter((s) => s.key === 'production').map((s) => s.path)).toEqual(['/stream/production'])
}, 20_000)

// The static headers object's values change under a running client (`<FlagProvider headers>` refills
// the object it gave core: an app that switches environment, or a new SDK key after a rotation).
// Before, the stream (and the tabs' channel and leader slot) stayed those of the key in use when live
// updates started: the stream kept the OLD key, the new key's changes were never announced (only a
// poll or a focus would show them), and the old key's notices each cost a needless refetch.
for (const shareTabs of [false, true]) {
  it(`${shareTabs ? 'with tabs sharing' : 'one page alone'}: a key changed in the headers object reopens the stream with the new key; its changes show, the old key's cost no request`, async () => {
    const server = await perKeyServer()
    const headers = { 'X-API-Key': 'staging' }
    const page = tab(server.url, 'staging', { headers, liveUpdates: { shareTabs } })
    await page.start()
    await pollUntil(() => open(server, 'staging') === 1, 5000, 'the staging stream')

    headers['X-API-Key'] = 'production'
    // A refresh joins a request already out: the catch-up refetch of the stream's opening, sent with the old key.
    await page.refresh()
    if (banner(page) !== 'production-v1') await page.refresh()
    expect(banner(page)).toBe('production-v1')
    // Before: the staging stream stayed open, and no stream was opened with the production key.
    await pollUntil(() => open(server, 'production') === 1 && open(server, 'staging') === 0, 5000, 'the stream to reopen with the production key')
    // Its catch-up answered before the change: one coming after it (late on a loaded machine) brought
    // production-v2 itself, and the change's notice, held back the 500 ms gap, then refetched in the
    // window below.
    await pollUntil(() => server.caughtUp('production'), 10_000, "the production stream's catch-up")

    server.change('production')
    await pollUntil(() => banner(page) === 'production-v2', 5000, 'the production change to show')
    const before = server.requests()
    server.change('staging')
    await new Promise((r) => setTimeout(r, 700))
    // Before: each staging notice, heard on the old stream, made a refetch.
    expect(server.requests()).toBe(before)
  }, 20_000)
}

it('a tab whose key changes to the key of another tab leaves the old stream and shares the other tab\'s: one stream per key', async () => {
  const server = await perKeyServer()
  const headers = { 'X-API-Key': 'staging' }
  const switched = tab(server.url, 'staging', { headers })
  await switched.start()
  await pollUntil(() => open(server, 'staging') === 1, 5000, 'the staging stream')
  const production = tab(server.url, 'production')
  await production.start()
  await pollUntil(() => open(server, 'production') === 1, 5000, 'the production stream')

  headers['X-API-Key'] = 'production'
  await switched.refresh()
  // Before: the switched tab went on leading the staging channel, with the staging stream open.
  await pollUntil(() => open(server, 'staging') === 0, 5000, 'the staging stream to close')
  await new Promise((r) => setTimeout(r, 1500))
  expect(open(server, 'production')).toBe(1)
  server.change('production')
  await pollUntil(() => banner(switched) === 'production-v2' && banner(production) === 'production-v2', 5000, 'the production change to show in both tabs')
}, 20_000)

// A 304 has no body to say where the stream is: the stream a 200 advertised is remembered per static
// headers for the next page. Before, a key changed under a running page was remembered only at the
// chunk's next start (the next page): that page, answered 304 on the new key, found no record and
// asked again in full, one request more than needed.
it('a page that changed its key remembers the stream for the new key at once: the next page on that key, answered 304, makes no full refetch to find it', async () => {
  const server = await perKeyServer()
  const headers = { 'X-API-Key': 'staging' }
  const page = tab(server.url, 'staging', { headers, liveUpdates: { shareTabs: false } })
  await page.start()
  await pollUntil(() => open(server, 'staging') === 1, 5000, 'the staging stream')
  headers['X-API-Key'] = 'production'
  await page.refresh()
  if (banner(page) !== 'production-v1') await page.refresh()
  await pollUntil(() => open(server, 'production') === 1, 5000, 'the stream to reopen with the production key')
  // Its catch-up in, and its stream gone at the server too, so nothing of this page (a late
  // catch-up) is counted below.
  await pollUntil(() => server.caughtUp('production'), 10_000, "the first page's catch-up")
  await page.close()
  await pollUntil(() => open(server, 'production') === 0, 10_000, 'the first page\'s stream to close')

  // The next page on the production key, rendered with production's snapshot: its ETag is current.
  const before = server.requests()
  const next = tab(server.url, 'production', {
    liveUpdates: { shareTabs: false },
    bootstrap: { context: { targetingKey: 'user-1' }, flags: [{ key: 'banner', value: 'production-v1' }], etag: '"production-v1"', fetchedAt: Date.now() },
  })
  await next.start()
  await pollUntil(() => open(server, 'production') === 1, 5000, 'the next page\'s stream')
  await pollUntil(() => server.caughtUp('production'), 10_000, "the next page's catch-up")
  // The 304, and the catch-up of the page's first stream (it opens a second late). Before: 3, a
  // full refetch after the 304 to learn where the stream is.
  expect(server.requests() - before).toBe(2)
  expect(banner(next)).toBe('production-v1')
}, 20_000)

// The tabs' channel is named by the stream's URL (tabs on other streams never share), and it is
// not renamed when the server moves the stream: the tabs that shared one go on sharing it. Pinned
// (not a defect): a follower still hears the leader's notices after the move, and a tab opened
// after it, on the new URL's channel, leads its own stream; no tab misses the change, and each
// channel costs one request per change (no flood).
it('after the server moves its stream, a follower still hears the leader; a tab opened later leads its own; all show the change', async () => {
  let moved = false
  const server = await perKeyServer(() => (moved ? '/stream?v=2' : '/stream'))
  const leader = tab(server.url, 'production')
  await leader.start()
  await pollUntil(() => open(server, 'production') === 1, 5000, 'the leader\'s stream')
  const follower = tab(server.url, 'production')
  await follower.start()
  // A change whose answer (a 200) names the new URL: the leader moves its stream there.
  moved = true
  server.change('production')
  await pollUntil(() => banner(leader) === 'production-v2' && banner(follower) === 'production-v2', 5000, 'the first change')
  await pollUntil(() => server.streams.some((s) => s.path === '/stream?v=2' && !s.res.closed), 5000, 'the leader to move')
  const later = tab(server.url, 'production')
  await later.start()
  await pollUntil(() => open(server, 'production') === 2, 5000, 'the later tab\'s own stream')
  // Its stream's catch-up counted before, not in the window below (it comes late on a loaded machine).
  await pollUntil(() => server.caughtUp('production'), 10_000, "the later tab's catch-up")
  // Both on the new URL, one per channel.
  expect(server.streams.filter((s) => !s.res.closed).map((s) => s.path)).toEqual(['/stream?v=2', '/stream?v=2'])
  const before = server.requests()
  server.change('production')
  await pollUntil(() => [leader, follower, later].every((t) => banner(t) === 'production-v3'), 5000, 'the change in every tab')
  await new Promise((r) => setTimeout(r, 500))
  // One per stream (the follower took the leader's answer).
  expect(server.requests() - before).toBe(2)
}, 20_000)
