// Applying a 10,000-flag OFREP response through the public API: `refresh()` with a `fetch` that
// answers `new Response(body)`, timed until it resolves (body read, parsed, validated, merged,
// store updated, listeners notified), against `JSON.parse` of the same body. The two are timed
// alternately, round by round, so a busy machine slows both alike; the ratio is the median of the
// per-round ratios.
import { createClient } from '@holdfast/core'
import { bodyOf, flagEntries, median, memoryFetch, quietLogger, report } from './common.mjs'

const N = 10_000
const WARMUP = 5
const ROUNDS = 40
const bodies = [bodyOf(flagEntries(N, 0)), bodyOf(flagEntries(N, 1))]
let next = bodies[0]
let notified = 0
let flagNotified = 0
const client = createClient({
  url: 'http://flags.invalid',
  context: { targetingKey: 'bench-user' },
  storage: 'memory',
  refreshOnFocus: false,
  fetch: memoryFetch(() => next),
  logger: quietLogger,
})
client.subscribe(() => notified++)
client.subscribeFlag('flag-1', () => flagNotified++)

let sink = 0
async function rounds(bodyFor) {
  const parse = []
  const refresh = []
  const ratio = []
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    next = bodyFor(r)
    let start = performance.now()
    sink += JSON.parse(next).flags.length
    const parseMs = performance.now() - start
    start = performance.now()
    const status = await client.refresh()
    const refreshMs = performance.now() - start
    if (status.state !== 'ready') throw new Error(`refresh failed: ${JSON.stringify(status)}`)
    if (r < WARMUP) continue
    parse.push(parseMs)
    refresh.push(refreshMs)
    ratio.push(refreshMs / parseMs)
  }
  return { parse: median(parse), refresh: median(refresh), ratio: median(ratio) }
}

// Alternating bodies: every refresh changes every value, so every flag listener has news.
const changed = await rounds((r) => bodies[r % 2])
const changedFlagCalls = flagNotified
if (changedFlagCalls !== WARMUP + ROUNDS) throw new Error(`flag-1 listener called ${changedFlagCalls} times, want ${WARMUP + ROUNDS}`)

// The same body again and again: an identical re-confirmation changes no flag.
const notifiedBefore = notified
const same = await rounds(() => next)
// `subscribe` hears every success (Status.lastSuccessAt moves); `subscribeFlag` must hear nothing.
const spurious = flagNotified - changedFlagCalls
const globalCalls = notified - notifiedBefore
await client.close()
if (sink === 0) throw new Error('unreachable')

const g = 'applying a 10,000-flag OFREP response'
const kib = (Buffer.byteLength(bodies[0]) / 1024).toFixed(0)
report([
  { group: g, metric: `JSON.parse of the body (${kib} KiB)`, value: changed.parse, unit: 'ms' },
  { group: g, metric: 'refresh(), every value changed: Response → store updated, listeners told', value: changed.refresh, unit: 'ms' },
  { group: g, metric: '  ratio to JSON.parse (target ≤ 3×)', value: changed.ratio, unit: '×' },
  { group: g, metric: 'refresh(), identical re-confirmation (nothing changes)', value: same.refresh, unit: 'ms' },
  { group: g, metric: '  ratio to JSON.parse', value: same.ratio, unit: '×' },
  { group: g, metric: `flag listener calls, ${WARMUP + ROUNDS} identical re-confirmations (want 0)`, value: spurious, unit: 'calls' },
  { group: g, metric: `subscribe() calls, same (lastSuccessAt moves each time: ${WARMUP + ROUNDS})`, value: globalCalls, unit: 'calls' },
])
