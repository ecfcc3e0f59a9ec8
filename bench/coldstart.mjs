// Cold start from the IndexedDB cache (fake-indexeddb in Node): a first client fetches 1,000
// flags and persists them; then, round after round, a fresh client whose network never answers
// is timed from `createClient` to `getStatus().source === 'cache'` (values served from cache).
import 'fake-indexeddb/auto'
import { createClient } from '@holdfast/core'
import { createStore, keys } from 'idb-keyval'
import { bodyOf, flagEntries, median, memoryFetch, quietLogger, report } from './common.mjs'

const N = 1000
const url = 'http://flags.invalid'
const context = { targetingKey: 'bench-user' }
const base = { url, context, refreshOnFocus: false, logger: quietLogger, storageName: 'holdfast-bench' }

const seed = createClient({ ...base, fetch: memoryFetch(() => bodyOf(flagEntries(N))) })
const seeded = await seed.start()
if (seeded.storage !== 'indexeddb' || seeded.state !== 'ready') throw new Error(`seeding failed: ${JSON.stringify(seeded)}`)
// The cache write is fire-and-forget; wait until the entry is in the database.
const db = createStore('holdfast-bench', 'keyval')
for (let i = 0; !(await keys(db)).some((k) => String(k).startsWith('holdfast:flags:')); i++) {
  if (i > 200) throw new Error('the cache entry never appeared')
  await new Promise((r) => setTimeout(r, 10))
}
await seed.close()

const samples = []
for (let r = 0; r < 25; r++) {
  const start = performance.now()
  // `fetch` never answers (until `close()` aborts it): only the cache can serve values.
  const client = createClient({ ...base, fetch: memoryFetch(() => undefined) })
  const fromCache = new Promise((resolve) => {
    const stop = client.subscribe(() => {
      if (client.getStatus().source === 'cache') {
        stop()
        resolve()
      }
    })
  })
  void client.start()
  await fromCache
  const ms = performance.now() - start
  if (client.getValue('flag-2', -1) !== 2) throw new Error('cached value not served')
  await client.close()
  if (r >= 5) samples.push(ms)
  // Let the read's "used at" rewrite land before the next round opens the database again.
  await new Promise((r) => setTimeout(r, 20))
}
report([{ group: 'cold start (fake-indexeddb in Node)', metric: 'createClient → 1,000 cached flags served (source: cache)', value: median(samples), unit: 'ms' }])
