// Proxy mode's byte bound (`maxContextBytes`, 64 MiB by default) is a bound on the heap: what is
// held is parsed objects (a Map of flag objects per context, the request kept to ask again), which
// cost three to nine times their JSON text. Measured against the heap itself, with a real fake
// upstream on 127.0.0.1 and the relay's own upstream source.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { createUpstreamSource } from '@holdfast/server'
import { recordingLogger } from './helpers'
import { startUpstream } from './relay-fakes'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

// The HTTP client frees each response through a FinalizationRegistry, a task after the
// collection that found it: give those a moment, or a few MB of garbage count as held.
async function heapUsed(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  gc()
  return process.memoryUsage().heapUsed
}

describe('proxy mode: maxContextBytes', () => {
  it('bounds the heap the held answers take, not their JSON text', async () => {
    // Twenty boolean flags a user: about 500 bytes of JSON, about 4 KB in the heap.
    const upstream = await startUpstream({ ofrep: () => ({ flags: Array.from({ length: 20 }, (_, j) => ({ key: `f${j}`, value: j % 2 === 0 })) }) })
    const bound = 16 * 1024 * 1024
    const options = { url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' as const }, timeoutMs: 5000, maxContexts: 1_000_000, log: recordingLogger() }
    const ask = async (source: ReturnType<typeof createUpstreamSource>, users: number) => {
      for (let i = 0; i < users; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => source.evaluate!({ context: { targetingKey: `user-${i + j}` }, headers: {} })))
        // The fake upstream's own record of what it was asked is this test's memory, not the relay's.
        upstream.requests.length = 0
      }
    }
    // What the first requests of a process set up once (the HTTP client, compiled schemas) is not held answers.
    const warmUp = createUpstreamSource({ ...options, maxContextBytes: bound })
    await warmUp.open()
    await ask(warmUp, 500)
    await warmUp.close()
    const before = await heapUsed()
    const source = createUpstreamSource({ ...options, maxContextBytes: bound })
    await source.open()
    try {
      const users = 6000
      await ask(source, users)
      const held = (await heapUsed()) - before
      const contexts = source.relayStatus().contexts!
      // Before: all 6,000 held (3 MB of JSON counted), about 24 MB of heap against a 16 MiB bound.
      expect(contexts).toBeLessThan(users)
      expect(held).toBeLessThan(bound * 1.15)
      // And the bound is used, not far undercounted the other way either.
      expect(held).toBeGreaterThan(bound * 0.6)
    } finally {
      await source.close()
    }
  }, 60_000)
})
