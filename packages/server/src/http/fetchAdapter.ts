import { EventEmitter } from 'node:events'
import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { ReadableStream as NodeReadableStream } from 'node:stream/web'
import type { RequestListener } from './requestHandler'

/** A handler for Web `Request`s: a Next.js App Router route handler, Hono, Bun, Deno, a service worker test. */
export type FetchHandler = (request: Request) => Promise<Response>

/**
 * Wraps a Holdfast handler (`createFlagHandler`) for runtimes that speak Web `Request`/`Response`
 * instead of Node's `req`/`res`, such as a Next.js App Router route handler:
 *
 * ```ts
 * // app/flags/[...path]/route.ts
 * const handle = toFetchHandler(await createFlagHandler({ flags: './flags.json' }), { basePath: '/flags' })
 * export { handle as GET, handle as POST, handle as OPTIONS }
 * ```
 *
 * `basePath` (default none) is cut from the front of the request path, as Express does for a
 * mounted handler. The body is streamed in, so the size caps still apply before it is all read.
 * A request the handler drops without an answer (a demo `hang` at shutdown) becomes a network error.
 * An answer written in pieces (the event stream) is a streamed `Response` from its first piece; the
 * request's `signal` aborting, or the runtime cancelling the body (the client left), closes it.
 */
export function toFetchHandler(handler: RequestListener, options: { basePath?: string } = {}): FetchHandler {
  const basePath = options.basePath?.replace(/\/$/, '')
  return (request) =>
    new Promise<Response>((resolve) => {
      const url = new URL(request.url)
      let path = url.pathname
      // As Express does for a mounted handler: the prefix cut from `url`, kept in `baseUrl` (the
      // event stream is advertised under it).
      const mounted = !!basePath && (path === basePath || path.startsWith(`${basePath}/`))
      if (mounted) path = path.slice(basePath.length) || '/'
      // A body the app read first (`await request.json()` before handing the request on) is locked:
      // Readable.fromWeb threw, and the promise rejected into the app. It is handed over as a Node
      // request whose body a host read and kept nothing of: answered 500, naming it.
      const used = request.bodyUsed
      const body = request.body && !used ? Readable.fromWeb(request.body as unknown as NodeReadableStream) : Readable.from([])
      const req = Object.assign(body, {
        method: request.method,
        url: path + url.search,
        headers: Object.fromEntries(request.headers),
        ...(mounted ? { baseUrl: basePath } : {}),
      }) as unknown as IncomingMessage
      const res = createResponse(resolve)
      // A client that leaves mid-upload: the runtime errors the body stream. Node throws an 'error'
      // event nobody listens to, and the host process (the whole app server) went down with it;
      // the answer is for nobody now (the body reader sees the 'close' that follows, as for a
      // Node request whose client left).
      body.on('error', () => res.destroy())
      request.signal?.addEventListener('abort', () => res.destroy(), { once: true })
      if (!used) return handler(req, res)
      body.once('end', () => handler(req, res)).resume()
    })
}

// The part of ServerResponse the Holdfast routes use, collecting the answer into a Web Response.
// An answer ended in one call is one body. One written in pieces before its end (the event stream,
// which never ends by itself) becomes a streamed body at its first piece: collected until the end,
// it was never answered at all, and every heartbeat and notice piled up in memory for good.
// `writableLength` is what the reader has not taken yet, so the hub's bound on a client that stopped
// reading holds here too.
function createResponse(resolve: (response: Response) => void): ServerResponse {
  const headers = new Map<string, string>()
  const chunks: Buffer[] = []
  let body: ReadableStreamDefaultController<Uint8Array> | undefined
  const res = new EventEmitter() as EventEmitter & Record<string, unknown>
  Object.defineProperty(res, 'writableLength', { get: () => Math.max(0, -(body?.desiredSize ?? 0)) })
  const set = (name: string, value: unknown) => headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value))
  Object.assign(res, {
    statusCode: 200,
    headersSent: false,
    writableEnded: false,
    destroyed: false,
    setHeader(name: string, value: unknown) {
      set(name, value)
      return res
    },
    getHeader: (name: string) => headers.get(name.toLowerCase()),
    removeHeader: (name: string) => headers.delete(name.toLowerCase()),
    // As Node's: (status, headers) or (status, reason, headers), headers an object or a flat
    // [name, value, ...] array (what the cached bulk answer passes).
    writeHead(status: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], extra?: OutgoingHttpHeaders | OutgoingHttpHeader[]) {
      res.statusCode = status
      const given = typeof reason === 'string' ? extra : reason
      if (Array.isArray(given)) for (let i = 0; i < given.length; i += 2) set(String(given[i]), given[i + 1])
      else for (const [name, value] of Object.entries(given ?? {})) if (value !== undefined) set(name, value)
      res.headersSent = true
      return res
    },
    write(chunk: string | Buffer) {
      if (res.writableEnded || res.destroyed) return false
      if (body) body.enqueue(Buffer.from(chunk))
      else {
        res.headersSent = true
        const first = Buffer.from(chunk)
        const stream = new ReadableStream<Uint8Array>(
          {
            start(controller) {
              body = controller
              controller.enqueue(first)
            },
            // The runtime cancels the body when the client goes away.
            cancel: () => void (res as unknown as ServerResponse).destroy(),
          },
          // High-water mark 0: `desiredSize` is minus the bytes waiting for the reader.
          new ByteLengthQueuingStrategy({ highWaterMark: 0 }),
        )
        headers.delete('connection')
        resolve(new Response(stream, { status: res.statusCode as number, headers: [...headers] }))
      }
      return true
    },
    end(chunk?: string | Buffer) {
      if (res.writableEnded || res.destroyed) return res
      if (body) {
        if (chunk !== undefined) body.enqueue(Buffer.from(chunk))
        body.close()
        res.writableEnded = true
        res.emit('finish')
        res.emit('close')
        return res
      }
      if (chunk !== undefined) chunks.push(Buffer.from(chunk))
      res.writableEnded = true
      res.headersSent = true
      const status = res.statusCode as number
      // A Response with status 204 or 304 must not have a body; HEAD answers have none either.
      const payload = status === 204 || status === 304 || chunks.length === 0 ? null : Buffer.concat(chunks)
      headers.delete('connection')
      resolve(new Response(payload, { status, headers: [...headers] }))
      res.emit('finish')
      res.emit('close')
      return res
    },
    destroy() {
      if (res.destroyed || res.writableEnded) return res
      res.destroyed = true
      // A streamed body the client still reads breaks off; a cancelled one is gone already.
      try {
        body?.error(new Error('the answer was cut off'))
      } catch {
        // already closed by the runtime's cancel
      }
      resolve(Response.error())
      res.emit('close')
      return res
    },
  })
  return res as unknown as ServerResponse
}
