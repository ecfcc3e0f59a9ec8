// One JSON POST with a timeout and an outer abort, every way it can end turned into a value:
// a response (whatever its status, body read), a timeout, a network error, or an abort from
// outside. Flag fetches (transport.ts) and event delivery (eventTransport.ts) both go through it,
// so both classify failures the same way.
import { HoldfastError } from './errors'

export type PostOutcome =
  | { kind: 'response'; response: Response; text: string }
  | { kind: 'error'; error: HoldfastError }
  | { kind: 'aborted' }

export interface PostJsonOptions {
  fetch: typeof fetch
  url: string
  body: string
  headers?: Record<string, string> | (() => Record<string, string>)
  /** Extra headers set by the caller, after the configured ones. */
  extraHeaders?: Record<string, string>
  timeoutMs: number
  /** Aborts from outside (a context switch, `close()` running out of time): the outcome is `aborted`. */
  signal?: AbortSignal
  keepalive?: boolean
  /** Timers for the timeout; default the global ones. */
  setTimeout?: (callback: () => void, ms: number) => unknown
  clearTimeout?: (handle: unknown) => void
}

export async function postJson(options: PostJsonOptions): Promise<PostOutcome> {
  let headers: Record<string, string>
  try {
    const configured = typeof options.headers === 'function' ? options.headers() : options.headers
    headers = { ...configured, 'Content-Type': 'application/json', ...options.extraHeaders }
  } catch (error) {
    // A headers callback that throws (a token not ready yet) may work next time.
    return { kind: 'error', error: new HoldfastError('NETWORK', `the headers option threw: ${describe(error)}`) }
  }
  const init: RequestInit = { method: 'POST', headers, body: options.body }
  if (options.keepalive) init.keepalive = true

  const controller = new AbortController()
  let timedOut = false
  const set = options.setTimeout ?? ((callback: () => void, ms: number) => setTimeout(callback, ms))
  const clear = options.clearTimeout ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>))
  const timer = set(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs)
  const onOuterAbort = () => controller.abort()
  options.signal?.addEventListener('abort', onOuterAbort)
  init.signal = controller.signal
  try {
    const response = await options.fetch(options.url, init)
    // Reading the body is part of the request: a hang or reset here is a timeout or network error.
    const text = await response.text()
    return { kind: 'response', response, text }
  } catch (error) {
    if (options.signal?.aborted && !timedOut) return { kind: 'aborted' }
    if (timedOut) return { kind: 'error', error: new HoldfastError('TIMEOUT', `no answer within ${options.timeoutMs} ms`) }
    return { kind: 'error', error: new HoldfastError('NETWORK', `request failed: ${describe(error)}`) }
  } finally {
    clear(timer)
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message
  }
  return String(error)
}
