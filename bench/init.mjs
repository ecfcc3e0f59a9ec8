// createClient with a 1,000-flag bootstrap (a server-rendered page's first render): from the call
// to the first evaluation, nothing started. The peers' figure to compare with is their own init
// with the same 1,000 flags handed in (Unleash `bootstrap`, GrowthBook `features`), measured by
// the issue on the same pipeline; this row is Holdfast's side of it.
import { createClient } from '@holdfast/core'
import { flagEntries, median, quietLogger, report } from './common.mjs'

const N = 1000
const flags = flagEntries(N)
const bootstrap = { context: { targetingKey: 'bench-user' }, flags, fetchedAt: Date.now(), etag: '"e"' }
const options = { url: 'http://flags.invalid', context: { targetingKey: 'bench-user' }, bootstrap, storage: 'memory', logger: quietLogger }

let sink = 0
const samples = []
for (let r = 0; r < 60; r++) {
  const start = process.hrtime.bigint()
  const client = createClient(options)
  if (client.getGate('flag-0')) sink++
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r >= 10) samples.push(ms)
}
if (sink === 0) throw new Error('bootstrap not applied')
// JSON.parse of the same snapshot: the floor any client that reads it has to pay.
const text = JSON.stringify(bootstrap)
const parse = []
for (let r = 0; r < 60; r++) {
  const start = process.hrtime.bigint()
  JSON.parse(text)
  if (r >= 10) parse.push(Number(process.hrtime.bigint() - start) / 1e6)
}
const init = median(samples)
report([
  { group: 'startup', metric: 'createClient with a 1,000-flag bootstrap → first getGate', value: init, unit: 'ms', extra: `${(init / median(parse)).toFixed(1)}× JSON.parse of it` },
])
