import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { DEMO_FLAGS, evaluate, flagsByKey, post, recordingLogger, startServer } from './helpers'

import { testbedDir } from '../support/shared'

const TESTBED = testbedDir ?? ''

describe('POST /ofrep/v1/evaluate/flags', () => {
  it('evaluates every flag for the context, with value, reason, variant and metadata', async () => {
    const server = await startServer()
    const response = await evaluate(server, { targetingKey: 'user-1' })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await response.json()) as { flags: unknown[]; metadata?: unknown }
    // CONTRACT §9: every bulk answer says where its flags come from and how fresh they are.
    expect(body.metadata).toEqual({ flagSetId: 'test', holdfast: { source: 'file', fetchedAt: expect.any(Number), stale: false } })
    const flags = Object.fromEntries((body.flags as Array<{ key: string }>).map((f) => [f.key, f]))
    expect(flags['kill-switch']).toEqual({ key: 'kill-switch', value: false, reason: 'STATIC', variant: 'off', metadata: { flagSetId: 'test' } })
    expect(flags.banner).toMatchObject({ value: { text: 'Hello', color: 'blue' }, variant: 'plain' })
    expect(flags.greeting).toMatchObject({ value: 'Hi', reason: 'STATIC' })
    expect(flags.limit).toMatchObject({ value: 5 })
    expect(flags.beta).toMatchObject({ value: false, variant: 'off', metadata: { flagSetId: 'test', owner: 'growth' } })
  })

  it('applies targeting rules to context attributes', async () => {
    const server = await startServer()
    const byEmail = await flagsByKey(await evaluate(server, { targetingKey: 'a', email: 'ann@example.com' }))
    const byPlan = await flagsByKey(await evaluate(server, { targetingKey: 'b', plan: 'pro' }))
    const neither = await flagsByKey(await evaluate(server, { targetingKey: 'c', email: 'carl@elsewhere.org', plan: 'free' }))
    expect(byEmail.beta).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' })
    expect(byPlan.beta).toMatchObject({ value: true, variant: 'on' })
    expect(neither.beta).toMatchObject({ value: false, variant: 'off' })
  })

  it('buckets a fractional rollout by targetingKey: stable per user, spread across users', async () => {
    const server = await startServer()
    const variantOf = async (key: string) => (await flagsByKey(await evaluate(server, { targetingKey: key }))).rollout.variant
    const first = await Promise.all(Array.from({ length: 200 }, (_, i) => variantOf(`user-${i}`)))
    const again = await Promise.all(Array.from({ length: 200 }, (_, i) => variantOf(`user-${i}`)))
    expect(again).toEqual(first)
    const on = first.filter((v) => v === 'on').length
    // 50/50 over 200 users: a fair split lands well inside 70..130 (p > 0.999).
    expect(on).toBeGreaterThan(70)
    expect(on).toBeLessThan(130)
  })

  it('reports a disabled flag as reason DISABLED with no value, so clients use their default', async () => {
    const server = await startServer()
    const flags = await flagsByKey(await evaluate(server, { targetingKey: 'u' }))
    expect(flags.retired).toEqual({ key: 'retired', reason: 'DISABLED', metadata: { flagSetId: 'test' } })
  })

  it('accepts a context with only a targetingKey and ignores unknown body fields', async () => {
    const server = await startServer()
    const response = await post(`${server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' }, extra: { anything: 1 } })
    expect(response.status).toBe(200)
    // A JSON media type with parameters or a +json suffix is JSON too.
    for (const type of ['application/json; charset=utf-8', 'application/vnd.api+json', 'APPLICATION/JSON']) {
      expect((await post(`${server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } }, { 'Content-Type': type })).status, type).toBe(200)
    }
  })

  it('accepts attributes a client serializer writes empty (null, "", [], {}) on both routes: OFREP asks only for a targetingKey', async () => {
    const server = await startServer()
    const plain = await (await post(`${server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })).json()
    const context = { targetingKey: 'u', email: null, plan: '', groups: [], traits: {} }
    const bulk = await post(`${server.url}/ofrep/v1/evaluate/flags`, { context })
    expect(bulk.status).toBe(200)
    expect(await bulk.json()).toEqual(plain)
    const one = await post(`${server.url}/ofrep/v1/evaluate/flags/beta`, { context })
    expect(one.status).toBe(200)
    // Optional request headers and query parameters sent empty are absent: a full 200, no 400, no wait.
    const empty = await post(`${server.url}/ofrep/v1/evaluate/flags?flagConfigLastModified=`, { context: { targetingKey: 'u' } }, { 'If-None-Match': '' })
    expect(empty.status).toBe(200)
    expect(await empty.json()).toEqual(plain)
  })

  it('reads a body that starts with a UTF-8 byte order mark (RFC 8259 lets a parser ignore it), on every JSON route', async () => {
    // Before: 400 PARSE_ERROR, for a body some HTTP clients (and .NET's UTF-8 encoder) send as is.
    const server = await startServer()
    const send = (path: string, body: unknown) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: `\uFEFF${JSON.stringify(body)}` })
    const bulk = await send('/ofrep/v1/evaluate/flags', { context: { targetingKey: 'u' } })
    expect(bulk.status).toBe(200)
    expect(Object.keys(await flagsByKey(bulk))).toEqual(Object.keys(await flagsByKey(await evaluate(server, { targetingKey: 'u' }))))
    expect((await send('/ofrep/v1/evaluate/flags/beta', { context: { targetingKey: 'u' } })).status).toBe(200)
    const events = await send('/holdfast/v1/events', { events: [{ id: crypto.randomUUID(), type: 'custom', name: 'bom', time: Date.now() }] })
    expect(events.status).toBe(202)
  })

  it('answers 415 to a body sent as another media type (a cross-site "simple" request)', async () => {
    const server = await startServer()
    // fetch with a string body sends text/plain: what a page on any site can post without a preflight.
    const plain = await fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', body: '{"context":{"targetingKey":"u"}}' })
    expect(plain.status).toBe(415)
    expect(await plain.json()).toMatchObject({ errorCode: 'UNSUPPORTED_MEDIA_TYPE' })
    const form = await post(`${server.url}/ofrep/v1/evaluate/flags/beta`, 'context=1', { 'Content-Type': 'application/x-www-form-urlencoded' })
    expect(form.status).toBe(415)
  })

  it('answers 400 TARGETING_KEY_MISSING when the targetingKey is missing or empty', async () => {
    const server = await startServer()
    for (const body of [{ context: { email: 'a@example.com' } }, { context: { targetingKey: '' } }, {}, '']) {
      const response = await post(`${server.url}/ofrep/v1/evaluate/flags`, body)
      expect(response.status).toBe(400)
      expect(await response.json()).toEqual({ errorCode: 'TARGETING_KEY_MISSING', errorDetails: expect.any(String) })
    }
  })

  it('answers 400 PARSE_ERROR for a body that is not JSON and INVALID_CONTEXT for a wrong shape', async () => {
    const server = await startServer()
    const garbled = await post(`${server.url}/ofrep/v1/evaluate/flags`, '{"context": {')
    expect(garbled.status).toBe(400)
    expect(await garbled.json()).toMatchObject({ errorCode: 'PARSE_ERROR' })
    for (const body of [{ context: 'user-1' }, [1, 2], { context: { targetingKey: 42 } }]) {
      const response = await post(`${server.url}/ofrep/v1/evaluate/flags`, body)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorCode: 'INVALID_CONTEXT' })
    }
  })

  it('sends an ETag and answers 304 to If-None-Match with it, 200 once the answer changes', async () => {
    const server = await startServer()
    const first = await evaluate(server, { targetingKey: 'u' })
    const etag = first.headers.get('etag')
    expect(etag).toMatch(/^"[\w-]+"$/)
    const same = await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': etag! })
    expect(same.status).toBe(304)
    expect(same.headers.get('etag')).toBe(etag)
    expect(await same.text()).toBe('')
    // Weak form and lists match too (RFC 9110 weak comparison).
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': `"x", W/${etag}` })).status).toBe(304)
    // A client (or a proxy) that took the quotes off still names this answer; a tag that only
    // contains it does not.
    const bare = etag!.slice(1, -1)
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': bare })).status).toBe(304)
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': `"x", W/${bare}` })).status).toBe(304)
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': `x${bare}` })).status).toBe(200)
    expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': `"${bare}` })).status).toBe(200)
    // Another context has another answer, so the tag does not validate it.
    const other = await evaluate(server, { targetingKey: 'v', plan: 'pro' }, { 'If-None-Match': etag! })
    expect(other.status).toBe(200)
    // A flag change changes the body and therefore the tag.
    server.setFlags({ flags: { ...DEMO_FLAGS.flags, 'kill-switch': { ...DEMO_FLAGS.flags['kill-switch'], defaultVariant: 'on' } } })
    const changed = await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': etag! })
    expect(changed.status).toBe(200)
    expect(changed.headers.get('etag')).not.toBe(etag)
    expect((await flagsByKey(changed))['kill-switch'].value).toBe(true)
  })

  it('answers 400 to a context body over 64 KiB and 413 to a body over 1 MiB, and keeps serving', async () => {
    const server = await startServer()
    const padded = (size: number) => {
      const base = JSON.stringify({ context: { targetingKey: 'u', pad: '' } })
      return base.replace('"pad":""', `"pad":"${'x'.repeat(size - base.length)}"`)
    }
    // Within the transport cap (1 MiB, CONTRACT §8) but over the evaluation cap: a bad context.
    const big = await post(`${server.url}/ofrep/v1/evaluate/flags`, padded(1_048_576))
    expect(big.status).toBe(400)
    expect(await big.json()).toMatchObject({ errorCode: 'INVALID_CONTEXT', errorDetails: expect.stringMatching(/65536 bytes/) })
    expect((await post(`${server.url}/ofrep/v1/evaluate/flags`, padded(65_537))).status).toBe(400)
    const over = await post(`${server.url}/ofrep/v1/evaluate/flags`, padded(1_048_577))
    expect(over.status).toBe(413)
    // A much larger upload is cut off without being buffered, and the server keeps working.
    expect((await post(`${server.url}/ofrep/v1/evaluate/flags`, padded(8 * 1_048_576))).status).toBe(413)
    expect((await evaluate(server, { targetingKey: 'u' })).status).toBe(200)
  })
})

describe('POST /ofrep/v1/evaluate/flags/{key}', () => {
  it('evaluates one flag, 404 FLAG_NOT_FOUND for an unknown key, DISABLED without a value', async () => {
    const server = await startServer()
    const one = await post(`${server.url}/ofrep/v1/evaluate/flags/beta`, { context: { targetingKey: 'u', plan: 'pro' } })
    expect(one.status).toBe(200)
    expect(await one.json()).toEqual({ key: 'beta', value: true, reason: 'TARGETING_MATCH', variant: 'on', metadata: { flagSetId: 'test', owner: 'growth' } })
    const missing = await post(`${server.url}/ofrep/v1/evaluate/flags/nope`, { context: { targetingKey: 'u' } })
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ key: 'nope', errorCode: 'FLAG_NOT_FOUND' })
    const disabled = await post(`${server.url}/ofrep/v1/evaluate/flags/retired`, { context: { targetingKey: 'u' } })
    expect(await disabled.json()).toEqual({ key: 'retired', reason: 'DISABLED', metadata: { flagSetId: 'test' } })
    const noKey = await post(`${server.url}/ofrep/v1/evaluate/flags/beta`, { context: {} })
    expect(noKey.status).toBe(400)
    expect(await noKey.json()).toMatchObject({ key: 'beta', errorCode: 'TARGETING_KEY_MISSING' })
  })

  it('a key whose %-encoding is broken is an OFREP FLAG_NOT_FOUND for that key, not the generic 404', async () => {
    const server = await startServer()
    const broken = await post(`${server.url}/ofrep/v1/evaluate/flags/beta%zz`, { context: { targetingKey: 'u' } })
    expect(broken.status).toBe(404)
    expect(await broken.json()).toMatchObject({ key: 'beta%zz', errorCode: 'FLAG_NOT_FOUND' })
  })

  it('treats keys like __proto__ as ordinary flag keys', async () => {
    // JSON.parse keeps "__proto__" as an own key, as reading a flags file does.
    const flags = JSON.parse('{"flags":{"__proto__":{"state":"ENABLED","variants":{"a":"A"},"defaultVariant":"a"}}}')
    const server = await startServer({ flags })
    const one = await post(`${server.url}/ofrep/v1/evaluate/flags/__proto__`, { context: { targetingKey: 'u' } })
    expect(await one.json()).toMatchObject({ key: '__proto__', value: 'A' })
    const bulk = await flagsByKey(await evaluate(server, { targetingKey: 'u' }))
    expect(Object.keys(bulk)).toEqual(['__proto__'])
  })
})

describe.skipIf(!testbedDir)('flagd-testbed flag files', () => {
  it('serves the testbed flags with flagd semantics (zero values, metadata, disabled)', async () => {
    const server = await startServer({ flags: `${TESTBED}/flags_testing-flags.json` })
    const flags = await flagsByKey(await evaluate(server, { targetingKey: 'u' }))
    expect(flags['boolean-flag']).toMatchObject({ value: true, reason: 'STATIC' })
    expect(flags['string-flag']).toMatchObject({ value: 'hi' })
    // This file's targeted flags use `$ref: is_ballmer`, which another testbed file defines (flagd
    // loads them together). Alone it is incomplete, and strict validation refuses it for that.
    await expect(startServer({ flags: `${TESTBED}/flags_zero-flags.json` })).rejects.toThrow(/\$ref "is_ballmer" names no entry of \$evaluators/)
    const zero = await startServer({ flags: `${TESTBED}/flags_zero-flags.json`, strictValidation: false })
    const zeros = await flagsByKey(await evaluate(zero, { targetingKey: 'u' }))
    expect(zeros['boolean-zero-flag']).toMatchObject({ value: false, reason: 'STATIC' })
    expect(zeros['string-zero-flag']).toMatchObject({ value: '' })
    expect(zeros['integer-zero-flag']).toMatchObject({ value: 0 })
    const meta = await startServer({ flags: `${TESTBED}/flags_metadata-flags.json` })
    const entries = await flagsByKey(await evaluate(meta, { targetingKey: 'u' }))
    const expected = JSON.parse(await readFile(`${TESTBED}/flags_metadata-flags.json`, 'utf8'))
    for (const [key, flag] of Object.entries(expected.flags as Record<string, { metadata?: object }>)) {
      expect(entries[key].metadata).toMatchObject(flag.metadata ?? {})
    }
    const disabled = await startServer({ flags: `${TESTBED}/flags_disabled-flags.json` })
    for (const entry of Object.values(await flagsByKey(await evaluate(disabled, { targetingKey: 'u' })))) {
      expect(entry).toEqual({ key: entry.key, reason: 'DISABLED' })
    }
  })

  it('refuses a file that breaks the flagd schema, unless strictValidation is off', async () => {
    const file = `${TESTBED}/evaluator_flags_testkit-flags.json`
    await expect(startServer({ flags: file })).rejects.toThrow(/does not match the flagd schema: .*sem_ver/)
    const logger = recordingLogger()
    const server = await startServer({ flags: file, strictValidation: false, logger })
    const flags = await flagsByKey(await evaluate(server, { targetingKey: 'u', id: 'abcdef', user: { name: 'ann' } }))
    expect(flags['starts-ends-flag']).toMatchObject({ value: 'prefix', reason: 'TARGETING_MATCH' })
    expect(flags['some-email-targeted-flag']).toMatchObject({ value: 'bye' })
    expect(['clubs', 'diamonds', 'hearts', 'spades']).toContain(flags['fractional-flag'].value)
    // A flag whose rule cannot even compile is one failure entry, not a failed response.
    expect(flags['ref-to-nonexistent-evaluator-flag']).toMatchObject({ errorCode: 'PARSE_ERROR' })
    expect(logger.lines.some((line) => line.startsWith('[holdfast-server]'))).toBe(true)
  })
})
