// `fetch` of createFlagServer (RelayOptions.fetch) is the host's: a proxy agent's, an mTLS one, an
// instrumentation wrapper. The relay bounds each request by upstreamTimeoutMs with an abort signal,
// which only a fetch that honours the signal obeys: a wrapper that drops `init.signal` (or answers a
// body that ignores it) never settled. The request hung for ever: the status never named an error,
// the flags-url poll never came again, and close() never finished.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createFlagServer, type FlagServer, type FlagServerOptions } from '@holdfast/server'
import { evaluate, recordingLogger, tempDir, waitFor } from './helpers'

type Upstream = { state: string; lastError?: unknown }

// Answers nothing and ignores the abort signal it is given, as a wrapper that builds its own
// request without `init.signal` does when the network under it hangs.
const neverSettles = () => new Promise<Response>(() => {})
// Answers the status and headers at once, then a body that never ends and ignores the signal.
const endlessBody = async () => new Response(new ReadableStream({ pull: () => new Promise<void>(() => {}) }), { status: 200, headers: { 'Content-Type': 'application/json' } })

async function upstreamOf(server: FlagServer): Promise<Upstream> {
  return ((await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { upstream: Upstream }).upstream
}

/** Resolves to 'closed', or 'hung' when close() has not finished within 3 s. */
function closed(server: FlagServer): Promise<'closed' | 'hung'> {
  return Promise.race([server.close().then(() => 'closed' as const), new Promise<'hung'>((done) => setTimeout(() => done('hung'), 3_000))])
}

describe('a host fetch that ignores the abort signal is still bounded by upstreamTimeoutMs', () => {
  for (const [name, hang] of [['never settles', neverSettles], ['answers a body that never ends', endlessBody]] as const) {
    it(`upstream (proxy mode): a fetch that ${name} is a timeout the status names, and close() finishes`, async () => {
      const snapshot = join(await tempDir(), 'snap.json')
      await writeFile(snapshot, JSON.stringify({ context: { targetingKey: 'u1' }, flags: [{ key: 'a', value: true, reason: 'STATIC' }], fetchedAt: 1_700_000_000_000 }))
      const options: FlagServerOptions = { flags: undefined, upstream: 'http://127.0.0.1:9/', snapshot, forwardHeaders: [], upstreamTimeoutMs: 300, fetch: hang, port: 0, logger: recordingLogger(), maxEventLoopDelayMs: 0 }
      const server = await createFlagServer(options)
      try {
        expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
        await waitFor(async () => (await upstreamOf(server)).lastError !== undefined, 3_000)
        expect(JSON.stringify((await upstreamOf(server)).lastError)).toMatch(/within 300 ms/)
      } finally {
        expect(await closed(server)).toBe('closed')
      }
    })

    it(`flagsUrl: a fetch that ${name} is a timeout the status names, the next poll comes, and close() finishes`, async () => {
      const snapshot = join(await tempDir(), 'snap.json')
      await writeFile(snapshot, JSON.stringify({ flags: { a: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' } } }))
      let calls = 0
      const counted = () => (calls++, hang())
      const server = await createFlagServer({ flags: undefined, flagsUrl: 'http://127.0.0.1:9/flags.json', snapshot, upstreamTimeoutMs: 300, pollIntervalSeconds: 0.2, fetch: counted, port: 0, logger: recordingLogger(), maxEventLoopDelayMs: 0 })
      try {
        expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
        await waitFor(async () => calls >= 2 && (await upstreamOf(server)).lastError !== undefined, 3_000)
        expect({ polledAgain: calls >= 2, lastError: JSON.stringify((await upstreamOf(server)).lastError) }).toEqual({ polledAgain: true, lastError: expect.stringMatching(/within 300 ms/) })
      } finally {
        expect(await closed(server)).toBe('closed')
      }
    })
  }
})

describe('a host fetch that throws or answers no Response is an upstream failure, not a crash', () => {
  const throwsAtOnce = () => {
    throw new TypeError('proxy agent misconfigured')
  }
  const notAResponse = async () => ({ status: 200 }) as unknown as Response
  for (const [name, broken, said] of [['throws synchronously', throwsAtOnce, /proxy agent misconfigured/], ['resolves to no Response', notAResponse, /the fetch option answered something that is not a Response/]] as const) {
    it(`a fetch that ${name}: the snapshot is served, the status names the failure`, async () => {
      const snapshot = join(await tempDir(), 'snap.json')
      await writeFile(snapshot, JSON.stringify({ context: { targetingKey: 'u1' }, flags: [{ key: 'a', value: true, reason: 'STATIC' }], fetchedAt: 1_700_000_000_000 }))
      const server = await createFlagServer({ flags: undefined, upstream: 'http://127.0.0.1:9/', snapshot, forwardHeaders: [], upstreamTimeoutMs: 300, fetch: broken as unknown as typeof fetch, port: 0, logger: recordingLogger(), maxEventLoopDelayMs: 0 })
      try {
        expect((await evaluate(server, { targetingKey: 'u1' })).status).toBe(200)
        await waitFor(async () => (await upstreamOf(server)).lastError !== undefined, 3_000)
        expect(await upstreamOf(server)).toMatchObject({ state: 'failing' })
        expect(JSON.stringify((await upstreamOf(server)).lastError)).toMatch(said)
      } finally {
        expect(await closed(server)).toBe('closed')
      }
    })
  }
})
