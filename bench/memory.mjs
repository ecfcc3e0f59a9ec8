// Heap retained by a client holding 10,000 flags (run with --expose-gc): heapUsed after full GCs,
// minus the same before the client existed. The client loads the flags from a response (as in
// production) into a storage that keeps nothing, so the figure is the client's own memory, not a
// second copy in a memory cache; then every flag is evaluated once (memoised details) and the
// heap is measured again.
import { createClient } from '@holdfast/core'
import { bodyOf, flagEntries, memoryFetch, quietLogger, report } from './common.mjs'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const N = 10_000

async function heap() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await new Promise((r) => setImmediate(r))
  }
  return process.memoryUsage().heapUsed
}

// Persisting goes nowhere: in a browser the cached copy lives in IndexedDB, not on the JS heap.
const nowhere = { get: async () => undefined, set: async () => {}, del: async () => {}, keys: async () => [] }
let body = bodyOf(flagEntries(N))
const fetch = memoryFetch(() => body)
// Warm the code paths (JIT, lazily created module state) with a throwaway client first.
{
  const warm = createClient({ url: 'http://flags.invalid', context: { targetingKey: 'warm' }, storage: nowhere, refreshOnFocus: false, fetch, logger: quietLogger })
  await warm.refresh()
  for (let i = 0; i < N; i++) warm.getValue(`flag-${i}`, null)
  await warm.close()
}

const before = await heap()
const client = createClient({ url: 'http://flags.invalid', context: { targetingKey: 'bench-user' }, storage: nowhere, refreshOnFocus: false, fetch, logger: quietLogger })
const status = await client.refresh()
if (status.state !== 'ready') throw new Error(JSON.stringify(status))
body = undefined
const loaded = (await heap()) - before
for (let i = 0; i < N; i++) client.getValue(`flag-${i}`, null)
const evaluated = (await heap()) - before
if (client.getValue('flag-2', -1) !== 2) throw new Error('values not held')

const g = 'memory (10,000 flags held)'
const mib = (bytes) => bytes / (1024 * 1024)
report([
  { group: g, metric: 'heap retained after loading 10,000 flags', value: mib(loaded), unit: 'MiB', extra: `${Math.round(loaded / N)} B/flag` },
  { group: g, metric: 'heap retained after evaluating every flag once', value: mib(evaluated), unit: 'MiB', extra: `${Math.round(evaluated / N)} B/flag` },
])
await client.close()
