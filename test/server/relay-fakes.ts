// A fake upstream for the relay tests: a real HTTP server on 127.0.0.1 that each test scripts
// (documents with ETag/304, statuses, HTML, `{}`, hangs, connection resets), recording every
// request it gets. Closed after each test.
import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach } from 'vitest'
import { createUpstreamSource, createUrlSource, type RelaySource, type UpstreamSourceOptions, type UrlSourceOptions } from '@holdfast/server'
import { drip } from '../support/faultServer'
import { recordingLogger } from './helpers'

/** What the fake answers; a function decides per request. */
export type Behaviour =
  /** A flagd document (for --flags-url) or any JSON, with a content ETag and If-None-Match → 304. */
  | { document: unknown; etag?: boolean }
  /** OFREP bulk answers computed per context, with a content ETag and If-None-Match → 304. */
  | { ofrep: (context: Record<string, unknown>) => unknown }
  | { status: number; json?: unknown; text?: string; contentType?: string; headers?: Record<string, string> }
  | 'hang'
  | 'reset'
  /** 200 JSON headers at once, then a valid body (a flagd document or an OFREP answer) one byte every 100 ms. */
  | 'drip'
  /** `then`, after `delayMs`. */
  | { delayMs: number; then: Behaviour }

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: string
}

export interface FakeUpstream {
  url: string
  requests: RecordedRequest[]
  set(behaviour: Behaviour | ((request: RecordedRequest) => Behaviour)): void
  close(): Promise<void>
}

const open: Server[] = []
afterEach(async () => {
  await Promise.all(
    open.splice(0).map(
      (server) =>
        new Promise<void>((done) => {
          server.close(() => done())
          server.closeAllConnections()
        }),
    ),
  )
})

/** Starts a fake upstream answering `initial`. */
export async function startUpstream(initial: Behaviour | ((request: RecordedRequest) => Behaviour)): Promise<FakeUpstream> {
  let behave: (request: RecordedRequest) => Behaviour = typeof initial === 'function' ? initial : () => initial
  const requests: RecordedRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      requests.push(request)
      answer(res, behave(request), request)
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  open.push(server)
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    set(next) {
      behave = typeof next === 'function' ? next : () => next
    },
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      }),
  }
}

function answer(res: ServerResponse, behaviour: Behaviour, request: RecordedRequest): void {
  if (behaviour === 'hang') return
  if (typeof behaviour === 'object' && 'delayMs' in behaviour) {
    setTimeout(() => answer(res, behaviour.then, request), behaviour.delayMs)
    return
  }
  if (behaviour === 'reset') {
    res.socket?.destroy()
    return
  }
  if (behaviour === 'drip') return drip(res, JSON.stringify(request.method === 'POST' ? { flags: [{ key: 'f0', value: false }] } : booleanFlags(10, 'off')))
  if ('document' in behaviour || 'ofrep' in behaviour) {
    let body: string
    if ('document' in behaviour) body = JSON.stringify(behaviour.document)
    else {
      const context = (JSON.parse(request.body || '{}') as { context?: Record<string, unknown> }).context ?? {}
      body = JSON.stringify(behaviour.ofrep(context))
    }
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`
    const useEtag = !('document' in behaviour) || behaviour.etag !== false
    if (useEtag && request.headers['if-none-match'] === etag) {
      res.writeHead(304, { ETag: etag })
      res.end()
      return
    }
    res.writeHead(200, { 'Content-Type': 'application/json', ...(useEtag ? { ETag: etag } : {}) })
    res.end(body)
    return
  }
  const text = behaviour.text ?? (behaviour.json === undefined ? '' : JSON.stringify(behaviour.json))
  const contentType = behaviour.contentType ?? (behaviour.json === undefined ? 'text/plain' : 'application/json')
  res.writeHead(behaviour.status, { 'Content-Type': contentType, ...behaviour.headers })
  res.end(text)
}

/** A flagd document of `count` boolean flags named f0…f{count-1}, all with `defaultVariant`. */
export function booleanFlags(count: number, defaultVariant: 'on' | 'off' = 'on', prefix = 'f'): { flags: Record<string, unknown> } {
  const flags: Record<string, unknown> = {}
  for (let i = 0; i < count; i++) flags[`${prefix}${i}`] = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant }
  return { flags }
}

/**
 * A `--flags-url` source on `upstream`'s /flags.json as the relay suites build one in process
 * (strict, shrink guard at 50%, 401 keeps what is held, 2 s timeout, polled every 0.2 s, a
 * recording logger); `options` adds to or overrides any of it (`now`, `store`, `share`, …).
 */
export function urlSourceFor(upstream: Pick<FakeUpstream, 'url'>, options: Partial<UrlSourceOptions> = {}): RelaySource {
  return createUrlSource({
    url: `${upstream.url}/flags.json`,
    pollIntervalMs: 200,
    maxShrinkPercent: 50,
    strict: true,
    onUnauthorized: { mode: 'keep' },
    timeoutMs: 2000,
    log: recordingLogger(),
    ...options,
  })
}

/**
 * A proxy-mode source (`--upstream`) in front of `upstream` with the relay tests' usual options
 * (shrink guard at 50%, 401 keeps what is held, 1 s timeout, a recording logger); `options` adds to
 * or overrides any of it (`now`, `store`, `share`, …). Not opened.
 */
export function proxySourceFor(upstream: Pick<FakeUpstream, 'url'>, options: Partial<UpstreamSourceOptions> = {}): RelaySource {
  return createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 1000, log: recordingLogger(), ...options })
}

/**
 * A relay's `fetch` whose answers the test can hold back: after `hold()`, each answer is read as the
 * upstream gave it at that moment and handed over only at `release()` (a slow answer, asked at a
 * known moment); `held()` counts the answers waiting or handed over since.
 */
export function holdingFetch() {
  let gate: Promise<void> | undefined
  let open = () => {}
  let held = 0
  const fetching = async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const response = await fetch(input, init)
    if (!gate) return response
    const text = await response.text()
    held++
    await gate
    return new Response(text, { status: response.status, headers: response.headers })
  }
  return {
    fetch: fetching as typeof fetch,
    hold: () => void (gate = new Promise((resolve) => (open = resolve))),
    release: () => {
      gate = undefined
      open()
    },
    held: () => held,
  }
}
