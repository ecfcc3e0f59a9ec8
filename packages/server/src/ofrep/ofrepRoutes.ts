import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FlagSource } from '../flags/flagSource'
import { freshnessOf } from '../flags/relay'
import type { HoldfastMetadata } from '../flags/relayStatus'
import { CorsResponse } from '../http/corsResponse'
import { answerBodyFailure, answerNotJson, etagMatches, etagOf, isGone, isJsonRequest, MAX_BODY_BYTES, onBody, readBody, refuseEncoded, sendEmpty, sendJson, type BodyResult } from '../http/body'
import type { ServerMetrics } from '../metrics'
import type { AnswerCache, CachedAnswer } from './answerCache'
import type { CatchUp } from './catchUp'
import { evaluateAll, evaluateEntry, isFailure, readEvaluationRequest } from './evaluate'
import type { RequestLimits } from './schemas'

const JSON_TYPE = 'application/json; charset=utf-8'

/** What the OFREP handlers need from the server. */
export interface OfrepDeps {
  flags: FlagSource
  limits: RequestLimits
  cache: AnswerCache
  metrics?: ServerMetrics
  /** The `eventStreams` bulk answers advertise (OFREP 0.3.0); none when live updates are off. */
  streams?: Array<Record<string, unknown>>
  /**
   * The same under the path a host mounted the handler at (see {@link mountOf}); absent when the
   * stream's `requestUri` was configured (it is advertised as given).
   */
  streamsAt?: (mount: string) => Array<Record<string, unknown>>
  /** Holds a notice's refetch that names a version not served here yet (see `catchUp.ts`); none without live updates. */
  catchUp?: CatchUp
}

/** A mount path: non-empty segments (so never `//host`, another origin to a client), bounded. */
const MOUNT = /^(?:\/[\w.~!$&'()*+,;=:@%-]+){1,16}$/

/**
 * The path a host mounted the handler at (Express's `req.baseUrl` for `app.use('/flags', handler)`,
 * `toFetchHandler`'s `basePath`), or ''. OFREP joins an advertised `requestUri` to the origin, so a
 * stream advertised without it sent every tab's stream to a path of the app that is not the stream.
 */
function mountOf(req: IncomingMessage, deps: OfrepDeps): string {
  const base = (req as { baseUrl?: unknown }).baseUrl
  return deps.streamsAt && typeof base === 'string' && base.length <= 512 && MOUNT.test(base) ? base : ''
}

function streamsFor(mount: string, deps: OfrepDeps): Array<Record<string, unknown>> | undefined {
  return mount && deps.streams ? deps.streamsAt!(mount) : deps.streams
}

/**
 * The OFREP routes' check before the body: anything but JSON is answered 415 (and true returned).
 * A `text/plain` POST is a "simple" request browsers send cross-site without a preflight.
 */
export function refuseNotJson(req: IncomingMessage, res: ServerResponse): boolean {
  if (!isJsonRequest(req)) {
    answerNotJson(res)
    return true
  }
  return refuseEncoded(req, res)
}

/**
 * `POST /ofrep/v1/evaluate/flags` (after {@link refuseNotJson}): evaluates every flag for the posted context.
 *
 * The `ETag` is a hash of the body but its `fetchedAt` (`tagOf`), so it changes exactly when this context's answer
 * changes (a flag edit that does not affect this user keeps it). Answers are cached per
 * (definitions version and freshness, exact request body): a repeated context costs one lookup,
 * and `If-None-Match` is compared with the cached tag before anything is parsed or evaluated, so a
 * 304 costs less still. Definitions that read `$flagd.timestamp` are time-dependent and never cached.
 */
export function handleBulkEvaluation(req: IncomingMessage, res: ServerResponse, deps: OfrepDeps): Promise<void> | void {
  // The body is read with a callback and answered in the tick it ends in: a cached answer (the
  // common case: the same page polling) costs one promise, not one per step.
  // A client that leaves mid-body is not answered, so nothing listens for it: the promise is
  // then never settled (the request is not counted) and goes with the request.
  return new Promise((resolve, reject) =>
    onBody(
      req,
      MAX_BODY_BYTES,
      (body) => {
        try {
          const forwarded = answerBulk(req, res, body, deps)
          if (forwarded) forwarded.then(resolve, reject)
          else resolve()
        } catch (error) {
          reject(error)
        }
      },
      false,
      false,
    ),
  )
}

function answerBulk(req: IncomingMessage, res: ServerResponse, body: BodyResult, deps: OfrepDeps, waited = false): Promise<void> | void {
  if (!body.ok) return answerBodyFailure(res, body.reason)
  if (deps.flags.evaluate) return forward(req, res, body.text, deps)
  const version = deps.flags.current()
  if (!version) return notReady(res)
  // Refused before any wait: a body over the limit is answered 413 whatever version it names.
  if (body.bytes > deps.limits.maxBodyBytes) return tooBig(res, deps.limits)
  const wanted = noticed(req)
  const isBehind = wanted !== null && wanted !== version.version
  if (isBehind && !waited && deps.catchUp) {
    const caughtUp = deps.catchUp.wait(wanted, res)
    // A client that left during the wait is not answered: evaluated anyway, a flood of refetches
    // dropped at once came back as one burst of work, past the load shedder that let them in.
    if (caughtUp) return caughtUp.then(() => (isGone(res) ? undefined : answerBulk(req, res, body, deps, true)))
  }
  // `metadata.holdfast` (CONTRACT §9) is part of the answer, so its freshness is part of the key:
  // a poll that re-confirms changes the body (not the ETag), an outage that makes it stale changes both.
  const holdfast = freshnessOf(deps.flags) ?? { source: 'file', fetchedAt: version.fetchedAt, stale: false }
  // Cached by what it was answered from (the prefix) and the request body: a repeated body is
  // never parsed or validated again (the cached answer was made from exactly these bytes,
  // validated, under these limits).
  const mount = mountOf(req, deps)
  // The mount is in the advertised stream, so in the key (the prefix ends in ':', a mount starts with '/').
  const prefix = keyPrefix(version, holdfast)
  // Not concatenated when there is no mount (the common case): the entry's prefix is compared with this one on every hit.
  const key = prefix === undefined || mount === '' ? prefix : prefix + mount
  let answer = key === undefined ? undefined : deps.cache.get(key, body.text)
  if (!answer) {
    const request = readEvaluationRequest(body.text, deps.limits)
    if (!request.ok) return sendJson(res, 400, request.error)
    const result = evaluateAll(version.evaluator, request.context)
    const streams = streamsFor(mount, deps)
    const advertised = streams ? { eventStreams: streams } : {}
    const whole = { ...result, ...advertised, metadata: { ...result.metadata, holdfast } }
    const bytes = Buffer.from(JSON.stringify(whole))
    // The tag is a hash of the body but for `fetchedAt` (CONTRACT §8, see `tagOf`), so it is the
    // same for two contexts only when their answers are, and a 304 for another context's tag
    // confirms exactly what that context would have been sent. The version a notice names is
    // checked apart (`noticed`).
    answer = { body: bytes, etag: tagOf(whole), errorCodes: result.flags.filter(isFailure).map((entry) => entry.errorCode) }
    if (key !== undefined) deps.cache.set(key, body.text, answer)
    deps.metrics?.countAnswer(false)
  } else deps.metrics?.countAnswer(true)
  send(req, res, answer, deps.metrics, isBehind)
}

// `version:source:fetchedAt:stale:` for what is served now, built once per change rather than per
// request; undefined for definitions that read `$flagd.timestamp` (time-dependent: never cached).
const prefixes = new WeakMap<object, { source: string; fetchedAt: number; stale: boolean; prefix: string | undefined }>()
function keyPrefix(version: { version: string; definitions: object }, holdfast: { source: string; fetchedAt: number; stale: boolean }): string | undefined {
  let found = prefixes.get(version)
  if (!found || found.source !== holdfast.source || found.fetchedAt !== holdfast.fetchedAt || found.stale !== holdfast.stale) {
    const prefix = timeDependent(version.definitions) ? undefined : `${version.version}:${holdfast.source}:${holdfast.fetchedAt}:${holdfast.stale ? 1 : 0}:`
    prefixes.set(version, (found = { ...holdfast, prefix }))
  }
  return found.prefix
}

/**
 * OFREP ADR-0008: a refetch triggered by a notice carries the notice's `flagConfigEtag`. When it
 * names another version than the one served here (this replica has not caught up yet, or the
 * notice is older than what is served), a 304 would confirm a version the client was told is not
 * current: the full answer goes out instead. A version never served here is first waited for, a
 * little (see `catchUp.ts`): the old answer would be all the client gets.
 */
function noticed(req: IncomingMessage): string | null {
  const url = req.url ?? ''
  const mark = url.indexOf('?')
  if (mark === -1) return null
  // `flagConfigEtag=` (empty, as a client that copies an empty notice field sends it) names no
  // version: read as one never served, it held the request for the whole catch-up wait and then
  // ignored its If-None-Match.
  return new URLSearchParams(url.slice(mark + 1)).get('flagConfigEtag') || null
}

/**
 * Sends a bulk answer: 304 when `If-None-Match` names its tag (unless `noNotModified`), else 200
 * with the body. `extra`: headers a per-context source added (on both).
 */
function send(req: IncomingMessage, res: ServerResponse, answer: CachedAnswer, metrics: ServerMetrics | undefined, noNotModified = false, extra?: Record<string, string>): void {
  if (metrics && answer.errorCodes.length > 0) metrics.countEvaluationErrors(answer.errorCodes)
  if (isGone(res)) return
  // Flat header arrays: Node writes them as they are, with nothing to merge. Only on our own
  // server's responses: mounted in another, a middleware's writeHead wrapper may read an array as
  // [name, value] pairs (on-headers before 1.1.0, under morgan, compression, express-session), and
  // every cached answer and 304 became a 500 (a `"` taken as a header name) with stray headers.
  const flat = res instanceof CorsResponse
  if (!noNotModified && etagMatches(header(req, 'if-none-match'), answer.etag)) {
    if (flat) res.writeHead(304, extra === undefined ? ['ETag', answer.etag] : ['ETag', answer.etag, ...Object.entries(extra).flat()])
    else res.writeHead(304, { ETag: answer.etag, ...extra })
    res.end()
    return
  }
  if (flat) {
    const head = ['Content-Type', JSON_TYPE, 'Content-Length', String(answer.body.length), 'ETag', answer.etag]
    res.writeHead(200, extra === undefined ? head : [...head, ...Object.entries(extra).flat()])
  } else res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Content-Length': String(answer.body.length), ETag: answer.etag, ...extra })
  res.end(answer.body)
}

/**
 * `POST /ofrep/v1/evaluate/flags/{key}` (after {@link refuseNotJson}): one flag, for server-side OFREP providers. Status codes
 * follow flagd: 404 `FLAG_NOT_FOUND`, 400 for any other failure (bad context or a broken rule).
 */
export async function handleFlagEvaluation(req: IncomingMessage, res: ServerResponse, key: string, deps: OfrepDeps): Promise<void> {
  const body = await readBody(req)
  if (!body.ok) return answerBodyFailure(res, body.reason)
  if (deps.flags.evaluate) return forwardOne(req, res, key, body.text, deps)
  const version = deps.flags.current()
  if (!version) return notReady(res)
  if (body.bytes > deps.limits.maxBodyBytes) return tooBig(res, deps.limits, key)
  const request = readEvaluationRequest(body.text, deps.limits)
  if (!request.ok) return sendJson(res, 400, { key, ...request.error })
  const entry = evaluateEntry(version.evaluator, key, request.context)
  if (!entry) return sendJson(res, 404, { key, errorCode: 'FLAG_NOT_FOUND', errorDetails: `flag '${key}' was not found` })
  if (isFailure(entry)) deps.metrics?.evaluationErrors.inc({ code: entry.errorCode })
  sendJson(res, isFailure(entry) ? 400 : 200, isFailure(entry) ? entry : saidStale(entry, freshnessOf(deps.flags)))
}

/**
 * A single-flag success entry as served while what is served is stale (the bulk route's
 * `metadata.holdfast.stale`, CONTRACT §9): reason STALE (OpenFeature's word for a value that may be
 * out of date), and `holdfastStale`, `holdfastSource` and `holdfastFetchedAt` in the flag metadata,
 * with the reason STALE replaced in `holdfastReason` (TARGETING_MATCH, SPLIT, DEFAULT…: why the value
 * was chosen, which STALE alone lost; none for an entry that was STALE already). OFREP's single-flag answer has no flag-set metadata, and its
 * flag metadata holds strings, numbers and booleans only (the OFREP providers drop an object such
 * as `holdfast`), so these reach an OpenFeature provider's `flagMetadata` as they are. Before, a
 * server-side provider got the same answer through an outage as when fresh. A fresh entry goes as
 * it is.
 */
function saidStale(entry: object, holdfast: HoldfastMetadata | undefined): object {
  if (!holdfast?.stale) return entry
  const { metadata: given, reason } = entry as { metadata?: unknown; reason?: unknown }
  const metadata = isObject(given) ? given : {}
  // A value the relay kept through a per-flag error is STALE in its bulk answer already (`toEntries`),
  // which has no room for the reason it had: no holdfastReason, rather than one saying STALE.
  const why = typeof reason === 'string' && reason !== 'STALE' ? { holdfastReason: reason } : {}
  return { ...entry, reason: 'STALE', metadata: { ...metadata, holdfastStale: true, holdfastSource: holdfast.source, holdfastFetchedAt: holdfast.fetchedAt, ...why } }
}

// A source that answers per context (the relay's proxy mode) gets the validated context.
async function forward(req: IncomingMessage, res: ServerResponse, text: string, deps: OfrepDeps): Promise<void> {
  if (Buffer.byteLength(text) > deps.limits.maxBodyBytes) return tooBig(res, deps.limits)
  const request = readEvaluationRequest(text, deps.limits)
  if (!request.ok) return sendJson(res, 400, request.error)
  const answer = await deps.flags.evaluate!({ context: request.context as Record<string, unknown>, headers: req.headers })
  if (answer.body === undefined) return sendEmpty(res, answer.status, answer.headers)
  if (answer.status !== 200) return sendJson(res, answer.status, answer.body, answer.headers)
  const streams = streamsFor(mountOf(req, deps), deps)
  const advertised = streams && isObject(answer.body) ? { ...answer.body, eventStreams: streams } : answer.body
  // The same ETag as for definitions (`tagOf`), unless the source names its own: the upstream's
  // confirmation of an unchanged answer (its `fetchedAt` moves) is a 304 for a browser holding it.
  const bytes = Buffer.from(JSON.stringify(advertised))
  let etag: string | undefined
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(answer.headers ?? {})) {
    const lower = name.toLowerCase()
    if (lower === 'etag') etag = value
    // The body is the one sent here: its type and length are this server's to say.
    else if (lower !== 'content-type' && lower !== 'content-length') headers[name] = value
  }
  send(req, res, { body: bytes, etag: etag ?? tagOf(advertised), errorCodes: [] }, deps.metrics, false, headers)
}

// One flag from a per-context source: its bulk answer for this context, that flag picked out, with
// flagd's status codes (404 FLAG_NOT_FOUND, 400 for a per-flag failure).
async function forwardOne(req: IncomingMessage, res: ServerResponse, key: string, text: string, deps: OfrepDeps): Promise<void> {
  if (Buffer.byteLength(text) > deps.limits.maxBodyBytes) return tooBig(res, deps.limits, key)
  const request = readEvaluationRequest(text, deps.limits)
  if (!request.ok) return sendJson(res, 400, { key, ...request.error })
  const answer = await deps.flags.evaluate!({ context: request.context as Record<string, unknown>, headers: req.headers })
  if (answer.body === undefined) return sendEmpty(res, answer.status, answer.headers)
  // The upstream refused the request (400/422): OFREP's single-flag evaluationFailure names the key.
  if (answer.status !== 200) return sendJson(res, answer.status, answer.status < 500 && isObject(answer.body) ? { key, ...answer.body } : answer.body, answer.headers)
  const body = answer.body as { flags?: Array<{ key: string; errorCode?: string }>; metadata?: { holdfast?: HoldfastMetadata } }
  const entry = body.flags?.find((e) => e.key === key)
  if (!entry || entry.errorCode === 'FLAG_NOT_FOUND') return sendJson(res, 404, { key, errorCode: 'FLAG_NOT_FOUND', errorDetails: `flag '${key}' was not found` })
  sendJson(res, entry.errorCode === undefined ? 200 : 400, entry.errorCode === undefined ? saidStale(entry, body.metadata?.holdfast) : entry)
}

/**
 * The ETag of a bulk answer: a hash of its JSON without `metadata.holdfast.fetchedAt`. The time
 * moves on every confirmation by the origin (an upstream 304, a poll that found nothing new); a
 * hash of it made every poll of an unchanged relay a new tag, so no browser ever got a 304 and each
 * downloaded the whole answer again. A 304 says "the snapshot this tag names is current" (CONTRACT
 * §2.1): every value, variant, reason and metadata, the source and the stale bit are in the tag;
 * a browser wanting the newer time reads it from any 200.
 */
export function tagOf(answer: unknown): string {
  const metadata = isObject(answer) && isObject(answer.metadata) ? answer.metadata : undefined
  const holdfast = metadata?.holdfast
  if (!isObject(holdfast) || !('fetchedAt' in holdfast)) return etagOf(JSON.stringify(answer))
  const { fetchedAt: _, ...timeless } = holdfast
  return etagOf(JSON.stringify({ ...(answer as object), metadata: { ...metadata, holdfast: timeless } }))
}

// Nothing to serve yet (a remote source that has never answered): never an empty 200, never 401.
function notReady(res: ServerResponse): void {
  sendJson(res, 503, { errorCode: 'GENERAL', errorDetails: 'no flag definitions are available yet' }, { 'Retry-After': '5' })
}

// Between the OFREP cap and the 1 MiB transport cap the body is read, never parsed: a context that
// large is a bad context (400), not a transport problem.
function tooBig(res: ServerResponse, limits: RequestLimits, key?: string): void {
  sendJson(res, 400, { ...(key === undefined ? {} : { key }), errorCode: 'INVALID_CONTEXT', errorDetails: `evaluation requests are limited to ${limits.maxBodyBytes} bytes` })
}

const timeDependence = new WeakMap<object, boolean>()
function timeDependent(definitions: object): boolean {
  let result = timeDependence.get(definitions)
  if (result === undefined) timeDependence.set(definitions, (result = JSON.stringify(definitions).includes('$flagd.timestamp')))
  return result
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
