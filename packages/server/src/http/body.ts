import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { bodyTheHostRead, charsetDecoder, declaredCharset, decodeBody, type BodyFailure, type BodyResult } from './bodyText'

const EMPTY = Buffer.alloc(0)

/** The largest request body the server reads: 1 MiB (1,048,576 bytes). Larger ones get 413. */
export const MAX_BODY_BYTES = 1_048_576

export type { BodyFailure, BodyResult } from './bodyText'

/**
 * Reads a request body as text (UTF-8, or the charset its `Content-Type` declares: see
 * `bodyText.ts`), counting bytes as they stream in. Past `limit` (or at once, when
 * `Content-Length` already says so) reading stops: the data is neither kept nor read any more, and
 * the 413 that {@link answerBodyFailure} sends closes the connection, so a client streaming
 * gigabytes cannot keep the server busy reading what it already refused. With `checkUtf8`, a
 * body holding bytes that are not UTF-8 says so (`invalidUtf8`): where two bodies must not read
 * the same (event ids), not on the flag routes' path.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES, checkUtf8 = false): Promise<BodyResult> {
  return new Promise((resolve) => onBody(req, limit, resolve, checkUtf8))
}

/**
 * {@link readBody} with a callback, called exactly once (with `watchAbort` false: at most once, never
 * for a client that left mid-body): the hot path (a cached answer) reads its body this way and
 * answers in the same tick the body ends in, with no promise between.
 */
export function onBody(req: IncomingMessage, limit: number, callback: (result: BodyResult) => void, checkUtf8 = false, watchAbort = true): void {
  let settled = false
  const settle = (result: BodyResult) => {
    if (!settled) {
      settled = true
      callback(result)
    }
  }
  const declared = Number(req.headers['content-length'])
  if (declared > limit) {
    settle({ ok: false, reason: 'too-large' })
    return
  }
  const charset = declaredCharset(req)
  // A host in front read the body already (Express after express.json(), a Next.js pages API route,
  // whose body parser is on by default, Fastify's content-type parsers): its 'end' has been and
  // gone, and waiting for it held every request until the host's own timeout.
  if (req.readableEnded) {
    settle(bodyTheHostRead(req, limit, checkUtf8, charset))
    return
  }
  // The bytes so far: a first chunk as it came (a small body comes in one: decoded as it is, never
  // copied); from a second on, copied into one buffer that doubles as it fills, up to `limit`.
  // Chunked encoding lets a client cut a body into one-byte chunks, each a Buffer of its own in
  // Node: kept as a list, a 1 MiB body held ~150 MB of heap.
  let held: Buffer | undefined
  let copied = false
  let size = 0
  const onData = (chunk: Buffer) => {
    const at = size
    size += chunk.length
    if (size > limit) {
      held = undefined
      req.off('data', onData)
      req.pause()
      settle({ ok: false, reason: 'too-large' })
      return
    }
    if (held === undefined) {
      held = chunk
      return
    }
    if (!copied || size > held.length) {
      const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(size, held.length * 2, 4096)))
      held.copy(grown, 0, 0, at)
      held = grown
      copied = true
    }
    chunk.copy(held, at)
  }
  req.on('data', onData)
  // Asked to, only a body whose text holds a U+FFFD is checked again for bytes that are not UTF-8.
  req.on('end', () => settle(decodeBody(held === undefined ? EMPTY : copied ? held.subarray(0, size) : held, checkUtf8, charset)))
  // A client that leaves mid-body closes the request ('close' comes after 'end' otherwise, and
  // then settles nothing). No 'error' listener: Node emits a request's 'error' only to listeners,
  // and 'close' follows it either way.
  // Without `watchAbort` (a caller with nothing to do for a client that left) nothing is called
  // then, and no listener is added for it.
  if (watchAbort) req.on('close', () => settle({ ok: false, reason: 'aborted' }))
}

/** True when nothing more can be sent (the client left, the server closed, or we already answered). */
export function isGone(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed
}

/** Sends a JSON body with `Content-Type: application/json`. Extra headers go on top. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendText(res, status, JSON.stringify(body), 'application/json; charset=utf-8', headers)
}

/** Sends a text body with the given content type. Does nothing when the response is gone. */
export function sendText(res: ServerResponse, status: number, text: string, contentType: string, headers: Record<string, string> = {}): void {
  if (isGone(res)) return
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(text)), ...headers, ...closeIfBodyUnread(res) })
  res.end(text)
}

/** Sends a status with no body (204, 304). */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (isGone(res)) return
  res.writeHead(status, { ...headers, ...closeIfBodyUnread(res) })
  res.end()
}

const CLOSE = { Connection: 'close' }

/**
 * `Connection: close` for an answer sent before the request's body was read (a 401, 404, 405, a
 * shed 503): kept alive, Node would read and drop the whole body, however large, to reach the next
 * request on the connection, so a client could make the server take gigabytes for a request it
 * had already refused. Closed, the rest is never read (as after a 413). A request without a body
 * keeps its connection.
 */
function closeIfBodyUnread(res: ServerResponse): typeof CLOSE | undefined {
  const req = res.req as IncomingMessage | undefined
  if (req === undefined || req.complete) return undefined
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0') ? CLOSE : undefined
}

/** A strong ETag for a response body: a quoted SHA-1 of its exact bytes, base64url. */
export function etagOf(body: string | Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`
}

/**
 * Whether an `If-None-Match` header names `etag`. Handles lists, the weak `W/` prefix (weak
 * comparison is what RFC 9110 prescribes for If-None-Match) and a tag sent without its quotes; `*` is ignored because it asks
 * "does anything exist", which is not a cache revalidation.
 */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false
  if (header === etag) return true
  return header.split(',').some((tag) => {
    const strong = tag.trim().replace(/^W\//, '')
    // Without its quotes (a client or proxy that took them off) it still names this answer.
    return strong === etag || `"${strong}"` === etag
  })
}

/**
 * Reads a JSON request body, or answers the failure itself: 413 when too large, 400
 * `PARSE_ERROR` when not JSON, nothing when the client left. Undefined means "answered already".
 */
export async function readJson(req: IncomingMessage, res: ServerResponse): Promise<{ value: unknown } | undefined> {
  const body = await readBody(req)
  if (!body.ok) {
    answerBodyFailure(res, body.reason)
    return undefined
  }
  try {
    return { value: JSON.parse(body.text) }
  } catch {
    sendJson(res, 400, { errorCode: 'PARSE_ERROR', errorDetails: 'the request body is not valid JSON' })
    return undefined
  }
}

/**
 * Answers a body that could not be read: 413 when too large; 500 naming the mistake when a host read
 * it first and kept nothing (the client retries; events are kept); nothing when the client left.
 */
export function answerBodyFailure(res: ServerResponse, reason: BodyFailure): void {
  if (reason === 'consumed') {
    sendJson(res, 500, {
      errorDetails: 'the request body was read before the Holdfast handler and not left in req.body: mount the handler before any body parser, or keep the parsed body in req.body',
    })
  } else if (reason === 'too-large') {
    // Connection: close makes Node end the socket once the answer is written; the rest of the
    // upload is never read (the client sees the 413, then the connection close).
    sendJson(res, 413, { errorCode: 'PAYLOAD_TOO_LARGE', errorDetails: 'request bodies are limited to 1 MiB (1,048,576 bytes)' }, { Connection: 'close' })
  }
}

/**
 * Whether a request's `Content-Type` is JSON (`application/json` or any `+json` type), or absent.
 * A `text/plain` POST is a "simple" request that browsers send cross-site without a preflight, so
 * a JSON API that accepts it can be fed by any web page; such requests get 415.
 */
export function isJsonRequest(req: IncomingMessage): boolean {
  const type = req.headers['content-type']
  if (type === undefined || type === '' || type === 'application/json') return true
  const mediaType = type.split(';', 1)[0].trim().toLowerCase()
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'))
}

/** Answers 415 for a body that is not JSON. */
export function answerNotJson(res: ServerResponse): void {
  sendJson(res, 415, { errorCode: 'UNSUPPORTED_MEDIA_TYPE', errorDetails: 'send the body as Content-Type: application/json' }, { Connection: 'close' })
}

/**
 * Whether a host read the body before the handler and left it decoded in `req.body`: body-parser
 * (express.json(), .raw(), .text()) inflates gzip and deflate and leaves `Content-Encoding` as
 * sent. Parsed JSON is decoded; bytes or text only when they read as a JSON object or array (a
 * host that kept the compressed bytes as they came, as a Buffer or a 'binary' string, still gets
 * 415, not a 400 that drops events).
 */
function decodedByHost(req: IncomingMessage): boolean {
  if (!req.readableEnded) return false
  const kept = (req as { body?: unknown }).body
  if (kept === undefined || kept === null) return false
  // Bytes, or text (a raw-body middleware may keep what came as a 'binary' string): decoded only
  // when they read as a JSON object or array; a string of gzip bytes parsed as JSON was a 400.
  const at = Buffer.isBuffer(kept) ? (i: number) => kept[i] : typeof kept === 'string' ? (i: number) => kept.charCodeAt(i) : undefined
  if (at === undefined) return true
  let i = at(0) === 0xfeff ? 1 : at(0) === 0xef && at(1) === 0xbb && at(2) === 0xbf ? 3 : 0
  while (at(i) === 0x20 || at(i) === 0x09 || at(i) === 0x0a || at(i) === 0x0d) i++
  return at(i) === 0x7b || at(i) === 0x5b
}

/**
 * Answers 415 (and returns true) for a body sent with a `Content-Encoding` (gzip, br, …): bodies
 * are read as sent, so a compressed one used to be read as broken JSON, a 400 PARSE_ERROR — for an
 * events batch, one the client drops as bad input. `identity` or an empty value is no encoding, and
 * neither is a body a host read first and left decoded (see decodedByHost).
 */
export function refuseEncoded(req: IncomingMessage, res: ServerResponse): boolean {
  const encoding = req.headers['content-encoding']
  if (encoding === undefined) return false
  const name = encoding.trim().toLowerCase()
  if (name === '' || name === 'identity' || decodedByHost(req)) return false
  sendJson(
    res,
    415,
    { errorCode: 'UNSUPPORTED_MEDIA_TYPE', errorDetails: `Content-Encoding ${JSON.stringify(name.slice(0, 40))} is not supported: send the body uncompressed` },
    { Connection: 'close' },
  )
  return true
}
