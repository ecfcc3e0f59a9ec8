// Server-side: fetch one user's flags to render them into the first HTML. Uses only `fetch`, so
// it runs in Node 18+, edge runtimes and workers; it touches no DOM and no IndexedDB.
import { fetchFlags } from './protocol/fetchFlags'
import type { Bootstrap, EvaluationContext } from './types'

/** Options of `fetchBootstrap`. */
export interface FetchBootstrapOptions {
  /** OFREP base URL. */
  url: string
  /** The user to evaluate for. */
  context: EvaluationContext
  /** Sent with the request (e.g. an API key). */
  headers?: Record<string, string> | (() => Record<string, string>)
  /** How long the page render may wait for flags. Default 1,000 ms. */
  timeoutMs?: number
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch
}

/**
 * Fetches a bootstrap snapshot for `context`. Resolves `null` on any failure — down, slow, non-2xx,
 * unreadable body — and never rejects, so a flag outage cannot fail a page render: the browser then
 * falls back to its cache. Includes the server's `ETag` as `etag` when one was sent.
 */
export async function fetchBootstrap(options: FetchBootstrapOptions): Promise<Bootstrap | null> {
  try {
    const result = await fetchFlags({
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      url: options.url,
      context: options.context,
      headers: options.headers,
      timeoutMs: options.timeoutMs ?? 1000,
      now: Date.now,
    })
    if (result.kind !== 'ok') return null
    const bootstrap: Bootstrap = { context: options.context, flags: result.entries, fetchedAt: Date.now() }
    if (result.etag !== undefined) bootstrap.etag = result.etag
    return bootstrap
  } catch {
    return null
  }
}
