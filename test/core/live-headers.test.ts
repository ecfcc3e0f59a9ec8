// Live updates read the client's `headers` option too: a static object names the stream, the tabs'
// channel and the stream remembered for a 304 (its JSON, hashed); the stream connection sends it. A
// headers object whose getter throws (a token read after logout, a revoked Proxy) must never throw
// into the app: not out of a public call, and not as an unhandled rejection (which ends a Node
// program). Against the streaming OFREP fake on 127.0.0.1.
import { afterEach, expect, it, vi } from 'vitest'
import { liveClient, pollUntil, startStreamingOfrep } from '../support/streamingOfrep'

// The stream reconnects after a 2–4 s backoff: real seconds on a loaded machine.
vi.setConfig({ testTimeout: 60_000 })

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

it('a headers getter that throws once the first answer came (logged out meanwhile) throws nothing, and the stream opens once it reads again', async () => {
  const rejections: unknown[] = []
  const onRejection = (reason: unknown) => void rejections.push(reason)
  process.on('unhandledRejection', onRejection)
  cleanup.push(() => process.off('unhandledRejection', onRejection))
  const server = await startStreamingOfrep()
  cleanup.push(() => server.close())

  let session: string | undefined = 'token-1'
  let thrown = 0
  let answers = 0
  const headers = {
    get Authorization(): string {
      if (session === undefined) {
        thrown++
        throw new Error('no session')
      }
      return `Bearer ${session}`
    },
  }
  const c = liveClient(server.url, 'live-headers', cleanup, {
    headers,
    // The session ends while the first answer is on its way back: the live chunk loads after it.
    fetch: async (input, init) => {
      const response = await globalThis.fetch(input, init)
      if (++answers === 1) session = undefined
      return response
    },
  })
  const status = await c.start()
  expect(status.state).toBe('ready')
  // The live code read the headers (and they threw) before the user logs in again.
  await pollUntil(() => thrown > 0, 15_000, 'live updates to read the headers')
  await new Promise((r) => setTimeout(r, 100))
  // Before: the live chunk's start threw (the headers' JSON names the stream): an unhandled
  // rejection, and the loader stayed "loading" for the client's life, so no stream ever opened.
  expect(rejections).toEqual([])
  expect(c.getStatus().state).toBe('ready')
  session = 'token-2'
  await pollUntil(() => server.open.length > 0, 15_000, 'the stream to open once the headers read again')
  expect(server.streamHeaders.at(-1)?.authorization).toBe('Bearer token-2')
  expect(rejections).toEqual([])
  // And it works: a notice is a refetch.
  const before = server.bulk.length
  server.send('data: {"type":"refetchEvaluation"}\n\n')
  await pollUntil(() => server.bulk.length > before, 10_000, 'the refetch of the notice')
})
