// CONTRACT §3: close() stops timers and listeners. In Node (server rendering, a CLI, a test
// runner) that means the program ends by itself once close() resolved: nothing of the client holds
// the event loop. Each test runs clients in a child process (fixtures/closeExit.ts) with every
// timer the client starts under way, closes them, and measures how long the process lives on.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, test } from 'vitest'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { fakeEnvironment } from '../support/environment'
import { createClient, type ClientOptions } from '@holdfast/core'
import { startStreamingOfrep, type StreamingOfrep } from '../support/streamingOfrep'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

/**
 * How long the child may live on after close() resolved. The hangs these tests catch last a whole
 * backoff (20 s here: the failed chunk's retry timer held the process that long); a clean exit takes
 * well under a second on an idle machine, but its own teardown (tsx, sockets closing) runs on cores
 * shared with other test runs. 3 s was the tightest bound in test/core for a loaded machine to meet;
 * 8 s catches a 20 s hang just as surely.
 */
const EXIT_BOUND_MS = 8000
/** The child is killed this long after close(): past the bound, well before the 20 s backoff ends by itself. */
const KILL_AFTER_MS = 15_000

/** Runs closeExit.ts; resolves with what it printed and how long it lived after `closed`. */
function run(args: string[], servers: Record<string, unknown>) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args, fileURLToPath(new URL('./fixtures/closeExit.ts', import.meta.url)), JSON.stringify(servers)], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  let closedAt: number | undefined
  const onData = (chunk: Buffer) => {
    output += chunk
    if (closedAt === undefined && /^closed /m.test(output)) closedAt = Date.now()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  // KILL_AFTER_MS after close() at most: the failed chunk's backoff (20 s) held the process on main.
  const killer = setInterval(() => closedAt !== undefined && Date.now() - closedAt > KILL_AFTER_MS && child.kill('SIGKILL'), 100)
  cleanup.push(() => (clearInterval(killer), child.exitCode === null && child.kill('SIGKILL')))
  return new Promise<{ output: string; ready: Record<string, { state: string; events: Record<string, unknown> }>; livedMs: number }>((resolve, reject) =>
    child.on('exit', () => {
      clearInterval(killer)
      const ready = output.match(/^ready (.*)$/m)
      if (closedAt === undefined || !ready) return reject(new Error(`the child never closed its clients:\n${output}`))
      resolve({ output, ready: JSON.parse(ready[1]!), livedMs: Date.now() - closedAt })
    }),
  )
}

async function servers() {
  const flagServer = await createFaultServer(flags([{ key: 'a', value: true }]))
  const down = await createFaultServer({ status: 503 })
  const hang = await createFaultServer('hang')
  const events = await startEventsReceiver()
  const eventsDown = await startEventsReceiver({ down: true })
  const live: StreamingOfrep = await startStreamingOfrep()
  const liveBroken: StreamingOfrep = await startStreamingOfrep(() => [{ type: 'sse', endpoint: { requestUri: '/missing' } }])
  for (const s of [flagServer, down, hang, events, eventsDown, live, liveBroken] as Array<FaultServer | EventsReceiver | StreamingOfrep>) cleanup.push(() => s.close())
  return { live, eventsDown, urls: { flags: flagServer.url, down: down.url, hang: hang.url, events: events.url, eventsDown: eventsDown.url, live: live.url, liveBroken: liveBroken.url } }
}

test('close() while the event delivery chunk waits out its backoff after failing to load: the Node process ends at once, not after the backoff', { timeout: 60_000 }, async () => {
  const result = await run(['--import', './test/core/fixtures/noDeliveryChunk.mjs'], { mode: 'chunk', ...(await servers()).urls })
  expect(result.ready.chunk!.events).toMatchObject({ queued: 1, lastError: { message: expect.stringContaining('loading event delivery failed') } })
  // Before: the retry timer of the chunk load lived on, and the process with it, for the whole backoff.
  expect(result.livedMs, result.output).toBeLessThan(EXIT_BOUND_MS)
})

test('close() with polling, flag and event backoff, the flush interval, a live stream, a failed stream and a request out: the Node process ends at once', { timeout: 60_000 }, async () => {
  const { live, urls } = await servers()
  const result = await run([], { mode: 'all', ...urls })
  expect(live.streamHeaders.length).toBeGreaterThan(0) // the stream was open when close() ran
  // Each client really got where its timers run (nothing here passes for lack of a timer).
  expect(result.ready.live).toMatchObject({ state: 'ready', events: { queued: 1, sent: 0 } })
  expect(result.ready.live!.events.retries).toBeGreaterThan(0)
  expect(result.ready.backoff).toMatchObject({ state: 'error', events: { sent: 1 } })
  expect(result.ready.fallback!.state).toBe('ready')
  expect(result.ready.hung!.state).toBe('loading')
  expect(result.livedMs, result.output).toBeLessThan(EXIT_BOUND_MS)
})

// The same in one process, on a clock and a page environment the test holds: after close() no
// timer is pending on the client's clock and no page listener (focus, visibility, online,
// pagehide, freeze) is attached, for every part of the client.
test('after close() no timer is pending on the client’s clock and no page listener is attached, whatever was under way', async () => {
  const { live, eventsDown, urls } = await servers()
  const clock = createManualClock()
  const environment = fakeEnvironment()
  const make = (options: Partial<ClientOptions>) =>
    createClient({ url: urls.flags, context: { targetingKey: 'u' }, storage: 'memory', storageName: uniqueStorageName('close'), clock, environment, liveUpdates: false, logger: createTestLogger(), ...options })
  const clients = {
    live: make({ url: urls.live, refreshIntervalMs: 1000, liveUpdates: true, events: { url: urls.eventsDown, flushIntervalMs: 1000 } }),
    backoff: make({ url: urls.down, events: { url: urls.events, flushIntervalMs: 1000 } }),
    fallback: make({ url: urls.liveBroken, liveUpdates: true }),
    hung: make({ url: urls.hang }),
  }
  cleanup.push(() => Promise.all(Object.values(clients).map((c) => c.close())))
  await Promise.all([clients.live.start(), clients.backoff.start(), clients.fallback.start()])
  void clients.hung.start()
  clients.live.logEvent('kept')
  await clients.live.flush()
  await until(() => eventsDown.requests.length > 0 && clients.live.getEventStats().lastError !== undefined, 'a failed events send')
  await until(() => live.open.length > 0, 'the stream open')
  expect(clients.backoff.getStatus().state).toBe('error')
  expect(environment.listeners()).toBeGreaterThan(0)
  expect(clock.pending().length).toBeGreaterThan(0)

  await Promise.all(Object.values(clients).map((c) => c.close()))
  expect(clock.pending()).toEqual([])
  expect(environment.listeners()).toBe(0)
})
