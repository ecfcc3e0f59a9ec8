// Shared by the bench sections: OFREP bodies, a fetch that answers from memory, timing helpers.
// Every section imports the BUILT packages (packages/*/dist through their `exports` map), so run
// `npm run build` first; what is measured is what users install.
import { createServer } from 'node:net'

/** `n` flags of mixed types, as a flag server would send them. `round` changes every value. */
export function flagEntries(n, round = 0) {
  const flags = []
  for (let i = 0; i < n; i++) {
    const kind = i % 4
    const flip = (i + round) % 2 === 0
    const entry = { key: `flag-${i}`, reason: 'TARGETING_MATCH', variant: flip ? 'on' : 'off', metadata: { team: 'growth' } }
    if (kind === 0) entry.value = flip
    else if (kind === 1) entry.value = flip ? `variant-a-${i}` : `variant-b-${i}`
    else if (kind === 2) entry.value = i + round
    else entry.value = { color: flip ? 'red' : 'blue', limit: i + round }
    flags.push(entry)
  }
  return flags
}

export const bodyOf = (flags) => JSON.stringify({ flags })

/**
 * A `fetch` that answers every request with whatever `current()` returns (an OFREP body string),
 * as `new Response(body, {content-type: application/json})`; or never answers (until aborted).
 */
export function memoryFetch(current) {
  return async (_url, init) => {
    const body = current()
    if (body === undefined)
      return new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))
    return new Response(body, { headers: { 'content-type': 'application/json' } })
  }
}

/** A TCP port nothing listens on (bound, then released). */
export function unusedPort() {
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Median over `rounds` of the mean ns per call of a synchronous loop of `iterations`. */
export function nsPerOp(fn, { iterations = 200_000, rounds = 15, warmup = 3 } = {}) {
  const samples = []
  for (let r = 0; r < rounds + warmup; r++) {
    const start = process.hrtime.bigint()
    fn(iterations)
    const ns = Number(process.hrtime.bigint() - start) / iterations
    if (r >= warmup) samples.push(ns)
  }
  return median(samples)
}

/**
 * A section reports rows of { group, metric, value, unit, extra?, env? } as one JSON line on
 * stdout (`env`: what it ran in beyond Node, printed under the table); a row that could not be
 * measured has { group, metric, skipped: 'skipped: why' } instead.
 */
export function report(rows) {
  process.stdout.write(`${JSON.stringify(rows)}\n`)
}

export const quietLogger = { warn() {}, error() {}, debug() {} }
