// Shared by the server tests: start servers that are always closed, talk HTTP, make temp dirs.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type RequestListener, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { afterEach } from 'vitest'
import { createFlagServer, type FlagServer, type FlagServerOptions, type FlagdDefinitions, type ServerLogger } from '@holdfast/server'

const open: FlagServer[] = []
const dirs: string[] = []
const sockets: Socket[] = []
const hosts: Server[] = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(hosts.splice(0).map((host) => new Promise<void>((done) => (host.closeAllConnections(), host.close(() => done())))))
  await Promise.all(open.splice(0).map((server) => server.close()))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

/** A logger that records what it was told, so tests can assert the server said why. */
export function recordingLogger(): ServerLogger & { lines: string[] } {
  const lines: string[] = []
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) }
}

/** Starts a server on 127.0.0.1 with a free port; it is closed after the test. */
export async function startServer(options: Partial<FlagServerOptions> = {}): Promise<FlagServer> {
  // Load shedding off unless a test asks for it: on a busy shared CI machine a slow tick must not
  // turn an unrelated assertion into a 503.
  const server = await createFlagServer({ flags: DEMO_FLAGS, port: 0, logger: recordingLogger(), maxEventLoopDelayMs: 0, ...options })
  open.push(server)
  return server
}

/** A plain `node:http` server for `listener` (a host the handler is mounted in) on 127.0.0.1; its URL. Closed after the test. */
export async function hostOnLoopback(listener: RequestListener): Promise<string> {
  const host = createServer(listener)
  await new Promise<void>((done) => host.listen(0, '127.0.0.1', done))
  hosts.push(host)
  return `http://127.0.0.1:${(host.address() as AddressInfo).port}`
}

/** A fresh temporary directory, removed after the test. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-server-'))
  dirs.push(dir)
  return dir
}

/** POSTs JSON (or a raw string) and returns the response. */
export function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

/** POSTs an OFREP bulk evaluation for `context`. */
export function evaluate(server: FlagServer, context: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return post(`${server.url}/ofrep/v1/evaluate/flags`, { context }, headers)
}

/** The flag entries of a bulk response, by key. */
export async function flagsByKey(response: Response): Promise<Record<string, Record<string, unknown>>> {
  const body = (await response.json()) as { flags: Array<Record<string, unknown>> }
  return Object.fromEntries(body.flags.map((entry) => [entry.key as string, entry]))
}

export { timed, watchFreezes } from '../support/freezes'

/** Polls `check` until it returns true or `timeoutMs` passes; returns how long it took. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 25): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started
    await new Promise((r) => setTimeout(r, stepMs))
  }
  throw new Error(`condition not met within ${timeoutMs} ms`)
}

/** A small flag set covering each value type, targeting, a rollout and a disabled flag. */
export const DEMO_FLAGS: FlagdDefinitions = {
  metadata: { flagSetId: 'test' },
  flags: {
    'kill-switch': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off' },
    banner: {
      state: 'ENABLED',
      variants: { plain: { text: 'Hello', color: 'blue' }, loud: { text: 'SALE', color: 'red' } },
      defaultVariant: 'plain',
    },
    rollout: {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { fractional: [['on', 50], ['off', 50]] },
    },
    beta: {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: {
        if: [{ or: [{ ends_with: [{ var: 'email' }, '@example.com'] }, { '==': [{ var: 'plan' }, 'pro'] }] }, 'on', 'off'],
      },
      metadata: { owner: 'growth' },
    },
    greeting: { state: 'ENABLED', variants: { hi: 'Hi', hello: 'Hello' }, defaultVariant: 'hi' },
    limit: { state: 'ENABLED', variants: { low: 5, high: 50 }, defaultVariant: 'low' },
    retired: { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'on' },
  },
}

/** `n` flags, each with a targeting rule on `plan` and a 50/50 rollout, like a real flag set. */
export function manyFlags(n: number): FlagdDefinitions {
  const flags: FlagdDefinitions['flags'] = {}
  for (let i = 0; i < n; i++) {
    flags[`flag-${i}`] = {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { if: [{ '==': [{ var: 'plan' }, 'pro'] }, 'on', { fractional: [['on', 50], ['off', 50]] }] },
      metadata: { team: `team-${i % 7}` },
    }
  }
  return { flags }
}

/** Sends raw bytes on a new TCP connection; resolves with the socket and a reader of what came back. */
export async function rawConnection(url: string): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  let received = ''
  socket.on('data', (chunk) => (received += chunk.toString('latin1')))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  sockets.push(socket)
  return { socket, received: () => received, closed }
}
