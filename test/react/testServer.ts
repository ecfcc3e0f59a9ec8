// Support for the React suite: a real OFREP flag server on 127.0.0.1 that each test controls
// (values per user, failures, hangs), collecting loggers, and per-test client options. Servers,
// clients and rendered trees are all torn down after each test.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cleanup } from './rtl'
import { afterEach } from 'vitest'
import type { ClientOptions, FlagClient, HoldfastEvent, JsonValue, Logger } from '@holdfast/core'

type Flags = Record<string, JsonValue>

/** How the server answers flag requests. */
export type Mode = 'ok' | 'error' | 'empty' | 'hang'

export interface TestServer {
  url: string
  /** The events route, for `events: { url }`. */
  eventsUrl: string
  /** Flag values for every user; `users` overrides them per targetingKey. */
  flags: Flags
  users: Record<string, Flags>
  /** `ok`: 200 with the flags; `error`: 500; `empty`: 200 `{}`; `hang`: never answers. */
  mode: Mode
  /** Whether answers name a variant (OFREP's is optional); default true. */
  variants: boolean
  /** Every flag request's targetingKey, in order. */
  requests: string[]
  /** The `Authorization` header of every flag request and every events request, in order ('' when absent). */
  authorization: { flags: string[]; events: string[] }
  /** Every event received on the events route. */
  events: HoldfastEvent[]
  /** Switches to `ok` and answers every request held by `hang`. */
  release(): void
  close(): Promise<void>
}

const servers: TestServer[] = []
const clients: FlagClient[] = []

afterEach(async () => {
  cleanup()
  await Promise.all(clients.splice(0).map((client) => client.close()))
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

/** A flag server on a free port, closed after the test. */
export async function startServer(flags: Flags = {}, users: Record<string, Flags> = {}): Promise<TestServer> {
  const state = { flags, users, mode: 'ok' as Mode, variants: true, requests: [] as string[], events: [] as HoldfastEvent[], authorization: { flags: [] as string[], events: [] as string[] } }
  const held: Array<() => void> = []
  const http = createServer((req, res) => void handle(req, res))

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const body = await readBody(req)
    if (req.method === 'POST' && req.url === '/ofrep/v1/evaluate/flags') {
      const targetingKey = String((JSON.parse(body) as { context: { targetingKey: string } }).context.targetingKey)
      state.requests.push(targetingKey)
      state.authorization.flags.push(req.headers.authorization ?? '')
      const answer = () => {
        if (state.mode === 'error') return send(res, 500, { errorCode: 'GENERAL', errorDetails: 'test outage' })
        if (state.mode === 'empty') return send(res, 200, {})
        const values = { ...state.flags, ...state.users[targetingKey] }
        const entries = Object.entries(values).map(([key, value]) => ({ key, value, variant: state.variants ? variantOf(value) : undefined, reason: 'STATIC' }))
        send(res, 200, { flags: entries })
      }
      // `hang` holds the request open until release() or the server closes.
      if (state.mode === 'hang') held.push(answer)
      else answer()
      return
    }
    if (req.method === 'POST' && req.url === '/events') {
      state.authorization.events.push(req.headers.authorization ?? '')
      state.events.push(...(JSON.parse(body) as { events: HoldfastEvent[] }).events)
      return send(res, 202, { accepted: 1 })
    }
    send(res, 404, {})
  }

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  const server: TestServer = Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    eventsUrl: `http://127.0.0.1:${port}/events`,
    release() {
      state.mode = 'ok'
      for (const answer of held.splice(0)) answer()
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections()
        http.close(() => resolve())
      }),
  })
  servers.push(server)
  return server
}

/** The variant the server reports for a value: its JSON, so equal values share a variant. */
export function variantOf(value: JsonValue): string {
  return JSON.stringify(value)
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    req.on('data', (chunk: Buffer) => (text += chunk.toString()))
    req.on('end', () => resolve(text))
  })
}

function send(res: ServerResponse, status: number, body: unknown) {
  if (res.destroyed) return // the client gave up (aborted) while the request was held
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(body))
}

/** A logger that keeps what it was told, so tests stay quiet and can assert on warnings. */
export function collectingLogger(): Logger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = []
  const errors: string[] = []
  return { warnings, errors, warn: (m) => void warnings.push(m), error: (m) => void errors.push(m) }
}

let counter = 0
/** A database name no other test (or test file) uses. */
export function uniqueStorageName(): string {
  return `holdfast-react-${process.pid}-${++counter}-${Math.random().toString(36).slice(2)}`
}

/** Client options for this test: its own database, a quiet logger, the test server. */
export function clientOptions(
  server: TestServer,
  overrides: Partial<ClientOptions> = {},
): ClientOptions & { logger: ReturnType<typeof collectingLogger> } {
  return {
    url: server.url,
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName(),
    logger: collectingLogger(),
    ...overrides,
  } as ClientOptions & { logger: ReturnType<typeof collectingLogger> }
}

/** Registers a client created by the test itself to be closed after it. */
export function track<T extends FlagClient>(client: T): T {
  clients.push(client)
  return client
}
