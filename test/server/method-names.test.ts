// A request method is any token (RFC 9110); Node's own parser knows a fixed list, but a host that
// hands requests over from the Web `Request` (toFetchHandler under Bun, Deno, Hono) passes any. A
// method named like a member of Object.prototype found that member in a route's handler table:
// `constructor` and `toString` ran as handlers and never answered (the request hung), and
// `__proto__`, `valueOf` or `hasOwnProperty` threw, a 500 with a stack trace in the log each time.
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagHandler, toFetchHandler, type FlagHandler } from '@holdfast/server'
import { DEMO_FLAGS, recordingLogger } from './helpers'

const handlers: FlagHandler[] = []
afterEach(async () => {
  for (const h of handlers.splice(0)) await h.close()
})

describe('a method named like an Object member', () => {
  it('is a 405 naming the methods allowed, on every route, never a hang or a 500', async () => {
    const logger = recordingLogger()
    const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger, maxEventLoopDelayMs: 0 })
    handlers.push(handler)
    const handle = toFetchHandler(handler)
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
