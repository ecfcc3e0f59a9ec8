// A real events receiver (CONTRACT §2.2) on 127.0.0.1 that tests can make misbehave: a failure
// rate drawn from a seeded random (500s, reset connections, 429 with Retry-After 0 or 1), 413 above
// N events, 400 for a batch holding a poison event, delays, or plain "down". It de-duplicates by
// `id` like the reference server, and records every request, so tests can count how often an id
// arrived, not only which ids did. It also answers OFREP flag requests, from `setFlags`. Events are
// taken at `/events` only: any other path is a wrong URL and gets 404 (recorded too).
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type Failure = '500' | 'reset' | '429-0' | '429-1'

export interface ReceiverBehaviour {
  /** Share of events requests that fail, drawn from a random seeded by `seed`. Default 0. */
  failureRate?: number
  /** Which failures to draw from. Default all four. */
  failures?: Failure[]
  seed?: number
  /** 413 for a batch with more than this many events. */
  maxEvents?: number
  /** 413 for any batch holding an event of this name, even alone. */
  tooLargeName?: string
  /** 400 for any batch holding an event of this name. */
  poisonName?: string
  /** The status answered for `poisonName` (400 or 422). Default 400. */
  poisonStatus?: number
  /** Wait this long before answering events requests. */
  delayMs?: number
  /** Answer every events request with 503. */
  down?: boolean
  /** Answer every events request with this status (and `Retry-After` when given). */
  status?: number
  retryAfter?: string
  /** Extra headers on every events answer (e.g. a `Date` of the server's own). */
  headers?: Record<string, string>
  /** The success status (any 2xx accepts the whole batch, CONTRACT §2.2). Default 202 with a JSON body; 204 has none. */
  okStatus?: number
}

export interface ReceivedRequest {
  /** The path asked for (with the query). */
  path: string
  ids: string[]
  names: string[]
  /** What the receiver answered: a status, or 'reset'. */
  outcome: number | 'reset'
  headers: IncomingHttpHeaders
  bytes: number
}

export interface EventsReceiver {
  /** The events endpoint. */
  url: string
  /** The OFREP base URL (flags). */
  flagsUrl: string
  /** Every events request, in arrival order. */
  requests: ReceivedRequest[]
  /** Accepted events, de-duplicated by id, in order of first acceptance. */
  events(): Record<string, unknown>[]
  /** How many 2xx requests carried each id (1 everywhere means no duplicate was accepted). */
  acceptedTimes(): Map<string, number>
  /** How many requests of any outcome carried each id. */
  receivedTimes(): Map<string, number>
  set(behaviour: ReceiverBehaviour): void
  setFlags(entries: unknown[]): void
  close(): Promise<void>
}

export async function startEventsReceiver(initial: ReceiverBehaviour = {}): Promise<EventsReceiver> {
  let behaviour = initial
  let random = seeded(initial.seed ?? 1)
  let flagEntries: unknown[] = []
  const requests: ReceivedRequest[] = []
  const accepted = new Map<string, Record<string, unknown>>()
  const sockets = new Set<Socket>()

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      if (req.url?.startsWith('/ofrep/')) {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        return void res.end(JSON.stringify({ flags: flagEntries }))
      }
      let events: Record<string, unknown>[] = []
      try {
        events = (JSON.parse(text) as { events: Record<string, unknown>[] }).events
      } catch {
        res.writeHead(400)
        return void res.end('not JSON')
      }
      const record: ReceivedRequest = {
        path: req.url ?? '',
        ids: events.map((e) => String(e.id)),
        names: events.map((e) => String(e.name)),
        outcome: 202,
        headers: req.headers,
        bytes: Buffer.byteLength(text),
      }
      requests.push(record)
      const answer = (status: number, headers: Record<string, string> = {}, body = '') => {
        record.outcome = status
        res.writeHead(status, { ...behaviour.headers, ...headers })
        res.end(body)
      }
      const decide = () => {
        const b = behaviour
        if (new URL(req.url ?? '/', 'http://x').pathname !== '/events') return answer(404, {}, 'no such endpoint')
        if (b.status) return answer(b.status, b.retryAfter === undefined ? {} : { 'Retry-After': b.retryAfter }, `status ${b.status}`)
        if (b.down) return answer(503)
        if (b.failureRate && random() < b.failureRate) {
          const kinds = b.failures ?? ['500', 'reset', '429-0', '429-1']
          const kind = kinds[Math.floor(random() * kinds.length)]
          if (kind === 'reset') {
            record.outcome = 'reset'
            return void req.socket.destroy()
          }
          if (kind === '500') return answer(500)
          return answer(429, { 'Retry-After': kind === '429-0' ? '0' : '1' })
        }
        if (b.maxEvents !== undefined && events.length > b.maxEvents) return answer(413)
        if (b.tooLargeName && record.names.includes(b.tooLargeName)) return answer(413)
        if (b.poisonName && record.names.includes(b.poisonName)) return answer(b.poisonStatus ?? 400, {}, '{"error":"poison"}')
        let duplicates = 0
        for (const event of events) {
          if (accepted.has(String(event.id))) duplicates++
          else accepted.set(String(event.id), event)
        }
        const ok = b.okStatus ?? 202
        if (ok === 204) return answer(204)
        answer(ok, { 'Content-Type': 'application/json' }, JSON.stringify({ accepted: events.length - duplicates, duplicates }))
      }
      if (behaviour.delayMs) setTimeout(decide, behaviour.delayMs)
      else decide()
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const times = (list: ReceivedRequest[]) => {
    const counts = new Map<string, number>()
    for (const r of list) for (const id of r.ids) counts.set(id, (counts.get(id) ?? 0) + 1)
    return counts
  }

  return {
    url: `${base}/events`,
    flagsUrl: base,
    requests,
    events: () => [...accepted.values()],
    acceptedTimes: () => times(requests.filter((r) => typeof r.outcome === 'number' && r.outcome < 300)),
    receivedTimes: () => times(requests),
    set(next) {
      behaviour = next
      random = seeded(next.seed ?? 1)
    },
    setFlags(entries) {
      flagEntries = entries
    },
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed exactly. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Polls `check` until it holds or `timeoutMs` passes (then throws with `what`). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
