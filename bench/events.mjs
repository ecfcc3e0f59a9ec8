// The event queue, in Node with fake-indexeddb: what `logEvent` costs the app (the synchronous part:
// the plain-JSON copy, the storage key, the bound), how long until a burst of 1,000 events is in
// IndexedDB, and how long `flush()` takes to send 1,000 queued events (in batches of 100) to a
// receiver answering from memory. Each round uses a fresh database.
import 'fake-indexeddb/auto'
import { createClient } from '@holdfast/core'
import { createStore, keys } from 'idb-keyval'
import { median, quietLogger, report } from './common.mjs'

const N = 1000
let posted = 0
const receiver = async (_url, init) => {
  posted += JSON.parse(String(init.body)).events.length
  return new Response('{"accepted":100,"duplicates":0}', { status: 202, headers: { 'content-type': 'application/json' } })
}
const fetchImpl = receiver

const logUs = []
const persistMs = []
const flushMs = []
for (let r = 0; r < 12; r++) {
  const storageName = `holdfast-bench-events-${r}`
  // Not started: no flag request, no interval, and a full batch does not send by itself, so the
  // burst is measured alone and `flush()` then sends all of it.
  const client = createClient({
    url: 'http://flags.invalid',
    context: { targetingKey: 'bench-user' },
    storageName,
    logger: quietLogger,
    fetch: fetchImpl,
    events: { url: 'http://flags.invalid/events', batchSize: 100 },
  })
  const db = createStore(storageName, 'keyval')
  const started = performance.now()
  for (let i = 0; i < N; i++) client.logEvent('checkout-step', { value: i, metadata: { plan: 'pro', step: i % 5, trial: false } })
  const logged = performance.now()
  for (let i = 0; (await keys(db)).filter((k) => String(k).startsWith('holdfast:event:')).length < N; i++) {
    if (i > 2000) throw new Error('the events never reached IndexedDB')
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const persisted = performance.now()
  posted = 0
  await client.flush()
  const flushed = performance.now()
  if (posted !== N || client.getEventStats().queued !== 0) throw new Error(`flush sent ${posted} of ${N}`)
  await client.close()
  if (r >= 2) {
    logUs.push(((logged - started) * 1000) / N)
    persistMs.push(persisted - started)
    flushMs.push(flushed - persisted)
  }
}

report([
  { group: 'events (fake-indexeddb in Node)', metric: '`logEvent` with metadata, synchronous cost per event', value: median(logUs), unit: 'µs' },
  { group: 'events (fake-indexeddb in Node)', metric: '1,000 events logged → all in IndexedDB', value: median(persistMs), unit: 'ms' },
  { group: 'events (fake-indexeddb in Node)', metric: '`flush()` of 1,000 queued events, batches of 100', value: median(flushMs), unit: 'ms' },
])
