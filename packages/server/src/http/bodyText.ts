// The text of a request body: UTF-8, or, for bytes that are not, the charset its Content-Type
// declares, or taken from what a host that read it first left in `req.body`.
import { isUtf8 } from 'node:buffer'
import type { IncomingMessage } from 'node:http'

/** A request body read with a size cap (by `readBody`/`onBody`, body.ts; decoded here). */
export type BodyResult =
  | {
      ok: true
      text: string
      /** The body's size in bytes (as received, before decoding). */
      bytes: number
      /**
       * With `checkUtf8`: bytes that are not UTF-8 (or not of the charset the `Content-Type`
       * declares) were decoded as U+FFFD (two different bodies may read the same).
       */
      invalidUtf8?: true
    }
  | { ok: false; reason: BodyFailure }

/**
 * Why a body could not be read: over the cap, the client left mid-body, or a host that mounted the
 * handler read it first and kept nothing of it in `req.body` (see `onBody`, body.ts).
 */
export type BodyFailure = 'too-large' | 'aborted' | 'consumed'

/** Names of UTF-8 (and of ASCII, a part of it) in a `charset` parameter, lower case. */
const UTF8_NAMES: ReadonlySet<string> = new Set(['utf-8', 'utf8', 'us-ascii', 'unicode-1-1-utf-8'])

/**
 * The charset a request's `Content-Type` declares for its body (`application/json;
 * charset=iso-8859-1`), lower case, or undefined for UTF-8 in any spelling, ASCII, or none named:
 * JSON's own encoding (RFC 8259), read as ever. One pass over the parameters, no regex.
 */
export function declaredCharset(req: IncomingMessage): string | undefined {
  const type = req.headers['content-type']
  // The common case first: no parameters at all.
  if (type === undefined || type.indexOf(';') === -1) return undefined
  const parameters = type.split(';')
  for (let i = 1; i < parameters.length; i++) {
    const parameter = parameters[i]
    const equals = parameter.indexOf('=')
    if (equals === -1 || parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue
    let name = parameter.slice(equals + 1).trim()
    if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) name = name.slice(1, -1)
    name = name.toLowerCase()
    // `charset=` with nothing after it says nothing: JSON's own, as before.
    return name === '' || UTF8_NAMES.has(name) ? undefined : name
  }
  return undefined
}

/**
 * A decoder for a charset label (WHATWG Encoding: `latin1` and `iso-8859-1` read as windows-1252,
 * `utf-16` as UTF-16LE), or undefined for one it does not know. `fatal`: bytes not valid in it throw.
 */
export function charsetDecoder(charset: string, fatal: boolean): TextDecoder | undefined {
  try {
    return new TextDecoder(charset, { fatal })
  } catch {
    return undefined
  }
}

/**
 * Decodes a whole body (see the file comment); with `checkUtf8`, says when its bytes were not all valid.
 * JSON is UTF-8 on the wire and RFC 8259 gives its media type no charset ("adding one really has no
 * effect on compliant recipients"), so bytes that are valid UTF-8 are read as UTF-8 whatever the
 * `Content-Type` says: a client that labels its UTF-8 `charset=iso-8859-1` (a stale default) is read
 * as it meant. Only bytes that are not UTF-8 are read in the charset declared (a Latin-1 `Zürich`),
 * and UTF-16, which is named and never meant as UTF-8. A charset nobody can name is read as UTF-8, as
 * before: a request is never refused for its label.
 */
export function decodeBody(buffer: Buffer, checkUtf8: boolean, charset: string | undefined): BodyResult {
  // UTF-16 by its encoding's name, not the label's: `unicode` and `ucs-2` name it too.
  const strict = charset === undefined ? undefined : charsetDecoder(charset, true)
  if (strict !== undefined && (strict.encoding.startsWith('utf-16') || !isUtf8(buffer))) {
    try {
      return { ok: true, text: strict.decode(buffer), bytes: buffer.length }
    } catch {
      const text = charsetDecoder(strict.encoding, false)!.decode(buffer)
      return checkUtf8 ? { ok: true, text, bytes: buffer.length, invalidUtf8: true } : { ok: true, text, bytes: buffer.length }
    }
  }
  // A UTF-8 byte order mark some clients put first is not part of the JSON (RFC 8259 lets a parser ignore it).
  const decoded = buffer.toString('utf8')
  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded
  return checkUtf8 && text.includes('\uFFFD') && !isUtf8(buffer) ? { ok: true, text, bytes: buffer.length, invalidUtf8: true } : { ok: true, text, bytes: buffer.length }
}

/**
 * The body a host read before the handler, as it left it in `req.body`: the bytes (express.raw()),
 * the text (express.text()), or the parsed JSON (express.json(), Next.js, Fastify's `request.body`
 * set on `request.raw`), written out again. The same caps and checks follow as for a body read here:
 * JSON.parse keeps a `"__proto__"` key as an own key and JSON.stringify writes it back, so it is
 * still refused. Nothing kept (a middleware that read the body and dropped it) cannot be answered.
 */
export function bodyTheHostRead(req: IncomingMessage, limit: number, checkUtf8: boolean, charset: string | undefined): BodyResult {
  const kept = (req as { body?: unknown }).body
  let result: BodyResult
  if (Buffer.isBuffer(kept)) result = decodeBody(kept, checkUtf8, charset)
  else if (typeof kept === 'string') result = { ok: true, text: kept, bytes: Buffer.byteLength(kept) }
  else if (kept === undefined || kept === null) return { ok: false, reason: 'consumed' }
  else {
    let text: string | undefined
    try {
      text = JSON.stringify(kept)
    } catch {
      // a host's own object (a cycle, a BigInt): not the JSON that was posted
    }
    if (text === undefined) return { ok: false, reason: 'consumed' }
    result = { ok: true, text, bytes: Buffer.byteLength(text) }
  }
  return result.ok && result.bytes > limit ? { ok: false, reason: 'too-large' } : result
}
