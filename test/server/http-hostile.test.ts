// The HTTP boundary driven by raw sockets, where `fetch` would normalise the attack away: framing,
// refused bodies, Expect: 100-continue. Each case reproduced a defect or guards the fix of one.
import { describe, expect, it } from 'vitest'
import { rawConnection, startServer, waitFor } from './helpers'

const BULK = '/ofrep/v1/evaluate/flags'
const MiB = 1_048_576
const CONTEXT = '{"context":{"targetingKey":"u"}}'

/**
 * Sends `head`, then a body of `x`s (chunked, so it has no end) with backpressure, until the
 * server closes the connection or 256 MiB went out. A server that reads a refused body to the end
 * takes all of it; one that closes lets only the kernel buffers through.
 */
async function streamRefusedBody(url: string, head: string): Promise<{ sent: number; received: string }> {
  const { socket, received, closed } = await rawConnection(url)
  let isClosed = false
  void closed.then(() => (isClosed = true))
  socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n`)
  const chunk = Buffer.alloc(65_536, 'x')
  const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
  let sent = 0
  while (!isClosed && !socket.destroyed && sent < 256 * MiB) {
    const ok = socket.write(frame)
    sent += frame.length
    if (!ok) await Promise.race([new Promise((r) => socket.once('drain', r)), closed, new Promise((r) => setTimeout(r, 2000))])
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))])
  return { sent, received: received() }
}

// The status codes of the answers on one connection, in order (a body is not followed by a newline).
const statusesIn = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => match[1])

describe('a request refused before its body is read', { timeout: 60_000 }, () => {
  it('401, 403, 404 and 405 close the connection instead of reading a body of any size', async () => {
    // Before: Node read (and dropped) the whole refused body to reach the next request on the
    // connection, so a client without the key could make the server take 256 MiB (or, with a
    // Content-Length, a gigabyte) on one connection for a request it had already answered.
    const server = await startServer({ apiKey: 'k', adminKey: 'admin' })
    const noAdmin = await startServer({ apiKey: 'k' })
    const cases: Array<[string, string, number]> = [
      [server.url, `POST ${BULK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`, 401],
      [server.url, `POST /holdfast/v1/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n`, 401],
      [noAdmin.url, `POST /holdfast/v1/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin\r\n`, 403],
      [server.url, `POST /nothing-here HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n`, 404],
      [server.url, `PUT ${BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n`, 405],
    ]
    for (const [url, head, status] of cases) {
      const { sent, received } = await streamRefusedBody(url, head)
      expect(received, head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `))
      expect(received, head).toMatch(/\r\nconnection: close\r\n/i)
      expect(sent, head).toBeLessThan(64 * MiB)
    }
  })

  it('a small refused body never frames the next request: it is answered, or the connection is closed', async () => {
    const server = await startServer({ apiKey: 'k' })
    const second = `POST ${BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: ${CONTEXT.length}\r\n\r\n${CONTEXT}`
    // The refused body is itself a request: read as one, it would be answered (200) in the
    // refusing client's place.
    const smuggled = `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`
    for (const framing of [`Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`, `Transfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`]) {
      const { socket, received, closed } = await rawConnection(server.url)
      socket.write(`POST ${BULK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${framing}${second}`)
      await Promise.race([closed, waitFor(() => statusesIn(received()).length >= 2, 5000).catch(() => undefined)])
      const statuses = statusesIn(received())
      expect(statuses[0]).toBe('401')
      expect(statuses.slice(1).every((status) => status === '200')).toBe(true)
      expect(received()).not.toMatch(/"status":"ok"/)
    }
  })

  it('a refusal with no body keeps the connection open for the next request', async () => {
    const server = await startServer({ apiKey: 'k' })
    const { socket, received } = await rawConnection(server.url)
    socket.write(`GET /holdfast/v1/status HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing-here HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`)
    await waitFor(() => /"status":"ok"/.test(received()), 5000)
    expect(statusesIn(received())).toEqual(['401', '404', '200'])
    expect(received()).not.toMatch(/connection: close/i)
  })
})

describe('Expect: 100-continue', () => {
  // A client that asks first (curl does for large uploads) must not be told "100 Continue" for a
  // body the server is about to refuse: it would send it all, and the refusal, answered on a
  // connection that is then closed with that body unread, can be lost to a reset.
  it('no key, an unknown path, a wrong method, a body that is not JSON or a declared body over 1 MiB: the refusal comes without a 100', async () => {
    const server = await startServer({ apiKey: 'k' })
    const cases: Array<[string, string]> = [
      [`POST ${BULK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${CONTEXT.length}\r\n`, '401'],
      [`POST /nothing-here HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 10\r\n`, '404'],
      [`PUT ${BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 10\r\n`, '405'],
      [`POST ${BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: ${5 * MiB}\r\n`, '413'],
      // Before: text/plain was told 100 Continue, sent its body, and only then got its 415.
      [`POST ${BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: text/plain\r\nContent-Length: ${CONTEXT.length}\r\n`, '415'],
      [`POST /holdfast/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n`, '415'],
      [`POST /holdfast/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: ${5 * MiB}\r\n`, '413'],
    ]
    for (const [head, status] of cases) {
      const { socket, received } = await rawConnection(server.url)
      socket.write(`${head}Expect: 100-continue\r\n\r\n`)
      await waitFor(() => statusesIn(received()).some((s) => s !== '100'), 5000)
      expect(statusesIn(received()), head).toEqual([status])
    }
  })

  it('a request that will be read gets its 100, then its answer', async () => {
    const server = await startServer({ apiKey: 'k' })
    for (const path of [BULK, '/holdfast/v1/events']) {
      const { socket, received } = await rawConnection(server.url)
      const body = path === BULK ? CONTEXT : '{"events":[]}'
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`)
      await waitFor(() => received().includes('100 Continue'), 5000)
      socket.write(body)
      await waitFor(() => statusesIn(received()).length === 2, 5000)
      expect(statusesIn(received())).toEqual(['100', path === BULK ? '200' : '202'])
    }
  })
})

describe('event streams and the connection limit', () => {
  it('open streams never take every connection: past half of maxConnections they get 503, and requests are still served', async () => {
    // Before: the stream bound (10,000) was above the connection bound (1,024), so 1,024 open
    // tabs (or one client opening 1,024 streams, which needs no key when none is set) held every
    // connection for ever: flag requests, events and /healthz were refused until they left.
    const server = await startServer({ maxConnections: 8 })
    const streams = []
    for (let i = 0; i < 8; i++) {
      const connection = await rawConnection(server.url)
      connection.socket.write(`GET /holdfast/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n`)
      await Promise.race([connection.closed, waitFor(() => /\r\n\r\n/.test(connection.received()), 5000).catch(() => undefined)])
      streams.push(connection)
    }
    const open = streams.filter((s) => s.received().startsWith('HTTP/1.1 200 '))
    const refused = streams.filter((s) => s.received().startsWith('HTTP/1.1 503 '))
    expect(open).toHaveLength(4)
    expect(refused).toHaveLength(4)
    for (const s of refused) expect(s.received()).toMatch(/\r\nretry-after: \d+\r\n/i)
    // The refused ones leave (their kept-alive connections would count until the idle timeout).
    for (const s of refused) s.socket.destroy()
    await Promise.all(refused.map((s) => s.closed))
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${server.url}${BULK}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: CONTEXT })).status).toBe(200)
  })
})

describe('request targets', () => {
  it('the absolute form (http://host/path) is served like the path it names (RFC 9112 §3.2.2: a server MUST accept it)', async () => {
    // Before: the whole target was looked up as a path: 404 "nothing here" for every route.
    const server = await startServer()
    const { socket, received, closed } = await rawConnection(server.url)
    socket.write(
      `POST HTTP://127.0.0.1:${server.port}${BULK}?flagConfigEtag=x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${CONTEXT.length}\r\n\r\n${CONTEXT}` +
        `GET https://example.test/healthz HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET http://example.test HTTP/1.1\r\nHost: x\r\n\r\n`,
    )
    await Promise.race([closed, waitFor(() => statusesIn(received()).length === 3, 5000)])
    expect(statusesIn(received())).toEqual(['200', '200', '200'])
    expect(received()).toMatch(/"flags":\[/)
    expect(received()).toMatch(/"status":"ok"/)
    expect(received()).toMatch(/holdfast-server: an OFREP flag server/)
  })

  it('a target that only looks like one of ours is not (//, %-encoded, a scheme with no authority)', async () => {
    const server = await startServer()
    const { socket, received } = await rawConnection(server.url)
    const targets = ['//healthz', '/%68ealthz', '/x/../healthz', 'xhttp://a/healthz', 'ftp://a/healthz', '/healthz']
    socket.write(targets.map((target) => `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''))
    await waitFor(() => statusesIn(received()).length === targets.length, 5000)
    expect(statusesIn(received())).toEqual(['404', '404', '404', '404', '404', '200'])
  })
})

describe('CORS preflights', () => {
  it('one asking for 4,000 headers is answered in linear time: 20 of them cost what 20 requests cost', async () => {
    // Preflights need no key. Each requested header was compared, lower-cased, with every one
    // allowed so far: 4,000 names in the 16 KiB a header may hold cost ~0.7 s of CPU per request,
    // so 20 of them took 14 s. The bound leaves a factor of 4 for a busy machine.
    const server = await startServer({ apiKey: 'k' })
    let names = ''
    for (let i = 0; names.length < 15_000; i++) names += `${i ? ',' : ''}x${i.toString(36)}`
    const started = Date.now()
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const { socket, received } = await rawConnection(server.url)
        socket.write(`OPTIONS ${BULK} HTTP/1.1\r\nHost: x\r\nOrigin: http://app.test\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: ${names}\r\n\r\n`)
        await waitFor(() => /\r\n\r\n/.test(received()), 30_000)
        return received()
      }),
    )
    expect(Date.now() - started).toBeLessThan(3000)
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1\.1 204 /)
      const allowed = /\r\naccess-control-allow-headers: ([^\r]*)\r\n/i.exec(answer)![1].split(', ')
      // Every name asked for is allowed, once, after the base ones; a name asked for twice in
      // another case is not listed twice.
      expect(allowed.slice(0, 4)).toEqual(['Content-Type', 'Authorization', 'X-API-Key', 'If-None-Match'])
      expect(allowed.length).toBe(4 + names.split(',').length)
    }
    const { socket, received } = await rawConnection(server.url)
    socket.write(`OPTIONS ${BULK} HTTP/1.1\r\nHost: x\r\nAccess-Control-Request-Headers: content-type, X-Trace, x-trace, authorization\r\n\r\n`)
    await waitFor(() => /\r\n\r\n/.test(received()), 5000)
    expect(/\r\naccess-control-allow-headers: ([^\r]*)\r\n/i.exec(received())![1]).toBe('Content-Type, Authorization, X-API-Key, If-None-Match, X-Trace')
  }, 60_000)
})
