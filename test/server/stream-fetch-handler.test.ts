// The event stream behind `toFetchHandler` (a Next.js App Router route handler, Hono, Bun, Deno):
// bulk answers advertise it there too, so it must answer like a stream — headers at once, bytes as
// they are written — and let go of a client that left or stopped reading.
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagHandler, toFetchHandler, type FlagdDefinitions, type FlagHandler } from '@holdfast/server'
import { DEMO_FLAGS, recordingLogger, waitFor } from './helpers'

const handlers: FlagHandler[] = []
afterEach(async () => {
  for (const h of handlers.splice(0)) await h.close()
})

async function mounted() {
  const handler = await createFlagHandler({ flags: DEMO_FLAGS, logger: recordingLogger(), maxEventLoopDelayMs: 0 })
  handlers.push(handler)
  return { handler, handle: toFetchHandler(handler, { basePath: '/api/flags' }) }
}

/** The demo flags with `limit`'s high variant at `n`: each new `n` is a new version. */
function edited(n: number): FlagdDefinitions {
  const flags = structuredClone(DEMO_FLAGS)
  ;(flags.flags.limit as { variants: Record<string, number> }).variants.high = 100 + n
  return flags
}

/** Resolves with the answer, or with 'no answer' after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'no answer'> {
  return Promise.race([promise, new Promise<'no answer'>((done) => setTimeout(() => done('no answer'), ms))])
}

describe('the event stream through toFetchHandler', () => {
  it('answers at once with an event stream that carries the notices as they come', async () => {
    const { handler, handle } = await mounted()
    const controller = new AbortController()
    const response = await within(handle(new Request('http://app.example/api/flags/holdfast/v1/stream', { signal: controller.signal })), 2000)
    // Before: the Response was built only when the stream ended, i.e. never: the route hung.
    expect(response).not.toBe('no answer')
    const stream = response as Response
    expect(stream.status).toBe(200)
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = stream.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read()
        if (done) break
        text += decoder.decode(value, { stream: true })
      }
      return text
    }
    expect(await readUntil(/retry: \d+/)).toMatch(/retry: \d+/)
    handler.setFlags(edited(1))
    expect(await readUntil(/refetchEvaluation/)).toMatch(/data: \{"type":"refetchEvaluation","etag":"[^"]+"/)
    // The client goes away (the runtime cancels the body): the hub lets the stream go.
    await reader.cancel()
    await waitFor(() => handler.stream!.connections() === 0, 2000)
    expect(handler.stream!.connections()).toBe(0)
  })

  it('lets go of a stream whose request was aborted (the browser tab closed)', async () => {
    const { handler, handle } = await mounted()
    const controller = new AbortController()
    const response = await within(handle(new Request('http://app.example/api/flags/holdfast/v1/stream', { signal: controller.signal })), 2000)
    expect(response).not.toBe('no answer')
    expect(handler.stream!.connections()).toBe(1)
    controller.abort()
    await waitFor(() => handler.stream!.connections() === 0, 2000)
    expect(handler.stream!.connections()).toBe(0)
  })

  it('cuts a stream whose client never reads once what waits for it passes the bound, instead of keeping every notice in memory', async () => {
    const { handler, handle } = await mounted()
    const response = await within(handle(new Request('http://app.example/api/flags/holdfast/v1/stream')), 2000)
    expect(response).not.toBe('no answer')
    // About 100 bytes a notice: 1,000 changes are well past the 64 KiB a stream may have waiting.
    for (let n = 0; n < 1000 && handler.stream!.connections() > 0; n++) handler.setFlags(edited(n))
    expect(handler.stream!.connections()).toBe(0)
  })
})
