// Requests through `toFetchHandler` (a Next.js App Router route handler, Hono, Bun, Deno) that a
// Node server never hands over: a body the runtime errors (its client left mid-upload) or the app
// read first, a method named like an Object member. None may escape into the host process (an
// 'error' event nobody listens to is thrown: the whole app server went down with it), and every
// answer must settle.
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagHandler, toFetchHandler, type FlagHandler, type ServerLogger } from '@holdfast/server'
import { DEMO_FLAGS, recordingLogger } from './helpers'

const handlers: FlagHandler[] = []
afterEach(async () => {
  for (const h of handlers.splice(0)) await h.close()
})

/** A handler on the demo flags behind toFetchHandler, closed after the test. */
async function fetchHandler(logger: ServerLogger = recordingLogger()) {
  const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger, maxEventLoopDelayMs: 0 })
  handlers.push(handler)
  return toFetchHandler(handler)
}

const uncaught: unknown[] = []
const record = (error: unknown) => uncaught.push(error)

describe('toFetchHandler: a request body that breaks off', () => {
  it('on the bulk, single-flag and events routes: a network error for the gone client, nothing thrown into the host, and the next request served', async () => {
    const handle = await fetchHandler()
    process.on('uncaughtException', record)
    try {
      for (const path of ['/ofrep/v1/evaluate/flags', '/ofrep/v1/evaluate/flags/beta', '/holdfast/v1/events']) {
        let upload!: ReadableStreamDefaultController<Uint8Array>
        const body = new ReadableStream<Uint8Array>({ start: (controller) => void (upload = controller).enqueue(new TextEncoder().encode('{"context":')) })
        const request = new Request(`http://app.example${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' }, duplex: 'half' } as RequestInit)
        const answer = handle(request)
        setTimeout(() => upload.error(new Error('the client went away mid-upload')), 20)
        // Before: never settled, and the stream's error was thrown as an uncaught exception.
        const settled = await Promise.race([answer, new Promise<'no answer'>((done) => setTimeout(() => done('no answer'), 2000))])
        expect(settled, path).not.toBe('no answer')
        expect((settled as Response).type, path).toBe('error')
      }
      await new Promise((done) => setTimeout(done, 50))
      expect(uncaught).toEqual([])
    } finally {
      process.off('uncaughtException', record)
    }
    const next = await handle(new Request('http://app.example/ofrep/v1/evaluate/flags', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u"}}' }))
    expect(next.status).toBe(200)
  })

  it('a Request whose body the app read first (await request.json()) is answered 500 naming it, not a rejection thrown into the app', async () => {
    const handle = await fetchHandler()
    for (const path of ['/ofrep/v1/evaluate/flags', '/holdfast/v1/events']) {
      const request = new Request(`http://app.example${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u"}}' })
      await request.json()
      // Before: rejected with "ReadableStream is locked" (Readable.fromWeb on a used body).
      const answer = await handle(request)
      expect(answer.status, path).toBe(500)
      expect(((await answer.json()) as { errorDetails: string }).errorDetails, path).toMatch(/read before the Holdfast handler/)
      expect(answer.headers.get('access-control-allow-origin'), path).toBe('*')
    }
  })
})

// A method is any token (RFC 9110); Node's parser knows a fixed list, but a Web Request may carry
// any. Named like a member of Object.prototype, it found that member in a route's handler table:
// `constructor` and `toString` ran as handlers and never answered, `__proto__`, `valueOf` or
// `hasOwnProperty` threw (a 500 and a stack trace in the log each time).
describe('toFetchHandler: a method named like an Object member', () => {
  it('is a 405 naming the methods allowed, on every route, never a hang or a 500', async () => {
    const logger = recordingLogger()
    const handle = await fetchHandler(logger)
    for (const method of ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty']) {
      for (const path of ['/ofrep/v1/evaluate/flags', '/ofrep/v1/evaluate/flags/beta', '/holdfast/v1/events', '/healthz']) {
        const answer = await Promise.race([handle(new Request(`http://app.example${path}`, { method })), new Promise<'no answer'>((done) => setTimeout(() => done('no answer'), 1000))])
        expect(answer, `${method} ${path}`).not.toBe('no answer')
        expect((answer as Response).status, `${method} ${path}`).toBe(405)
        expect((answer as Response).headers.get('allow'), `${method} ${path}`).toMatch(/OPTIONS/)
      }
    }
    expect(logger.lines.filter((line) => /failed/.test(line))).toEqual([])
  })
})
