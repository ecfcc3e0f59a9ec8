// One events request (CONTRACT §2.2) with every way it can end turned into a value the queue acts
// on: delivered, too large (split it), rejected for good (drop it), or worth retrying.
import { parseRetryAfter } from './backoff'
import { HoldfastError, httpError, isRetryable } from './errors'
import { postJson } from './postJson'
import type { Clock, HoldfastEvent } from './types'

/**
 * Browsers refuse a `keepalive` request once the bodies of all of a page's keepalive requests in
 * flight pass 64 KiB (Fetch spec, "keepalive"). Requests are sent one at a time, each under this.
 */
export const KEEPALIVE_MAX_BYTES = 60_000

export type PostResult =
  | { kind: 'ok' }
  | { kind: 'too-large'; error: HoldfastError }
  | { kind: 'rejected'; error: HoldfastError }
  | { kind: 'retry'; error: HoldfastError }
  | { kind: 'aborted' }

export interface PostEventsOptions {
  fetch: typeof fetch
  url: string
  headers?: Record<string, string> | (() => Record<string, string>)
  events: HoldfastEvent[]
  timeoutMs: number
  /** Ask the browser to finish the request even if the page goes away (only when the body fits). */
  keepalive: boolean
  /** Aborts from outside (`close()` running out of time); the result is `aborted`. */
  signal: AbortSignal
  clock: Clock
}

export async function postEvents(options: PostEventsOptions): Promise<PostResult> {
  let body: string
  try {
    body = JSON.stringify({ events: options.events })
  } catch (error) {
    // Never going to work (a BigInt, a cycle): dropping it keeps the queue moving.
    return { kind: 'rejected', error: new HoldfastError('HTTP', `events cannot be serialised: ${String(error)}`) }
  }
  const outcome = await postJson({
    fetch: options.fetch,
    url: options.url,
    body,
    headers: options.headers,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    keepalive: options.keepalive && byteLength(body) <= KEEPALIVE_MAX_BYTES,
    setTimeout: options.clock.setTimeout,
    clearTimeout: options.clock.clearTimeout,
  })
  if (outcome.kind === 'aborted') return outcome
  // Network errors, timeouts and a throwing headers callback may all work next time.
  if (outcome.kind === 'error') return { kind: 'retry', error: outcome.error }
  const { response, text } = outcome
  const status = response.status
  if (status >= 200 && status < 300) return { kind: 'ok' }
  const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'), options.clock.now())
  const error = httpError(status, text ? `: ${text.slice(0, 200)}` : '', retryAfterMs)
  if (status === 413) return { kind: 'too-large', error }
  // CONTRACT §6: a permanent 4xx drops the batch, so one poison batch cannot block the queue.
  // 408 and 429 are the 4xx that mean "later", as everywhere else (isRetryable).
  const permanent = (status >= 400 && status < 500 && status !== 408 && status !== 429) || !isRetryable(error)
  return permanent ? { kind: 'rejected', error } : { kind: 'retry', error }
}

/**
 * Splits a batch into groups whose request bodies stay under KEEPALIVE_MAX_BYTES, in order. An
 * event too large on its own gets a group of its own (and is sent without keepalive).
 */
export function splitForKeepalive<T extends { event: HoldfastEvent }>(items: T[]): T[][] {
  const groups: T[][] = []
  let group: T[] = []
  let size = '{"events":[]}'.length
  for (const item of items) {
    const bytes = byteLength(JSON.stringify(item.event)) + 1
    if (group.length > 0 && size + bytes > KEEPALIVE_MAX_BYTES) {
      groups.push(group)
      group = []
      size = '{"events":[]}'.length
    }
    group.push(item)
    size += bytes
  }
  if (group.length > 0) groups.push(group)
  return groups
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length
}
