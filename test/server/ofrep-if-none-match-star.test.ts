// `If-None-Match: *` on the bulk evaluation route. RFC 9110 §13.1.2 has `*` match any current
// representation (412 for a POST), but CONTRACT §2.1 and OFREP give If-None-Match on this POST one
// meaning only: an ETag from an earlier answer for this context, 304 when it names the current one.
// `*` names no snapshot a 304 could confirm, and a 412 is "other 4xx" to a client (retried with
// backoff, forever). So it is left open there, and the server answers it as if absent: 200, the
// full answer and its ETag. A list that also names the current tag still gets 304.
import { expect, it } from 'vitest'
import { evaluate, startServer } from './helpers'

it('If-None-Match: * gets the full answer (200 and its ETag), not a 304 or 412; a list naming the current tag still 304', async () => {
  const server = await startServer()
  const plain = await evaluate(server, { targetingKey: 'u' })
  const tag = plain.headers.get('etag')!
  expect(tag).toMatch(/^"/)
  const star = await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': '*' })
  expect(star.status).toBe(200)
  expect(star.headers.get('etag')).toBe(tag)
  expect(((await star.json()) as { flags: unknown[] }).flags.length).toBeGreaterThan(0)
  expect((await evaluate(server, { targetingKey: 'u' }, { 'If-None-Match': `*, ${tag}` })).status).toBe(304)
})
