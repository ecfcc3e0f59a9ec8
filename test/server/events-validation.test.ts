// The events boundary: content type, caps on depth and size, forbidden keys. Every refusal is a
// 4xx the client will not retry, never a 500 it retries forever.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { EVENT_LIMITS } from '@holdfast/server'
import { post, startServer, tempDir } from './helpers'

let counter = 0
const event = (overrides: Record<string, unknown> = {}) => ({ id: `val-${process.pid}-${++counter}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000, ...overrides })
const nested = (depth: number, leaf: string) => '{"a":'.repeat(depth) + leaf + '}'.repeat(depth)

describe('events boundary', { timeout: 30_000 }, () => {
  it('text/plain (a cross-site "simple" request) and a missing content type are 415, nothing stored', async () => {
    const server = await startServer()
    const body = JSON.stringify({ events: [event()] })
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp']) {
      const response = await fetch(`${server.url}/holdfast/v1/events`, { method: 'POST', headers: { 'Content-Type': type }, body })
      expect(response.status).toBe(415)
      expect(await response.json()).toMatchObject({ errorCode: 'UNSUPPORTED_MEDIA_TYPE' })
    }
    const bare = await fetch(`${server.url}/holdfast/v1/events`, { method: 'POST', body: new Blob([body]) })
    expect(bare.status).toBe(415)
    expect(server.events()).toEqual([])
    for (const type of ['application/json; charset=utf-8', 'Application/JSON']) {
      expect((await post(`${server.url}/holdfast/v1/events`, { events: [event()] }, { 'Content-Type': type })).status).toBe(202)
    }
  })

  it('a compressed body (Content-Encoding gzip, br) is 415 naming the encoding, not a 400 the client drops as bad events; identity is read', async () => {
    const server = await startServer()
    const body = JSON.stringify({ events: [event()] })
    for (const [encoding, bytes] of [['gzip', gzipSync(body)], ['br', brotliCompressSync(body)], ['GZIP, br', gzipSync(body)]] as const) {
      const headers = { 'Content-Type': 'application/json', 'Content-Encoding': encoding }
      const events = await fetch(`${server.url}/holdfast/v1/events`, { method: 'POST', headers, body: bytes })
      expect({ encoding, status: events.status }).toEqual({ encoding, status: 415 })
      expect(await events.json()).toMatchObject({ errorCode: 'UNSUPPORTED_MEDIA_TYPE', errorDetails: expect.stringContaining(encoding.toLowerCase()) })
      // The OFREP routes say the same (before: 400 PARSE_ERROR, "the context is bad").
      const flags = await fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers, body: gzipSync(JSON.stringify({ context: { targetingKey: 'u1' } })) })
      expect(flags.status).toBe(415)
    }
    expect(server.events()).toEqual([])
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [event()] }, { 'Content-Encoding': 'identity' })).status).toBe(202)
    expect((await post(`${server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u1' } }, { 'Content-Encoding': 'identity' })).status).toBe(200)
  })

  it('metadata nested 5,000 deep is a 400, never a retryable 500; so is any body past the depth cap', async () => {
    const server = await startServer()
    const deepMetadata = `{"events":[{"id":"deep-1","type":"custom","name":"n","time":1,"metadata":${nested(5000, '1')}}]}`
    const response = await post(`${server.url}/holdfast/v1/events`, deepMetadata)
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ errorCode: 'INVALID_EVENTS' })
    const deepValue = `{"events":[{"id":"deep-2","type":"exposure","name":"f","time":1,"value":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`
    expect((await post(`${server.url}/holdfast/v1/events`, deepValue)).status).toBe(400)
    // Just inside the caps is fine: flat metadata of the client, and a value nested 60 deep.
    const ok = `{"events":[{"id":"deep-3","type":"exposure","name":"f","time":1,"value":${nested(60, '1')},"metadata":{"plan":"pro","n":1,"b":true}}]}`
    expect((await post(`${server.url}/holdfast/v1/events`, ok)).status).toBe(202)
  })

  it('refuses metadata past its caps (depth, keys, bytes) and names the event', async () => {
    const server = await startServer()
    const cases = [
      { metadata: JSON.parse(nested(EVENT_LIMITS.maxMetadataDepth + 1, '1')) },
      { metadata: Object.fromEntries(Array.from({ length: EVENT_LIMITS.maxMetadataKeys + 1 }, (_, i) => [`k${i}`, i])) },
      { metadata: { blob: 'x'.repeat(EVENT_LIMITS.maxMetadataBytes) } },
      { metadata: ['not', 'an', 'object'] },
    ]
    for (const extra of cases) {
      const response = await post(`${server.url}/holdfast/v1/events`, { events: [event(), event(extra)] })
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorCode: 'INVALID_EVENTS', errorDetails: expect.stringContaining('events[1].metadata') })
    }
    const atCaps = { metadata: Object.fromEntries(Array.from({ length: EVENT_LIMITS.maxMetadataKeys }, (_, i) => [`k${i}`, i])) }
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [event(atCaps)] })).status).toBe(202)
  })

  it('refuses a __proto__ key anywhere in the body; constructor and prototype are ordinary keys', async () => {
    const server = await startServer()
    for (const where of ['"metadata":{"__proto__":{"plan":"pro"}}', '"value":{"a":[{"__proto__":{"plan":"pro"}}]}', '"__proto__":{"plan":"pro"}']) {
      const raw = `{"events":[{"id":"proto-1","type":"exposure","name":"n","time":1,${where}}]}`
      const response = await post(`${server.url}/holdfast/v1/events`, raw)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorDetails: expect.stringContaining('__proto__') })
    }
    const ordinary = '{"events":[{"id":"proto-2","type":"exposure","name":"n","time":1,"value":{"prototype":false},"metadata":{"constructor":"x"}}]}'
    expect((await post(`${server.url}/holdfast/v1/events`, ordinary)).status).toBe(202)
    expect(server.events()).toEqual([JSON.parse(ordinary).events[0]])
    // As a string value (a flag key named like that) it is an ordinary string.
    expect((await post(`${server.url}/holdfast/v1/events`, { events: [event({ type: 'exposure', name: '__proto__', flagKey: 'constructor' })] })).status).toBe(202)
  })

  it('refuses ids, names and counts past their caps, and a non-finite time', async () => {
    const server = await startServer()
    for (const extra of [{ id: 'i'.repeat(EVENT_LIMITS.maxIdLength + 1) }, { name: 'n'.repeat(EVENT_LIMITS.maxStringLength + 1) }, { variant: 7 }]) {
      expect((await post(`${server.url}/holdfast/v1/events`, { events: [event(extra)] })).status).toBe(400)
    }
    expect((await post(`${server.url}/holdfast/v1/events`, '{"events":[{"id":"inf","type":"custom","name":"n","time":1e400}]}')).status).toBe(400)
    const many = { events: Array.from({ length: EVENT_LIMITS.maxEvents + 1 }, (_, i) => ({ id: `m${i}`, type: 'custom', name: 'n', time: 1 })) }
    // Too many is too large, not bad: 413, which the client splits (a 400 it drops).
    const tooMany = await post(`${server.url}/holdfast/v1/events`, many)
    expect(tooMany.status).toBe(413)
    expect(await tooMany.json()).toEqual({ errorCode: 'TOO_MANY_EVENTS', errorDetails: '10,001 events in one batch; at most 10,000: send them in smaller batches' })
    expect(server.events()).toEqual([])
  })

  it('a body that is not valid UTF-8 is a 400: two ids differing in an invalid byte are not merged into one "duplicate"', async () => {
    const server = await startServer()
    const line = (id: Buffer) => Buffer.concat([Buffer.from('{"id":"utf-'), id, Buffer.from('","type":"custom","name":"n","time":1}')])
    const body = Buffer.concat([Buffer.from('{"events":['), line(Buffer.from([0xff])), Buffer.from(','), line(Buffer.from([0xfe])), Buffer.from(']}')])
    const response = await fetch(`${server.url}/holdfast/v1/events`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    // Before: 202 {"accepted":1,"duplicates":1}; both ids became "utf-\uFFFD", the second event was lost.
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ errorCode: 'PARSE_ERROR', errorDetails: expect.stringMatching(/UTF-8/) })
    expect(server.events()).toEqual([])
    // A real U+FFFD (valid UTF-8) and ids differing only by Unicode normalisation are ordinary, distinct ids.
    const ids = ['utf-\uFFFD', 'caf\u00e9', 'cafe\u0301']
    expect(await (await post(`${server.url}/holdfast/v1/events`, { events: ids.map((id) => event({ id })) })).json()).toEqual({ accepted: 3, duplicates: 0 })
    // The same id twice in one batch is stored once.
    expect(await (await post(`${server.url}/holdfast/v1/events`, { events: [event({ id: 'twice' }), event({ id: 'twice' })] })).json()).toEqual({ accepted: 1, duplicates: 1 })
    expect(server.events().map((e) => e.id)).toEqual([...ids, 'twice'])
  })

  it('accepts omitted or null optional fields and keeps fields it does not know, as sent', async () => {
    const server = await startServer()
    const sparse = event({ targetingKey: null, flagKey: null, variant: null, reason: null, metadata: null })
    const extra = event({ type: 'exposure', flagKey: 'beta', value: { nested: [1, 'two', null] }, source: 'cache', custom: { x: 1 } })
    expect(await (await post(`${server.url}/holdfast/v1/events`, { events: [event(), sparse, extra] })).json()).toEqual({ accepted: 3, duplicates: 0 })
    expect(server.events().slice(1)).toEqual([sparse, extra])
  })

  it('a number too large for a double (1e400) in a field the schema does not name is a 400, not stored as null', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const server = await startServer({ eventsFile: file })
    for (const where of ['"extra":1e400', '"extra":{"deep":[-1e999]}']) {
      const raw = `{"events":[{"id":"huge-1","type":"custom","name":"n","time":1,${where}}]}`
      const response = await post(`${server.url}/holdfast/v1/events`, raw)
      // Before: 202, and the file held "extra":null (JSON.parse reads 1e400 as Infinity, which
      // JSON.stringify writes as null): the event stored, and forwarded, was not the one sent.
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ errorCode: 'INVALID_EVENTS', errorDetails: expect.stringContaining('events[0].extra') })
    }
    expect(await readFile(file, 'utf8')).toBe('')
    // A large finite number is an ordinary number.
    expect((await post(`${server.url}/holdfast/v1/events`, '{"events":[{"id":"huge-2","type":"custom","name":"n","time":1,"extra":1e300}]}')).status).toBe(202)
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ id: 'huge-2', extra: 1e300 })
  })

  it('what a real sender writes in a field the schema does not name is taken: -0, 1e308, 5e-324, a 20-digit integer, a big integer as a string, 1e-400', async () => {
    const dir = await tempDir()
    const file = join(dir, 'events.jsonl')
    const server = await startServer({ eventsFile: file })
    const values = ['-0', '1e308', '-1.7976931348623157e308', '5e-324', '12345678901234567890', '"123456789012345678901234567890"', '1e-400', '[0.1, -0, {"n": 1e308}]']
    const raw = `{"events":[${values.map((v, i) => `{"id":"real-${i}","type":"custom","name":"n","time":1,"extra":${v}}`).join(',')}]}`
    // One refused would be a 400, and the client drops the whole batch (CONTRACT §6).
    expect(await (await post(`${server.url}/holdfast/v1/events`, raw)).json()).toEqual({ accepted: values.length, duplicates: 0 })
    const stored = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line).extra)
    // As JSON they are what was sent (-0 is written 0, as JSON.stringify writes it; equal in JSON).
    expect(stored.map((v) => JSON.stringify(v))).toEqual(values.map((v) => JSON.stringify(JSON.parse(v))))
    expect(stored[4]).toBe(12345678901234567890)
  })
})
