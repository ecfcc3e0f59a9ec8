// ns per getGate with 1,000 flags held (loaded by `bootstrap`): one present key, one missing key,
// and 1,000 distinct keys in rotation (no single-key cache effects), with exposures off and on.
import { createClient } from '@holdfast/core'
import { flagEntries, nsPerOp, quietLogger, report, unusedPort } from './common.mjs'

const N = 1000
// Booleans only, so every getGate is a hit of the right type.
const flags = flagEntries(N).map((f, i) => ({ ...f, value: i % 2 === 0 }))
const bootstrap = { context: { targetingKey: 'bench-user' }, flags, fetchedAt: Date.now() }
const presentKeys = flags.map((f) => f.key)
const missingKeys = presentKeys.map((k) => `missing-${k}`)
const port = await unusedPort()

const variants = [
  { label: 'exposures off (no `events`)', events: false },
  // Nothing is sent during the loop: the queue only flushes on its timer, at batchSize or on close.
  { label: 'exposures on', events: { url: `http://127.0.0.1:${port}/events`, flushIntervalMs: 3_600_000, batchSize: 1_000_000 } },
]

let sink = 0
const rows = []
for (const variant of variants) {
  const client = createClient({
    url: `http://127.0.0.1:${port}`,
    context: { targetingKey: 'bench-user' },
    bootstrap,
    storage: 'memory',
    events: variant.events,
    refreshOnFocus: false,
    requestTimeoutMs: 200,
    logger: quietLogger,
  })
  if (client.getGate('flag-0') !== true) throw new Error('bootstrap not applied')
  const one = (key) => (n) => {
    for (let i = 0; i < n; i++) if (client.getGate(key)) sink++
  }
  const rotate = (keys) => (n) => {
    for (let i = 0; i < n; i++) if (client.getGate(keys[i % N])) sink++
  }
  rows.push(
    { group: 'evaluation (1,000 flags held)', metric: `getGate, present flag, ${variant.label}`, value: nsPerOp(one('flag-500')), unit: 'ns/call' },
    { group: 'evaluation (1,000 flags held)', metric: `getGate, missing flag, ${variant.label}`, value: nsPerOp(one('no-such-flag')), unit: 'ns/call' },
    { group: 'evaluation (1,000 flags held)', metric: `getGate, 1,000 present keys in rotation, ${variant.label}`, value: nsPerOp(rotate(presentKeys)), unit: 'ns/call' },
    { group: 'evaluation (1,000 flags held)', metric: `getGate, 1,000 missing keys in rotation, ${variant.label}`, value: nsPerOp(rotate(missingKeys)), unit: 'ns/call' },
  )
  if (variant.events) {
    const stats = client.getEventStats()
    rows.push({ group: 'evaluation (1,000 flags held)', metric: 'exposure events queued by all those calls (one per flag)', value: stats.queued + stats.sent + stats.dropped, unit: 'events' })
  }
  await client.close()
}
if (sink === 0) throw new Error('unreachable')
report(rows)
