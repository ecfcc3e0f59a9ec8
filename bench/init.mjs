// createClient with a 1,000-flag bootstrap (a server-rendered page's first render): from the call
// to the first evaluation, nothing started. Side by side, in the same process and loop, the peers
// the issue compared with, each handed the same 1,000 flags in its own format and asked for the
// first flag: Unleash (`unleash-proxy-client`, `bootstrap`) and GrowthBook (`features`).
import { createClient } from '@holdfast/core'
import { GrowthBook } from '@growthbook/growthbook'
import { InMemoryStorageProvider, UnleashClient } from 'unleash-proxy-client'
import { flagEntries, median, quietLogger, report } from './common.mjs'

const N = 1000
const flags = flagEntries(N)
const bootstrap = { context: { targetingKey: 'bench-user' }, flags, fetchedAt: Date.now(), etag: '"e"' }
const options = { url: 'http://flags.invalid', context: { targetingKey: 'bench-user' }, bootstrap, storage: 'memory', logger: quietLogger }

// The same flags as Unleash toggles (a variant with a payload) and GrowthBook features (a default value).
const toggles = flags.map((f) => ({ name: f.key, enabled: f.value !== false, impressionData: false, variant: { name: f.variant, enabled: true, payload: { type: 'json', value: JSON.stringify(f.value) } } }))
const features = Object.fromEntries(flags.map((f) => [f.key, { defaultValue: f.value }]))

/** Median ms of `run` over 50 rounds after 10 warm-up rounds; `run` returns the first flag's value. */
function time(run) {
  const samples = []
  for (let r = 0; r < 60; r++) {
    const start = process.hrtime.bigint()
    if (!run()) throw new Error('the first flag was not served from what was handed in')
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (r >= 10) samples.push(ms)
  }
  return median(samples)
}
const unleash = time(() => {
  const client = new UnleashClient({ url: 'http://flags.invalid/proxy', clientKey: 'k', appName: 'bench', bootstrap: toggles, storageProvider: new InMemoryStorageProvider(), refreshInterval: 0, disableMetrics: true })
  return client.isEnabled('flag-0')
})
const growthbook = time(() => new GrowthBook({ features, attributes: { id: 'bench-user' } }).isOn('flag-0'))
// As a server-rendered page gets its snapshot: JSON text in the HTML, parsed, then handed in.
const texts = { holdfast: JSON.stringify(bootstrap), unleash: JSON.stringify(toggles), growthbook: JSON.stringify(features) }
const parsed = {
  holdfast: time(() => createClient({ ...options, bootstrap: JSON.parse(texts.holdfast) }).getGate('flag-0')),
  unleash: time(() => new UnleashClient({ url: 'http://flags.invalid/proxy', clientKey: 'k', appName: 'bench', bootstrap: JSON.parse(texts.unleash), storageProvider: new InMemoryStorageProvider(), refreshInterval: 0, disableMetrics: true }).isEnabled('flag-0')),
  growthbook: time(() => new GrowthBook({ features: JSON.parse(texts.growthbook), attributes: { id: 'bench-user' } }).isOn('flag-0')),
}

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
  { group: 'startup', metric: 'createClient with a 1,000-flag bootstrap → first getGate', value: init, unit: 'ms', extra: `${(init / median(parse)).toFixed(1)}× JSON.parse of it; ${(init / unleash).toFixed(2)}× Unleash, ${(init / growthbook).toFixed(2)}× GrowthBook` },
  { group: 'startup', metric: 'peer: Unleash UnleashClient with the same 1,000 toggles as bootstrap → first isEnabled', value: unleash, unit: 'ms' },
  { group: 'startup', metric: 'peer: GrowthBook with the same 1,000 features → first isOn', value: growthbook, unit: 'ms' },
  { group: 'startup', metric: 'the same, from the snapshot as JSON text (parse + init → first flag): Holdfast', value: parsed.holdfast, unit: 'ms', extra: `${(parsed.holdfast / parsed.unleash).toFixed(2)}× Unleash (${parsed.unleash.toFixed(2)} ms), ${(parsed.holdfast / parsed.growthbook).toFixed(2)}× GrowthBook (${parsed.growthbook.toFixed(2)} ms)` },
])
