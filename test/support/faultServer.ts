// A real OFREP server on 127.0.0.1 that each test scripts: any status, headers, body, a delay,
// a dropped connection or a hang. Replies queued with `next()` are used once, in order; after
// them `always()` answers. Every request is recorded so tests can assert what the client sent.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type Reply =
  /** `after`: sent only once that promise settles (a test's gate: an answer held until the test says). */
  | { status?: number; body?: unknown; raw?: string; headers?: Record<string, string>; delayMs?: number; after?: Promise<unknown> }
  | 'reset'
  | 'hang'
  /** 200 JSON headers at once, then a valid flags body one byte every 100 ms (about 4 s in all). */
  | 'drip'
  /** Decided per request (e.g. a 304 only when `If-None-Match` names the current snapshot). */
  | ((request: RecordedRequest) => Reply)

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: any
  /** The client gave up on it (aborted, timed out) before it was answered. */
  abandoned: boolean
  /** Its answer was written out in full (handed to the socket). */
  answered: boolean
}

export interface FaultServer {
  url: string
  requests: RecordedRequest[]
  /** Queue one-off replies, used in order before the standing one. */
  next(...replies: Reply[]): void
  /** The standing reply. */
  always(reply: Reply): void
  /** Resolves when `count` requests have arrived in total. */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

type HttpReply = Exclude<Reply, 'reset' | 'hang' | 'drip' | ((request: RecordedRequest) => Reply)>

/** The standard 200: `{flags: [...]}` as JSON with an ETag. */
export function flags(entries: unknown[], etag?: string): HttpReply {
  return { status: 200, body: { flags: entries }, headers: etag ? { ETag: etag } : {} }
}

/** The same reply held until `release()` is called (an answer kept out while the test acts): `[reply, release]`. */
export function held(reply: HttpReply): [HttpReply, () => void] {
  let release = () => {}
  const after = new Promise<void>((r) => (release = r))
  return [{ ...reply, after }, () => release()]
}

/** The same reply, sent after `ms`. */
export function delayed(reply: HttpReply, ms: number): HttpReply {
  return { ...reply, delayMs: ms }
}

export async function createFaultServer(initial: Reply = flags([])): Promise<FaultServer> {
  const queue: Reply[] = []
  let standing = initial
  const requests: RecordedRequest[] = []
  const sockets = new Set<Socket>()
  const hanging = new Set<ServerResponse>()
  const waiters: { count: number; resolve: () => void }[] = []

  const server = createServer((req, res) => {
    let text = ''
    req.on('data', (chunk) => (text += chunk))
    req.on('end', () => {
      let body: unknown = text
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {}
      const record: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, abandoned: false, answered: false }
      requests.push(record)
      res.on('finish', () => void (record.answered = true))
      res.on('close', () => {
        if (!res.writableFinished) record.abandoned = true
      })
      for (const w of waiters.filter((w) => requests.length >= w.count)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
      let reply = queue.length > 0 ? queue.shift()! : standing
      while (typeof reply === 'function') reply = reply(record)
      send(reply, res)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  function send(reply: Exclude<Reply, (request: RecordedRequest) => Reply>, res: ServerResponse) {
    if (reply === 'reset') return void res.socket?.destroy()
    if (reply === 'hang') return void hanging.add(res)
    if (reply === 'drip') return drip(res, JSON.stringify({ flags: [{ key: 'kill', value: false, variant: 'dripped' }] }))
    const write = () => {
      if (res.destroyed) return
      const raw = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body))
      const headers: Record<string, string> = { ...reply.headers }
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type') && reply.raw === undefined && reply.body !== undefined)
        headers['Content-Type'] = 'application/json'
      res.writeHead(reply.status ?? 200, headers)
      res.end(raw)
    }
    const go = () => (reply.delayMs ? void setTimeout(write, reply.delayMs) : write())
    if (reply.after) void reply.after.then(go, go)
    else go()
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    next: (...replies) => void queue.push(...replies),
    always: (reply) => void (standing = reply),
    // 10 s: under the 20 s test timeout of the core/server projects (vitest.config.ts), so a request
    // that never comes fails with "expected N requests, got M", not a bare test timeout.
    waitForRequests(count, timeoutMs = 10_000) {
      if (requests.length >= count) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${count} requests, got ${requests.length}`)), timeoutMs)
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) })
      })
    },
    close() {
      for (const res of hanging) res.destroy()
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Answers 200 JSON with `body` sent one character every 100 ms (headers at once): a slow-drip server. */
export function drip(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'Content-Type': 'application/json' })
  let sent = 0
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer)
    res.write(body[sent++])
    if (sent === body.length) (clearInterval(timer), res.end())
  }, 100)
  res.on('close', () => clearInterval(timer))
}
