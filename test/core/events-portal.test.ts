// Answers that look like success but are not: a captive portal or an auth proxy in front of the
// events URL that redirects the POST to its login page (which answers 200 text/html), or answers
// the POST itself with its HTML page. Those events reached no sink: they must stay queued, the
// problem must be reported, and they must all arrive once the URL reaches the sink again. Plain
// 2xx sinks without a JSON body (204, 200 "ok") still count as delivered (CONTRACT §6). Against a
// real server on 127.0.0.1 that plays the portal and, when told, the sink.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createTestLogger, uniqueStorageName } from '../support/clock'

type Mode = 'sink' | '302' | '303' | '307' | '308' | 'html' | '204' | 'text-ok' | 'html-ok'

let mode: Mode = 'sink'
let stored: string[] = []
let loginPosts = 0
let base = ''
let server: ReturnType<typeof createServer>
const clients: FlagClient[] = []
const LOGIN = '<!doctype html><html><head><title>Sign in</title></head><body><form action="/login" method="post"></form></body></html>'

beforeEach(async () => {
  mode = 'sink'
  stored = []
  loginPosts = 0
  server = createServer((req, res) => {
    let text = ''
    req.on('data', (chunk) => (text += chunk))
    req.on('end', () => {
      if (req.url?.startsWith('/ofrep/')) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"flags":[]}')
      if (req.url === '/login') {
        if (req.method === 'POST') loginPosts++
        return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(LOGIN)
      }
      if (/^30\d$/.test(mode)) return void res.writeHead(Number(mode), { Location: `${base}/login` }).end()
      if (mode === 'html') return void res.writeHead(200, { 'Content-Type': 'text/html' }).end(LOGIN)
      const ids = (JSON.parse(text) as { events: Array<{ id: string }> }).events.map((e) => e.id)
      stored.push(...ids)
      if (mode === '204') return void res.writeHead(204).end()
      if (mode === 'text-ok') return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok')
      // What Express's res.send('ok') answers: a sink, not a portal, for all its content type.
      if (mode === 'html-ok') return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('ok')
      res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ accepted: ids.length, duplicates: 0 }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

function make(logger = createTestLogger()) {
  const client = createClient({
    url: base,
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName('events-portal'),
    logger,
    requestTimeoutMs: 2000,
    events: { url: `${base}/events`, backoff: { baseMs: 100, maxMs: 400 } },
  })
  clients.push(client)
  return client
}

test.each(['302', '303', '307', '308', 'html'] as const)('a portal answering %s keeps every event, says why, and all arrive once the sink answers', async (answer) => {
  mode = answer
  const logger = createTestLogger()
  const client = make(logger)
  for (let i = 0; i < 3; i++) client.logEvent('purchase', { value: i })
  await client.flush()
  // Before: the login page's 200 counted as delivered; the events were deleted and never stored.
  expect(client.getEventStats()).toMatchObject({ queued: 3, sent: 0, dropped: 0 })
  expect(client.getEventStats().lastError?.message).toMatch(answer === 'html' ? /HTML page/ : /redirect/)
  expect(logger.errors).toEqual([expect.stringMatching(/events are kept/)])
  // The events are not handed to the portal's login page either.
  expect(loginPosts).toBe(0)

  mode = 'sink'
  await client.flush()
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 3, dropped: 0 })
  expect(stored).toHaveLength(3)
})

test.each(['204', 'text-ok', 'html-ok'] as const)('a plain sink answering %s is still a delivery', async (answer) => {
  mode = answer
  const client = make()
  for (let i = 0; i < 3; i++) client.logEvent('purchase', { value: i })
  await client.flush()
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 3, dropped: 0 })
  expect(stored).toHaveLength(3)
})
