import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http'

// A named property (not a symbol), set once per response: a plain, monomorphic property store.
const deferred = '_holdfastCors'

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[] | undefined

/**
 * The `ServerResponse` class `createFlagServer` serves with: it adds the CORS headers (every
 * answer carries them, errors included) when the head is written, instead of the listener calling
 * `setHeader` for each as a request arrives. Node writes a head that was only ever given to
 * `writeHead(status, headers)` straight from those headers; a single `setHeader` call moves every
 * answer to the slower path through a per-response header map, which cost about a tenth of a
 * cached 304 (`npm run bench:server`, CPU per request). Headers a handler sets or passes win over
 * the CORS defaults, exactly as when the defaults were set first. Mounted in another server
 * (Express, Fastify), the handler sets the defaults with `setHeader` as before.
 */
export class CorsResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  // Declared, not initialised: the class keeps the default constructor (no per-response field
  // definitions or argument spreading), and both read as undefined (falsy) until set.
  /** CORS headers to add when the head is written; cleared once they are. */
  declare [deferred]: ReadonlyArray<readonly [string, string]> | undefined
  /** Whether `setHeader`/`appendHeader` was used: then Node merges a header map anyway. */
  declare private progressive: boolean | undefined

  override setHeader(name: string, value: number | string | readonly string[]): this {
    this.progressive = true
    return super.setHeader(name, value)
  }

  override appendHeader(name: string, value: string | readonly string[]): this {
    this.progressive = true
    return super.appendHeader(name, value)
  }

  override writeHead(statusCode: number, reason?: string | Headers, headers?: Headers): this {
    const cors = this[deferred]
    if (cors === undefined) return super.writeHead(statusCode, reason as string, headers)
    this[deferred] = undefined
    const message = typeof reason === 'string' ? reason : undefined
    // Node's other array form, [name, value] pairs, flattened: its merge with headers already set
    // takes only the flat form.
    const passed = typeof reason === 'string' ? headers : reason
    const given: Headers = Array.isArray(passed) && Array.isArray(passed[0]) ? (passed as unknown as OutgoingHttpHeader[][]).flat() : passed
    if (this.progressive) {
      // The defaults go in as if they had been set first: anything set since, or passed here, wins.
      for (const [name, value] of cors) if (!this.hasHeader(name) && !names(given, name)) super.setHeader(name, value)
      return message === undefined ? super.writeHead(statusCode, given) : super.writeHead(statusCode, message, given)
    }
    const flat: OutgoingHttpHeader[] = []
    for (const [name, value] of cors) if (!names(given, name)) flat.push(name, value)
    if (Array.isArray(given)) for (const item of given) flat.push(item)
    else if (given) for (const key of Object.keys(given)) flat.push(key, given[key] as OutgoingHttpHeader)
    return message === undefined ? super.writeHead(statusCode, flat) : super.writeHead(statusCode, message, flat)
  }
}

/**
 * Hands `headers` to `res` to add when its head is written; false when `res` is not a
 * {@link CorsResponse} (the caller sets them itself).
 */
export function deferCors(res: ServerResponse, headers: ReadonlyArray<readonly [string, string]>): boolean {
  if (!(res instanceof CorsResponse)) return false
  res[deferred] = headers
  return true
}

// Whether a writeHead argument (flat array or object) names `name`, in any case.
function names(headers: Headers, name: string): boolean {
  if (!headers) return false
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (sameName(String(headers[i]), name)) return true
    return false
  }
  for (const key of Object.keys(headers)) if (sameName(key, name)) return true
  return false
}

// Header names compared in any case, lower-casing only names of the same length: on the hot path
// (ETag or Content-Type against the CORS names) nothing is allocated.
function sameName(a: string, b: string): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase())
}
