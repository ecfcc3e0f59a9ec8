import type { IncomingMessage, ServerResponse } from 'node:http'
import { answerBodyFailure, readBody, refuseEncoded, sendJson } from '../http/body'
import type { EventsMetrics } from './metrics'
import { EVENT_LIMITS, readEventBatch } from './schema'
import type { EventSink } from './sink'
import { StoreStalledError } from './storeStall'

/**
 * The events route's check before the body ({@link handleEvents} runs after it): anything but
 * `application/json` is answered 415 (counted) and true returned. A `text/plain` post is a
 * "simple" cross-site request that skips the CORS preflight.
 */
export function refuseEvents(req: IncomingMessage, res: ServerResponse, deps: { metrics?: EventsMetrics }): boolean {
  if (isJson(req.headers['content-type'])) {
    if (!refuseEncoded(req, res)) return false
  } else {
    sendJson(res, 415, { errorCode: 'UNSUPPORTED_MEDIA_TYPE', errorDetails: 'events must be sent as Content-Type: application/json' }, { Connection: 'close' })
  }
  deps.metrics?.rejected.inc({ reason: 'unsupported_media_type' })
  return true
}

/**
 * `POST /holdfast/v1/events` (CONTRACT §2.2), after {@link refuseEvents}: reads at
 * most 1 MiB, validates the batch with the zod schema (more than 10,000 events is a 413 the
 * client splits; any invalid event refuses the whole batch with 400), stores the events whose `id` is new, and answers `202 {"accepted": n, "duplicates":
 * m}` only once they are fsynced. A failed write is a 500 the client retries; a store that does
 * not answer within the sink's bound (a hung mount) is a 503 with `Retry-After`, at once while it
 * stays hung.
 */
export async function handleEvents(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { sink: EventSink; metrics?: EventsMetrics; forwardedBytesCap?: number; takenOver?: () => { by: string } | undefined },
): Promise<void> {
  const rejected = deps.metrics?.rejected
  const body = await readBody(req, EVENT_LIMITS.maxBodyBytes, true)
  if (!body.ok) {
    if (body.reason === 'too-large') rejected?.inc({ reason: 'too_large' })
    return answerBodyFailure(res, body.reason)
  }
  // JSON is UTF-8 (RFC 8259): ids differing in a byte that is not would both read as U+FFFD, and
  // the second event would be stored as nothing but a "duplicate" of the first.
  if (body.invalidUtf8) {
    rejected?.inc({ reason: 'invalid' })
    return sendJson(res, 400, { errorCode: 'PARSE_ERROR', errorDetails: 'the request body is not valid UTF-8' })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(body.text)
  } catch {
    rejected?.inc({ reason: 'invalid' })
    return sendJson(res, 400, { errorCode: 'PARSE_ERROR', errorDetails: 'the request body is not valid JSON' })
  }
  const batch = readEventBatch(parsed)
  if (!batch.ok && batch.tooMany) {
    rejected?.inc({ reason: 'too_large' })
    return sendJson(res, 413, { errorCode: 'TOO_MANY_EVENTS', errorDetails: batch.error })
  }
  if (!batch.ok) {
    rejected?.inc({ reason: 'invalid' })
    return sendJson(res, 400, { errorCode: 'INVALID_EVENTS', errorDetails: batch.error })
  }
  const tooLarge = deps.forwardedBytesCap === undefined ? undefined : undeliverable(batch.events, deps.forwardedBytesCap)
  if (tooLarge) {
    rejected?.inc({ reason: 'too_large' })
    return sendJson(res, 413, {
      errorCode: 'EVENT_TOO_LARGE',
      errorDetails: `events[${tooLarge.index}] is ${tooLarge.bytes.toLocaleString('en-US')} bytes as this relay forwards it (JSON written out again: a number such as 1E15 becomes 1000000000000000), over the upstream's ${tooLarge.cap.toLocaleString('en-US')}; it could never be delivered`,
    })
  }
  // The events file or spool is another server's now (pipeline.ts): storing here would lose events.
  const holder = deps.takenOver?.()
  if (holder) {
    rejected?.inc({ reason: 'store_in_use' })
    return sendJson(res, 503, { errorCode: 'STORE_IN_USE', errorDetails: `the events store was taken over by another server (${holder.by}); retry later` }, { 'Retry-After': '5' })
  }
  try {
    sendJson(res, 202, await deps.sink.accept(batch.events))
  } catch (error) {
    if (error instanceof StoreStalledError) {
      rejected?.inc({ reason: 'store_stalled' })
      return sendJson(res, 503, { errorCode: 'STORE_STALLED', errorDetails: `the events could not be stored: ${error.message}; retry later` }, { 'Retry-After': '5' })
    }
    rejected?.inc({ reason: 'store_failed' })
    sendJson(res, 500, { errorDetails: 'the events could not be stored; retry later' })
  }
}

/** `application/json`, any case, with or without parameters (`; charset=utf-8`). */
export function isJson(contentType: string | undefined): boolean {
  return typeof contentType === 'string' && contentType.split(';')[0].trim().toLowerCase() === 'application/json'
}

/**
 * The first event of `events` that the forwarder could not deliver: alone in a batch, as it
 * sends it (`{"events":[…]}` of the event written out again by JSON.stringify), over `cap` bytes.
 * Written out again, an event can grow (`1E15` is sent as `1000000000000000`, `1E20` as 21
 * digits; strings never grow): before, a relay answered 202 for a lone event under its 1 MiB
 * intake cap that came out at several MiB, the upstream answered 413, and the event was dropped.
 * The whole batch is measured first, so a batch that fits costs one stringify.
 */
function undeliverable(events: unknown[], cap: number): { index: number; bytes: number; cap: number } | undefined {
  const wrapper = Buffer.byteLength('{"events":[]}')
  if (Buffer.byteLength(JSON.stringify(events)) - 2 + wrapper <= cap) return undefined
  for (let index = 0; index < events.length; index++) {
    const bytes = Buffer.byteLength(JSON.stringify(events[index])) + wrapper
    if (bytes > cap) return { index, bytes, cap }
  }
  return undefined
}
