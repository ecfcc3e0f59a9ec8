// The restore invariant on generated documents (CONTRACT §9): whatever flagd document the relay
// accepted and served, a relay started afresh with the upstream down serves exactly the same
// answers from what the first one left behind: its data dir, a `snapshot` file made from the same
// upstream, or the Redis store of the fleet. Odd keys (unicode, `__proto__`, lone surrogates, long
// strings), odd numbers (-0, 1e308, 5e-324), values nested up to the limit, many flags.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { makeSnapshot, type FlagServer, type FlagServerOptions } from '@holdfast/server'
import { MAX_VALUE_DEPTH } from '../../packages/server/src/flags/valueDepth'
import { evaluate, recordingLogger, startServer, tempDir } from './helpers'
import { startUpstream, type FakeUpstream } from './relay-fakes'
import { useRedisFleet } from './redis-fleet'

const { redisServer } = useRedisFleet()

// Keys are written into the JSON text by hand: a `"__proto__"` key stays an own key that way.
const text = (value: unknown): string => JSON.stringify(value)
const object = (entries: Array<[string, string]>): string => `{${entries.map(([key, value]) => `${text(key)}:${value}`).join(',')}}`

const oddKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '$ref', 'ü', 'e\u0301', '😀', 'a\ud800b', '\udc00', ' ', 'key with spaces'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }),
  fc.integer({ min: 200, max: 3000 }).map((n) => `long-${'k'.repeat(n)}`),
)
// Number texts: JSON.stringify would write -0 as 0, so the odd spellings are written by hand.
const oddNumber = fc.oneof(
  fc.constantFrom('-0', '-0.0', '1e308', '1E308', '-1e308', '5e-324', '9007199254740993', '0.1', '1.0'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
)
const oddString = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom('\ud800', 'a\udfffb', ''), fc.integer({ min: 1000, max: 20_000 }).map((n) => 's'.repeat(n)))
/** JSON text of an object value: odd keys, any JSON inside, sometimes nested right up to the limit. */
const objectValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.uniqueArray(fc.tuple(oddKey, fc.oneof(fc.jsonValue({ maxDepth: 3 }).map(text), oddNumber, oddString.map(text))), { selector: ([key]) => key, maxLength: 6 }).map(object) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: MAX_VALUE_DEPTH - 3, max: MAX_VALUE_DEPTH }), oddKey).map(([depth, key]) => `${`{${text(key)}:`.repeat(depth - 1)}{"end":[]}${'}'.repeat(depth - 1)}`),
  },
)
const variantValues = fc.constantFrom('boolean', 'string', 'number', 'object').chain((type) => {
  switch (type) {
    case 'boolean':
      return fc.constant([['on', 'true'], ['off', 'false']] as Array<[string, string]>)
    case 'string':
      return fc.uniqueArray(fc.tuple(oddKey, oddString.map(text)), { selector: ([name]) => name, minLength: 1, maxLength: 4 })
    case 'number':
      return fc.uniqueArray(fc.tuple(oddKey, oddNumber), { selector: ([name]) => name, minLength: 1, maxLength: 4 })
    default:
      return fc.uniqueArray(fc.tuple(oddKey, objectValue), { selector: ([name]) => name, minLength: 1, maxLength: 3 })
  }
})
const flag = fc
  .record({
    variants: variantValues,
    state: fc.constantFrom('ENABLED', 'ENABLED', 'DISABLED'),
    pick: fc.nat(),
    noDefault: fc.boolean(),
    targeted: fc.boolean(),
    metadata: fc.option(fc.uniqueArray(fc.tuple(oddKey, fc.oneof(fc.string({ maxLength: 8 }).map(text), oddNumber, fc.boolean().map(text))), { selector: ([key]) => key, maxLength: 3 }), { nil: undefined }),
  })
  .map(({ variants, state, pick, noDefault, targeted, metadata }) => {
    const names = variants.map(([name]) => name)
    const chosen = names[pick % names.length]
    const fields: Array<[string, string]> = [
      ['state', text(state)],
      ['variants', object(variants)],
      ['defaultVariant', noDefault ? 'null' : text(chosen)],
    ]
    // u1 gets the last variant, everyone else the default.
    if (targeted) fields.push(['targeting', `{"if":[{"==":[{"var":"targetingKey"},"u1"]},${text(names.at(-1))},null]}`])
    if (metadata) fields.push(['metadata', object(metadata)])
    return object(fields)
  })
/** A flagd document's text. */
const documents = fc
  .record({
    flags: fc.uniqueArray(fc.tuple(oddKey, flag), { selector: ([key]) => key, minLength: 1, maxLength: 12 }),
    many: fc.boolean(),
    metadata: fc.option(fc.uniqueArray(fc.tuple(oddKey, fc.oneof(fc.string({ maxLength: 8 }).map(text), oddNumber)), { selector: ([key]) => key, maxLength: 3 }), { nil: undefined }),
  })
  .map(({ flags, many, metadata }) => {
    const entries = [...flags]
    // Many flags: hundreds of plain ones beside the odd ones.
    if (many) for (let i = 0; i < 300; i++) entries.push([`bulk-${i}`, `{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"${i % 2 ? 'on' : 'off'}"}`])
    const top: Array<[string, string]> = [['flags', object(entries)]]
    if (metadata) top.push(['metadata', object(metadata)])
    return object(top)
  })

const CONTEXTS = [{ targetingKey: 'u1' }, { targetingKey: 'u2', plan: 'pro' }]

/** What a relay serves to each context: status, the flags and the flag-set metadata (without `holdfast`) as JSON text. */
async function answers(server: FlagServer): Promise<string[]> {
  const out: string[] = []
  for (const context of CONTEXTS) {
    const response = await evaluate(server, context)
    const body = (await response.json()) as { flags?: unknown; metadata?: Record<string, unknown> }
    const { holdfast: _, ...metadata } = body.metadata ?? {}
    out.push(`${response.status} ${JSON.stringify(body.flags)} ${JSON.stringify(metadata)}`)
  }
  return out
}

const RUNS = { numRuns: 30, endOnFailure: true }

async function relay(upstream: FakeUpstream, options: Partial<FlagServerOptions>): Promise<FlagServer> {
  return startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, pollIntervalSeconds: 3600, upstreamTimeoutMs: 2000, logger: recordingLogger(), ...options })
}

/** Serves `document` from a fresh relay; undefined when the relay does not accept it (not a document of this property). */
async function served(upstream: FakeUpstream, document: string, options: Partial<FlagServerOptions>): Promise<{ server: FlagServer; answers: string[] } | undefined> {
  upstream.set({ status: 200, contentType: 'application/json', text: document })
  const server = await relay(upstream, options)
  const seen = await answers(server)
  if (!seen[0].startsWith('200 ')) {
    await server.close()
    return undefined
  }
  return { server, answers: seen }
}

describe('what a relay served, a relay started afresh with the upstream down serves the same (property)', () => {
  it('(a) from the data dir: --flags-url', async () => {
    const upstream = await startUpstream({ status: 503, text: '' })
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(documents, async (document) => {
        const dataDir = await tempDir()
        const first = await served(upstream, document, { dataDir })
        fc.pre(first !== undefined)
        accepted++
        await first!.server.close()
        upstream.set({ status: 503, text: '' })
        const second = await relay(upstream, { dataDir })
        expect(await answers(second)).toEqual(first!.answers)
        await second.close()
      }),
      RUNS,
    )
    expect(accepted).toBeGreaterThan(15)
  }, 120_000)

  it('(a) from the data dir: --flags FILE that is unreadable at the restart', async () => {
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(documents, async (document) => {
        const dir = await tempDir()
        const file = join(dir, 'flags.json')
        const dataDir = join(dir, 'data')
        await writeFile(file, document)
        let first: FlagServer
        try {
          first = await startServer({ flags: file, dataDir, logger: recordingLogger() })
        } catch {
          fc.pre(false)
          return
        }
        const before = await answers(first)
        accepted++
        await first.close()
        // A broken deploy: the file is cut off. The data dir's copy is served.
        await writeFile(file, document.slice(0, document.length >> 1))
        const second = await startServer({ flags: file, dataDir, logger: recordingLogger() })
        expect(await answers(second)).toEqual(before)
        await second.close()
      }),
      RUNS,
    )
    expect(accepted).toBeGreaterThan(15)
  }, 120_000)

  it('(b) from a snapshot file made by `holdfast-server snapshot --flags-url`', async () => {
    const upstream = await startUpstream({ status: 503, text: '' })
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(documents, async (document) => {
        const out = join(await tempDir(), 'flags.snapshot.json')
        const first = await served(upstream, document, {})
        fc.pre(first !== undefined)
        accepted++
        await first!.server.close()
        const made = await makeSnapshot({ flagsUrl: `${upstream.url}/flags.json`, out })
        expect(made).toMatchObject({ ok: true })
        upstream.set({ status: 503, text: '' })
        const second = await relay(upstream, { snapshot: out })
        expect(await answers(second)).toEqual(first!.answers)
        await second.close()
      }),
      RUNS,
    )
    expect(accepted).toBeGreaterThan(15)
  }, 120_000)

  it('(c) from Redis (a real redis-server), with no data dir', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ status: 503, text: '' })
    const shared = { redis: { url: redis.url, leaseTtlMs: 1500, commandTimeoutMs: 500 } }
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(documents, async (document) => {
        await redis.command('FLUSHALL')
        const first = await served(upstream, document, shared)
        fc.pre(first !== undefined)
        accepted++
        // Published once the store has a version of it.
        for (let i = 0; i < 200 && (await (await fetch(`${first!.server.url}/holdfast/v1/status`)).json()).redis?.version === undefined; i++) await new Promise((r) => setTimeout(r, 10))
        await first!.server.close()
        upstream.set({ status: 503, text: '' })
        const second = await relay(upstream, shared)
        expect(await answers(second)).toEqual(first!.answers)
        await second.close()
      }),
      { ...RUNS, numRuns: 15 },
    )
    expect(accepted).toBeGreaterThan(7)
  }, 120_000)
})

/** An OFREP bulk answer's text: odd keys and values, per-flag errors, flag-set metadata. */
const ofrepAnswers = fc
  .record({
    entries: fc.uniqueArray(
      fc.tuple(
        oddKey,
        fc.oneof(
          { weight: 5, arbitrary: fc.record({ value: fc.oneof(objectValue, oddNumber, oddString.map(text), fc.boolean().map(text), fc.jsonValue({ maxDepth: 3 }).map(text)), variant: fc.option(oddString, { nil: undefined }), reason: fc.option(fc.constantFrom('STATIC', 'TARGETING_MATCH', 'SPLIT', 'A_NEW_REASON'), { nil: undefined }) }) },
          { weight: 1, arbitrary: fc.record({ errorCode: fc.constantFrom('GENERAL', 'PARSE_ERROR', 'TYPE_MISMATCH') }) },
        ),
      ),
      { selector: ([key]) => key, minLength: 1, maxLength: 15 },
    ),
    metadata: fc.option(fc.uniqueArray(fc.tuple(oddKey, fc.oneof(fc.string({ maxLength: 8 }).map(text), oddNumber)), { selector: ([key]) => key, maxLength: 3 }), { nil: undefined }),
  })
  .map(({ entries, metadata }) => {
    const flags = entries.map(([key, entry]) => {
      const fields: Array<[string, string]> = [['key', text(key)]]
      if ('errorCode' in entry) fields.push(['errorCode', text(entry.errorCode)])
      else {
        fields.push(['value', entry.value])
        if (entry.variant !== undefined) fields.push(['variant', text(entry.variant)])
        if (entry.reason !== undefined) fields.push(['reason', text(entry.reason)])
      }
      return object(fields)
    })
    return `{"flags":[${flags.join(',')}]${metadata ? `,"metadata":${object(metadata)}` : ''}}`
  })

describe('proxy mode: what a relay served for a context, a fresh relay with the upstream down serves the same (property)', () => {
  const proxy = (upstream: FakeUpstream, options: Partial<FlagServerOptions>) => startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger(), ...options })

  async function roundTrip(upstream: FakeUpstream, answer: string, options: () => Promise<Partial<FlagServerOptions>>) {
    upstream.set({ status: 200, contentType: 'application/json', text: answer })
    const shared = await options()
    const first = await proxy(upstream, shared)
    const before = await answers(first)
    // A case the upstream's answer does not survive is skipped, and its relay closed now (left
    // open, it would keep its store connection through every later case).
    if (!before.every((seen) => seen.startsWith('200 '))) await first.close()
    fc.pre(before.every((seen) => seen.startsWith('200 ')))
    return { first, before, shared }
  }

  it('(a) from the data dir', async () => {
    const upstream = await startUpstream({ status: 503, text: '' })
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(ofrepAnswers, async (answer) => {
        const { first, before, shared } = await roundTrip(upstream, answer, async () => ({ dataDir: await tempDir() }))
        accepted++
        await first.close()
        upstream.set({ status: 503, text: '' })
        const second = await proxy(upstream, shared)
        expect(await answers(second)).toEqual(before)
        await second.close()
      }),
      // Each run waits out the data dir's half-second between two writes (two contexts).
      { ...RUNS, numRuns: 15 },
    )
    expect(accepted).toBeGreaterThan(7)
  }, 120_000)

  it('(c) from Redis (a real redis-server), with no data dir', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ status: 503, text: '' })
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(ofrepAnswers, async (answer) => {
        await redis.command('FLUSHALL')
        const { first, before, shared } = await roundTrip(upstream, answer, async () => ({ redis: { url: redis.url, leaseTtlMs: 1500, commandTimeoutMs: 500 } }))
        accepted++
        // Shared once both contexts are in the store: every served answer gets there, even one
        // that met the store before it was connected (shared again a second later).
        let keys = ''
        for (let i = 0; i < 1500; i++) {
          keys = await redis.command('KEYS', 'holdfast:*:doc:context:*')
          if (keys.startsWith(`*${CONTEXTS.length}`)) break
          await new Promise((r) => setTimeout(r, 10))
        }
        expect(keys.slice(0, 4)).toBe(`*${CONTEXTS.length}\r\n`)
        await first.close()
        upstream.set({ status: 503, text: '' })
        const second = await proxy(upstream, shared)
        // The store is read in the background at start: the first answers may still be 503.
        let after: string[] = []
        for (let i = 0; i < 100; i++) {
          after = await answers(second)
          if (after.every((seen) => seen.startsWith('200 '))) break
          await new Promise((r) => setTimeout(r, 20))
        }
        expect(after).toEqual(before)
        await second.close()
      }),
      { ...RUNS, numRuns: 15 },
    )
    expect(accepted).toBeGreaterThan(7)
  }, 120_000)
})
