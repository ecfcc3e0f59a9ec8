// One JSON POST with a timeout and an outer abort, every way it can end turned into a value:
// a response (whatever its status, body read), a timeout, a network error, or an abort from
// outside. Flag fetches and event delivery both go through it, so both classify failures alike.
//
// The timeout settles the call by itself: a custom `fetch` (a test double, an old polyfill, a
// wrapper that drops `signal`) may ignore the AbortSignal and never settle, and a hung `fetch`
// must not hang `start()`, `refresh()` or `close()`.
import { positiveOr } from './backoff'
import { realClock } from './clock'
import { HoldfastError } from './errors'
import type { Clock, HeadersOption } from '../types'

/** How a request ended. `response` includes any HTTP status; its body is already read as `text`. */
export type PostOutcome =
  | { kind: 'response'; response: Response; text: string; /** The configured headers it went out with (a function's answer), as JSON. */ sent?: string }
  | { kind: 'error'; error: HoldfastError }
  | { kind: 'aborted' }

/** Options of `postJson`. */
export interface PostJsonOptions {
  fetch: typeof fetch
  url: string
  body: string
  /** Configured headers; a function is called per request, its promise awaited within the timeout (a throw or rejection is a `NETWORK` error, tried again later). */
  headers?: HeadersOption
  /** Extra headers set by the caller, after the configured ones. */
  extraHeaders?: Record<string, string>
  /** The request (and reading its body) must finish within this many ms, else `TIMEOUT`. */
  timeoutMs: number
  /** Aborts from outside (a context switch, `close()` running out of time): the outcome is `aborted`. */
  signal?: AbortSignal
  /** Ask the browser to finish the request even if the page goes away. Default false. */
  keepalive?: boolean
  /** `manual`: a redirect comes back as the answer (opaque in a browser), not followed. Default `follow`. */
  redirect?: RequestRedirect
  /** Timers of the timeout. Default: the real clock. */
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>
}

/** Sends one JSON POST; never rejects (see `PostOutcome`). */
export async function postJson(options: PostJsonOptions): Promise<PostOutcome> {
  // An option left undefined is absent to fetch (a WebIDL dictionary member): its default holds.
  const init: RequestInit = { method: 'POST', body: options.body, keepalive: options.keepalive, redirect: options.redirect }

  const controller = new AbortController()
  let timedOut = false
  const { setTimeout: set, clearTimeout: clear } = options.clock ?? realClock
  // Settles as soon as the request is aborted, whether or not `fetch` honours the signal.
  const abandoned = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new Error('aborted'))))
  abandoned.catch(() => {})
  const timeoutMs = positiveOr(options.timeoutMs, 5000)
  const timer = set(() => {
    timedOut = true
    controller.abort()
  }, timeoutMs)
  const onOuterAbort = () => controller.abort()
  if (options.signal?.aborted) controller.abort()
  else options.signal?.addEventListener('abort', onOuterAbort)
  init.signal = controller.signal
  // A headers callback that throws or rejects (a token not ready yet) may work next time: NETWORK.
  let inHeaders = true
  try {
    if (controller.signal.aborted) throw new Error('aborted')
    let configured = typeof options.headers === 'function' ? options.headers() : options.headers
    // A promise (an async token getter) is awaited within the timeout; a plain object is used at
    // once, so a request made while the page hides still starts in that task.
    if (typeof (configured as PromiseLike<unknown> | undefined)?.then === 'function') configured = await Promise.race([configured, abandoned])
    init.headers = { ...(configured as Record<string, string> | undefined), 'Content-Type': 'application/json', ...options.extraHeaders }
    // As sent: an object the app refills (`<FlagProvider headers>`) may name another key by the answer.
    const sent = JSON.stringify(configured)
    inHeaders = false
    const response = await Promise.race([options.fetch(options.url, init), abandoned])
    // Reading the body is part of the request: a hang or reset here is a timeout or network error.
    const text = await Promise.race([response.text(), abandoned])
    return { kind: 'response', response, text, sent }
  } catch (error) {
    if (options.signal?.aborted && !timedOut) return { kind: 'aborted' }
    if (timedOut) return { kind: 'error', error: new HoldfastError('TIMEOUT', `no answer within ${timeoutMs} ms`) }
    return { kind: 'error', error: new HoldfastError('NETWORK', `${inHeaders ? 'the headers option threw' : 'request failed'}: ${describe(error)}`) }
  } finally {
    clear(timer)
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
}

/**
 * Joins a base URL and a path with exactly one slash between them, whatever slashes either has
 * (`https://x/` + `/ofrep/v1` → `https://x/ofrep/v1`).
 */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}

function describe(error: unknown): string {
  try {
    if (error instanceof Error) {
      const cause = (error as { cause?: unknown }).cause
      return cause instanceof Error ? `${error.message} (${cause.message})` : error.message
    }
    return String(error)
  } catch {
    return 'unknown error'
  }
}
