// Whatever the relay accepted and served, it reads back after a kill: the data dir, a snapshot
// file and a shared Redis give back the same answers a restarted relay serves (CONTRACT §9).
import { describe, expect, it } from 'vitest'
import type { FlagServer, FlagServerOptions } from '@holdfast/server'
import { MAX_VALUE_DEPTH } from '../../packages/server/src/flags/valueDepth'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { serverProcess } from './events-process'
import { startUpstream, type FakeUpstream } from './relay-fakes'

async function relay(upstream: FakeUpstream, options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  return startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger(), ...options })
}

async function bulk(server: FlagServer | string, context: Record<string, unknown>) {
  const response = await evaluate(typeof server === 'string' ? ({ url: server } as FlagServer) : server, context)
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

/** `{"a":{"a":…1…}}`, `depth` objects deep. */
const nested = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`

describe('proxy mode: a value nested as deep as the relay accepts', () => {
  it('is read back from the data dir after a restart, with every other context of that generation', async () => {
    const dir = await tempDir()
    // The upstream nests `limit` as deep as the context's `depth` asks.
    const upstream = await startUpstream((request) => {
      const context = (JSON.parse(request.body || '{}') as { context?: { depth?: number } }).context ?? {}
      return { status: 200, contentType: 'application/json', text: `{"flags":[{"key":"limit","value":${nested(context.depth ?? 1)}},{"key":"greeting","value":"hi"}]}` }
    })
    const first = await relay(upstream, { dataDir: dir })
    const plain = await bulk(first, { targetingKey: 'plain', depth: 1 })
    expect(plain.status).toBe(200)
    // The deepest value this relay accepts and serves (whatever bounds it: a limit, a stack).
    let served = 1
    let refused = 8000
    while (refused - served > 1) {
      const depth = (served + refused) >> 1
      if ((await bulk(first, { targetingKey: `d${depth}`, depth })).status === 200) served = depth
      else refused = depth
    }
    // The limit is the value's own, the same whatever the process has run before.
    expect(served).toBe(MAX_VALUE_DEPTH)
    const deepest = await bulk(first, { targetingKey: `d${served}`, depth: served })
    await first.close()

    upstream.set({ status: 503, text: '' })
    // A new process, as after a kill: its reader runs before anything in it is warmed up.
    const second = serverProcess(['--upstream', upstream.url, '--data-dir', dir, '--port', '0'])
    const url = await second.url()
    // Before: the generation, which wraps the value in five more levels (record, contexts, context,
    // flags, flag), overflowed the record schema's recursion on read and was skipped as unreadable
    // ("skipped data-dir generation"): every context of it got 503 while the upstream was down.
    const again = await bulk(url, { targetingKey: `d${served}`, depth: served })
    expect(again.status).toBe(200)
    expect(again.body.flags).toEqual(deepest.body.flags)
    expect((await bulk(url, { targetingKey: 'plain', depth: 1 })).body.flags).toEqual(plain.body.flags)
    expect(second.output()).not.toMatch(/skipped data-dir generation/)
  })
})
