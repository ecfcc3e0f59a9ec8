// A body sent with a declared charset (`application/json; charset=iso-8859-1`, `charset=utf-16le`):
// JSON is UTF-8 on the wire (RFC 8259) but some clients say otherwise and mean it. Read as UTF-8
// regardless, an accented letter became U+FFFD: two users differing in it shared one context (one
// answer, one bucket), a rule on `Zürich` never matched, a UTF-16 body was "not valid JSON", and an
// events batch was a 400, which a client drops (CONTRACT §6).
import { describe, expect, it } from 'vitest'
import type { FlagdDefinitions } from '@holdfast/server'
import { flagsByKey, startServer } from './helpers'

const CITY_FLAGS: FlagdDefinitions = {
  flags: {
    local: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'city' }, 'Zürich'] }, 'on', 'off'] } },
  },
}

const send = (url: string, type: string, bytes: Buffer) => fetch(url, { method: 'POST', headers: { 'Content-Type': type }, body: new Uint8Array(bytes) })
const latin1 = (value: unknown) => Buffer.from(JSON.stringify(value), 'latin1')

describe('a request body in the charset its Content-Type declares', () => {
  it('Latin-1 and UTF-16: the context is read as sent, on the bulk and single-flag routes, and two users never share an answer', async () => {
    const server = await startServer({ flags: CITY_FLAGS })
    const bulk = `${server.url}/ofrep/v1/evaluate/flags`
    const zurich = await send(bulk, 'application/json; charset=ISO-8859-1', latin1({ context: { targetingKey: 'José', city: 'Zürich' } }))
    expect(zurich.status).toBe(200)
    expect((await flagsByKey(zurich)).local.value).toBe(true)
    // Another user, one letter apart: its own answer, and its own tag (a 304 would confirm José's).
    const other = await send(bulk, 'application/json; charset=latin1', latin1({ context: { targetingKey: 'Josè', city: 'Zärich' } }))
    expect((await flagsByKey(other)).local.value).toBe(false)
    expect(other.headers.get('etag')).not.toBe(zurich.headers.get('etag'))
    const utf16 = await send(bulk, 'application/json; charset="utf-16le"', Buffer.from(JSON.stringify({ context: { targetingKey: 'u', city: 'Zürich' } }), 'utf16le'))
    expect(utf16.status).toBe(200)
    expect((await flagsByKey(utf16)).local.value).toBe(true)
    // Named by another of UTF-16's labels (WHATWG: `unicode`, `ucs-2`): its ASCII bytes are valid UTF-8 too, and still UTF-16.
    // All ASCII, so nothing but the label says UTF-16.
    const ucs2 = await send(bulk, 'application/json; charset=ucs-2', Buffer.from(JSON.stringify({ context: { targetingKey: 'u', city: 'Bern' } }), 'utf16le'))
    expect(ucs2.status).toBe(200)
    expect((await flagsByKey(ucs2)).local.value).toBe(false)
    const one = await send(`${bulk}/local`, 'application/json;charset=iso-8859-1', latin1({ context: { targetingKey: 'u', city: 'Zürich' } }))
    expect(await one.json()).toMatchObject({ key: 'local', value: true })
  })

  it('an events batch in Latin-1 is stored as sent (202), not refused as invalid UTF-8', async () => {
    const server = await startServer()
    const answer = await send(`${server.url}/holdfast/v1/events`, 'application/json; charset=iso-8859-1', latin1({ events: [{ id: 'e-1', type: 'custom', name: 'café', time: 1 }] }))
    expect(answer.status).toBe(202)
    expect(server.events().map((e) => e.name)).toEqual(['café'])
  })

  it('a charset it cannot name, or UTF-8 labelled Latin-1, is read as UTF-8: a request is never refused for its label', async () => {
    const server = await startServer({ flags: CITY_FLAGS })
    const utf8 = Buffer.from(JSON.stringify({ context: { targetingKey: 'u', city: 'Zürich' } }))
    for (const type of ['application/json; charset=x-klingon', 'application/json; charset=iso-8859-1']) {
      const answer = await send(`${server.url}/ofrep/v1/evaluate/flags`, type, utf8)
      expect(answer.status, type).toBe(200)
      expect((await flagsByKey(answer)).local.value, type).toBe(true)
    }
    const events = await send(`${server.url}/holdfast/v1/events`, 'application/json; charset=x-klingon', Buffer.from(JSON.stringify({ events: [{ id: 'e-1', type: 'custom', name: 'café', time: 1 }] })))
    expect(events.status).toBe(202)
    expect(server.events().map((e) => e.name)).toEqual(['café'])
  })

  it('UTF-8, said or not, in any spelling, is read as before', async () => {
    const server = await startServer({ flags: CITY_FLAGS })
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json;charset=utf8', 'application/json; charset=', 'application/json; charset=us-ascii']) {
      const answer = await send(`${server.url}/ofrep/v1/evaluate/flags`, type, Buffer.from(JSON.stringify({ context: { targetingKey: 'u', city: type.includes('ascii') ? 'Zurich' : 'Zürich' } })))
      expect(answer.status, type).toBe(200)
      expect((await flagsByKey(answer)).local.value, type).toBe(!type.includes('ascii'))
    }
  })
})
