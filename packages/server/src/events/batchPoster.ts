// One upload of a batch to the upstream events sink, and what its answer says, for the
// forwarder's table (forwarder.ts) to act on: the status, `Retry-After` and `Date`, a redirect or
// an HTML page that is not a sink, and the event a 400/422 names.
import type { ForwarderClock } from './forwarderClock'
import { readResponseStart } from './responseStart'
import type { ReceivedEvent } from './schema'

/** Bytes of a 400/422 answer read for the refused event's index. */
const REFUSAL_BYTES = 4096

/**
 * The index of the event a 400/422 names: the reference sink (routes.ts) answers
 * `{"errorDetails": "events[3].name: …"}` for the first invalid event. Undefined when it names none.
 */
export function refusedIndex(body: string): number | undefined {
  try {
    const details = (JSON.parse(body) as { errorDetails?: unknown } | null)?.errorDetails
    const match = typeof details === 'string' ? /^events\[(\d{1,9})\]/.exec(details) : null
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

/** What one upload came to: the sink's answer, or why there was none (`error`). */
export interface PostResult {
  /** The sink's HTTP status; absent when it did not answer. */
  status?: number
  /** Its `Retry-After` header, as sent. */
  retryAfter?: string | null
  /** Its `Date` header, as sent (an HTTP-date `Retry-After` is read against it). */
  date?: string | null
  /** Why the answer is not a sink's (a redirect, an HTML page); absent when it is one. */
  notSink?: string
  /** The index of the event a 400/422/413 names ({@link refusedIndex}); absent when none. */
  refused?: number
  /** The first few KiB of a 400/422/413 answer, kept with dead-lettered events. */
  body?: string
  /** The network error, or 'timed out or stopped'; absent when the sink answered. */
  error?: string
}

/** Options of {@link createBatchPoster}: the forwarder's, its defaults already applied. */
export interface BatchPosterOptions {
  /** The upstream events endpoint. Required. */
  url: string
  /** Headers sent with every batch. Default none. */
  headers?: Record<string, string>
  /** Per-request timeout. Default 10,000 ms. */
  timeoutMs?: number
  /** The `fetch` the uploads go through. Required. */
  fetch: typeof fetch
  /** The timers of the timeout. Required. */
  clock: Pick<ForwarderClock, 'setTimeout' | 'clearTimeout'>
}

/** Uploads one batch at a time; `abort()` ends the upload in flight (the forwarder stopping). */
export interface BatchPoster {
  /** Posts `{events}`; resolves with what the answer said, never rejects. */
  post(events: ReceivedEvent[]): Promise<PostResult>
  /** Aborts the upload in flight, if any: its `post` resolves with `error`. */
  abort(): void
}

/** Creates a {@link BatchPoster} for `options.url`. */
export function createBatchPoster(options: BatchPosterOptions): BatchPoster {
  const { clock } = options
  let controller: AbortController | undefined
  return {
    async post(events) {
      controller = new AbortController()
      const timer = clock.setTimeout(() => controller?.abort(), options.timeoutMs ?? 10_000)
      try {
        const response = await options.fetch(options.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', ...options.headers },
          body: JSON.stringify({ events }),
          signal: controller.signal,
          // A portal's redirect to its login page must not be followed to a 200 that looks delivered.
          redirect: 'manual',
        })
        const status = response.status
        let notSink: string | undefined
        if (status >= 300 && status < 400) notSink = `HTTP ${status}, a redirect to ${response.headers.get('Location') ?? '(no Location)'}`
        // Only the start of a 2xx HTML answer is read: a page, not a sink's short "ok".
        if (status >= 200 && status < 300 && /html/i.test(response.headers.get('Content-Type') ?? '')) {
          const reader = response.body?.getReader()
          const first = await reader?.read()
          if (first?.value && /^\s*</.test(Buffer.from(first.value).toString('utf8', 0, 256))) notSink = `HTTP ${status} with an HTML page`
          await reader?.cancel().catch(() => undefined)
        }
        // A refusal may say which event it refused: only its first few KiB are read.
        let refused: number | undefined
        let body: string | undefined
        if ((status === 400 || status === 422 || status === 413) && response.body) {
          // A body that stalls until the timeout (or breaks) names no event: the status stands.
          body = (await readResponseStart(response, REFUSAL_BYTES)).toString('utf8', 0, REFUSAL_BYTES)
          refused = refusedIndex(body)
        }
        // The answer's body is not needed; do not let a hostile sink make us buffer it.
        if (!response.bodyUsed) await response.body?.cancel().catch(() => undefined)
        return { status, retryAfter: response.headers.get('Retry-After'), date: response.headers.get('Date'), notSink, refused, body }
      } catch (error) {
        return { error: controller.signal.aborted ? 'timed out or stopped' : (error as Error).message }
      } finally {
        clock.clearTimeout(timer)
        controller = undefined
      }
    },
    abort: () => controller?.abort(),
  }
}
