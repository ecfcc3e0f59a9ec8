// A small OFREP server on 127.0.0.1 for live-updates tests: bulk answers (one flag, ETag "v1")
// advertising `streams(itsOwnUrl)`, an SSE route at /stream… that records each request's headers
// and holds the stream open, and /redirect?to=URL (a 307 there). CORS is open, so it serves jsdom as well as Node.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createClient, type ClientOptions, type FlagClient } from '@holdfast/core'
import { createManualClock, createTestLogger, uniqueStorageName } from './clock'

export interface StreamingOfrep {
  url: string
  /** Headers of each request to the stream route. */
  streamHeaders: IncomingHttpHeaders[]
  /** When each bulk request came (Date.now()). */
  bulk: number[]
  /** The open stream responses. */
  open: ServerResponse[]
  /** Writes `text` to the latest stream. */
  send(text: string): void
  close(): Promise<void>
}

/** Starts the server; `notModified` answers a matching `If-None-Match` with 304 (default true). */
export async function startStreamingOfrep(
  streams: (self: string) => unknown[] = () => [{ type: 'sse', endpoint: { requestUri: '/stream' } }],
  { notModified = true } = {},
): Promise<StreamingOfrep> {
  const open: ServerResponse[] = []
  const streamHeaders: IncomingHttpHeaders[] = []
  const bulk: number[] = []
  let url = ''
  const server: Server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Allow-Headers', '*')
    if (req.method === 'OPTIONS') return void res.writeHead(204).end()
    if (req.url?.startsWith('/ofrep/v1/evaluate/flags')) {
      bulk.push(Date.now())
      req.resume()
      req.on('end', () => {
        if (notModified && req.headers['if-none-match'] === '"v1"') return void res.writeHead(304, { ETag: '"v1"' }).end()
        res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"v1"' })
        res.end(JSON.stringify({ flags: [{ key: 'kill-switch', value: false, reason: 'STATIC' }], eventStreams: streams(url) }))
      })
      return
    }
    if (req.url?.startsWith('/stream')) {
      streamHeaders.push(req.headers)
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('retry: 100\n\n')
      open.push(res)
      return
    }
    if (req.url?.startsWith('/redirect?to=')) return void res.writeHead(307, { Location: decodeURIComponent(req.url.slice(13)) }).end()
    res.writeHead(404).end()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    streamHeaders,
    bulk,
    open,
    send: (text) => void open.at(-1)?.write(text),
    close: () =>
      new Promise<void>((done) => {
        for (const s of open) s.destroy()
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}

/** Polls `check` every 20 ms until it holds; resolves with the milliseconds it took, or throws after `timeoutMs`. */
export async function pollUntil(check: () => boolean, timeoutMs: number, what = 'condition'): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return Date.now() - started
}

/** A client with live updates on, in memory, not polling; `cleanup` gets its close(). */
export function liveClient(url: string, label: string, cleanup: Array<() => unknown>, options: Partial<ClientOptions> = {}): FlagClient {
  const client = createClient({
    url,
    context: { targetingKey: 'user-1' },
    storage: 'memory',
    storageName: uniqueStorageName(label),
    logger: createTestLogger(),
    refreshIntervalMs: 0,
    liveUpdates: true,
    ...options,
  })
  cleanup.push(() => client.close())
  return client
}

/**
 * A tab that shares answers with the other tabs of the origin (`liveUpdates.shareTabs`), on a manual
 * clock whose timers fire only when the test says (no polls, no stream reconnects, no request
 * timeouts), no refetch on focus; `shown` records `banner` at each change.
 */
export function sharingTab(url: string, label: string, cleanup: Array<() => unknown>, options: Partial<ClientOptions> = {}): { client: FlagClient; shown: string[] } {
  const client = liveClient(url, label, cleanup, { clock: createManualClock(), refreshOnFocus: false, liveUpdates: { shareTabs: true }, ...options })
  const shown: string[] = []
  client.subscribeFlag('banner', () => shown.push(client.getValue<string>('banner', 'none')))
  return { client, shown }
}
