// A relay up for months: nothing may be retained per request, per context, per set of credentials,
// per stream or per poll. Each workload runs in a child process with --expose-gc
// (fixtures/leakRelay.ts) against real servers on 127.0.0.1: a warm-up of the same size (JIT, the
// answer cache and the held contexts fill their lowered bounds), then the measured run; the heap's
// growth over it, per iteration, must be near zero. A real leak of 1 KB an iteration fails each
// (HOLDFAST_INJECT_LEAK=1024, see test/support/heapGrowth.ts); the noise measured is under 60 B,
// but for redis-down's (a pair of reconnection attempts an iteration): -111 to 80 B, under the same
// limit of 300 B.
import { describe, expect, test } from 'vitest'
import { growthInChild } from '../support/heapGrowth'
import { startServer } from './helpers'

const fixture = new URL('./fixtures/leakRelay.ts', import.meta.url)

describe('relay memory stays flat under churn', () => {
  test.each([
    ['proxy', 'proxy mode: 5,000 distinct contexts, each with its own forwarded credentials', 5000, 20],
    ['kinds', 'answers 200, 304, 400, 401, 404, 415 and 413 with client-chosen paths, methods, types and keys, 1,000 of each', 7000, 20],
    ['streams', 'event streams opened and dropped mid-stream 2,000 times, notices broadcast', 2000, 20],
    ['url-changing', '--flags-url with a new version at each of 3,000 polls', 3000, 1],
    ['url-failing', '--flags-url answering 503 to 5,000 polls in a row', 5000, 1],
    ['events-sink-503', 'events forwarded to a sink answering 503 throughout: 4,000 batches taken and spooled', 4000, 20],
    ['events-sink-gone', 'events forwarded to a sink that refuses connections throughout: 4,000 batches', 4000, 20],
    ['redis-down', 'Redis down for good: 2,000 pairs of reconnection attempts, each a fresh node-redis client', 2000, 1],
  ])('%s: %s', { timeout: 60_000 }, async (workload, _what, iterations, batch) => {
    const growth = await growthInChild(fixture, [workload, String(iterations)], { BATCH: String(batch) })
    expect(growth.perIteration).toBeLessThan(300)
  })
})

// A label is a time series a Prometheus keeps for good: a value a client chooses (a path, a
// method, a content type, a key) must never become one.
test('client-chosen paths, methods, content types and keys add no metrics series', async () => {
  const server = await startServer({ apiKey: 'right-key' })
  try {
    const series = async () =>
      (await (await fetch(`${server.url}/metrics`)).text())
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.replace(/ [^ ]+$/, ''))
    const hostile = async (i: number) => {
      const sent = [
        fetch(`${server.url}/nope/${i}?q=${i}`),
        fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': `text/x-${i}`, Authorization: 'Bearer right-key' }, body: '{}' }),
        fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer wrong-${i}` }, body: '{"context":{"targetingKey":"u"}}' }),
        fetch(`${server.url}/ofrep/v1/evaluate/flags/flag-${i}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer right-key' }, body: `{"context":{"targetingKey":"u${i}"}}` }),
        fetch(`${server.url}/x${i}`, { method: `M${i}` }).catch(() => undefined),
      ]
      for (const r of await Promise.all(sent)) await r?.arrayBuffer()
    }
    for (let i = 0; i < 5; i++) await hostile(i)
    await series() // the scrape's own route is a series from the first scrape on
    const before = await series()
    for (let i = 5; i < 300; i++) await hostile(i)
    expect(await series()).toEqual(before)
  } finally {
    await server.close()
  }
})
