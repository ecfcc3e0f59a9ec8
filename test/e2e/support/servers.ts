// Servers the browser talks to, all on 127.0.0.1 with ports picked at run time: the reference
// flag server (with its demo outage controls), a static file server for built pages, and a
// recording proxy that shows every event request exactly as the browser sent it.
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize, sep } from 'node:path'
import { createFlagServer, silentLogger, type FlagServer, type OutageMode } from '@holdfast/server'

export const HOST = '127.0.0.1'

export interface TestFlagServer {
  server: FlagServer
  url: string
  eventsFile: string
  /** Sets the simulated outage of the flags endpoint, through the HTTP control as the demo does. */
  setOutage(mode: OutageMode): Promise<void>
  /** The events file, parsed: every event the server accepted (and de-duplicated by id). */
  readEvents(): Promise<Array<Record<string, unknown>>>
  close(): Promise<void>
}

/** Starts the reference flag server with demo controls and an events file in a fresh temp dir. */
export async function startFlagServer(flags: string | object): Promise<TestFlagServer> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-e2e-'))
  const eventsFile = join(dir, 'events.jsonl')
  const server = await createFlagServer({
    flags: flags as never,
    port: 0,
    host: HOST,
    eventsFile,
    demoControls: true,
    logger: silentLogger,
    // The server runs inside the test process, beside Playwright and the page builds: a slow tick
    // there is the test machine's load, not the server's, and must not be shed as if it were.
    maxEventLoopDelayMs: 0,
  })
  return {
    server,
    url: server.url,
    eventsFile,
    async setOutage(mode) {
      const res = await fetch(`${server.url}/demo/outage`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ mode }),
      })
      if (!res.ok) throw new Error(`POST /demo/outage {mode: ${mode}} answered ${res.status}: ${await res.text()}`)
    },
    async readEvents() {
      let text = ''
      try {
        text = await readFile(eventsFile, 'utf8')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      }
      // Only whole lines: the sink may be writing one while this reads, and a line cut mid-write
      // is not an event yet (it failed a CI run as invalid JSON).
      return text
        .slice(0, text.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    },
    async close() {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface Closable {
  url: string
  close(): Promise<void>
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
}

/** Serves a built directory; `/` and unknown paths without an extension get index.html. */
export async function serveStatic(root: string): Promise<Closable> {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    let file = normalize(join(root, path))
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end()
      return
    }
    if (path.endsWith('/') || extname(path) === '') file = join(root, 'index.html')
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' })
      res.end(body)
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found')
    }
  })
  return listen(server)
}

/** One request through the recording proxy, with the JSON it carried and what came back. */
export interface ProxiedRequest {
  method: string
  path: string
  at: number
  body: unknown
  status: number
  response: unknown
}

export interface RecordingProxy extends Closable {
  requests: ProxiedRequest[]
  /** Holds every request this long before forwarding it (a slow receiver); 0 by default. */
  delayMs: number
}

/**
 * Forwards everything to `target` and records each request's parsed body and the answer. Events
 * go through it so a test can count what the browser actually sent, before the receiver's
 * de-duplication hides a double send.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = []
  const to = new URL(target)
  const server = createServer(async (req, res) => {
    const at = Date.now()
    const body = await readAll(req)
    if (proxy.delayMs > 0 && req.method !== 'OPTIONS') await new Promise((r) => setTimeout(r, proxy.delayMs))
    const upstream = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } },
      async (answer) => {
        const answerBody = await readAll(answer)
        if (req.method !== 'OPTIONS') {
          requests.push({ method: req.method ?? '', path: req.url ?? '', at, body: parse(body), status: answer.statusCode ?? 0, response: parse(answerBody) })
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        res.end(answerBody)
      },
    )
    upstream.on('error', () => res.writeHead(502).end())
    upstream.end(body)
  })
  const proxy: RecordingProxy = { url: '', close: async () => {}, requests, delayMs: 0 }
  return Object.assign(proxy, await listen(server))
}

function parse(buffer: Buffer): unknown {
  try {
    return JSON.parse(buffer.toString('utf8'))
  } catch {
    return buffer.toString('utf8')
  }
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
  })
}

function listen(server: Server): Promise<Closable> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://${HOST}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}

/** A free TCP port on 127.0.0.1, for servers (like `next start`) that must be told one. */
export async function freePort(): Promise<number> {
  const server = createServer()
  const { url, close } = await listen(server)
  await close()
  return Number(new URL(url).port)
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; then throws `message`. */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, message: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
