// What one proxy-mode data-dir write costs the main thread: 10,000 held contexts of 10 flags each
// (the default maxContexts), serialised as the writer does (toRecords + JSON.stringify) and framed
// with its checksum (encodeGeneration). Not a test: run it on a quiet machine and read the numbers.
//   npx tsx scripts/measure-datadir-write.ts [contexts] [flags]
import { createHash } from 'node:crypto'
import { createContextCache, toContextRecord } from '../packages/server/src/flags/contextCache'
import { encodeGeneration } from '../packages/server/src/flags/generations'
import { intervalForSize } from '../packages/server/src/flags/persistence'
import type { ContextRecord } from '../packages/server/src/flags/records'

const contexts = Number(process.argv[2] ?? 10_000)
const flags = Number(process.argv[3] ?? 10)
const cache = createContextCache(contexts, 1024 * 1024 * 1024)
const at = Date.now()
const records: ContextRecord[] = Array.from({ length: contexts }, (_, i) => ({
  key: createHash('sha256').update(`visitor-${i}`).digest('base64url'),
  fetchedAt: at,
  etag: `"${i.toString(16).padStart(16, '0')}"`,
  flags: Array.from({ length: flags }, (_, f) => ({ key: `flag-${f}`, value: f % 2 === 0, variant: f % 2 === 0 ? 'on' : 'off', reason: 'TARGETING_MATCH', updatedAt: at, stale: false })),
}))
cache.load(records)

const runs: { ms: number; bytes: number }[] = []
for (let run = 0; run < 7; run++) {
  const started = performance.now()
  const payload = JSON.stringify({ kind: 'contexts', contexts: cache.toRecords() })
  const framed = encodeGeneration(payload)
  runs.push({ ms: performance.now() - started, bytes: Buffer.byteLength(framed) })
}
runs.sort((a, b) => a.ms - b.ms)
const median = runs[Math.floor(runs.length / 2)]
console.log(`${contexts} contexts x ${flags} flags: ${(median.bytes / 1e6).toFixed(1)} MB a write, ${median.ms.toFixed(1)} ms on the main thread (median of ${runs.length}; min ${runs[0].ms.toFixed(1)}, max ${runs[runs.length - 1].ms.toFixed(1)})`)
console.log(`at one write every 500 ms: ${((median.ms / 500) * 100).toFixed(1)} % of the main thread; ${((median.bytes * 2 * 3600) / 1e9).toFixed(1)} GB written an hour`)

// As the proxy writes it now (contextSaver.ts): 500 contexts made into JSON at a time, other work
// between the slices; the checksum of the whole is still one piece.
let longestSlice = 0
const slices: number[] = []
const entries = cache.entries()
const parts: string[] = []
for (let i = 0; i < entries.length; i += 500) {
  const started = performance.now()
  parts.push(entries.slice(i, i + 500).map(([key, held]) => JSON.stringify(toContextRecord(key, held))).join(','))
  slices.push(performance.now() - started)
  longestSlice = Math.max(longestSlice, slices[slices.length - 1])
}
slices.sort((a, b) => a - b)
const started = performance.now()
const framed = encodeGeneration(`{"kind":"contexts","contexts":[${parts.join(',')}]}`)
const last = performance.now() - started
const interval = intervalForSize(framed.length, 500)
console.log(`sliced: slices of 500 contexts ${slices[Math.floor(slices.length / 2)].toFixed(1)} ms (median), longest ${longestSlice.toFixed(1)} ms, join + checksum ${last.toFixed(1)} ms; one write every ${(interval / 1000).toFixed(1)} s: ${((median.ms / interval) * 100).toFixed(1)} % of the main thread, ${((median.bytes * (3_600_000 / interval)) / 1e9).toFixed(1)} GB an hour`)

// The contexts an upstream 401/403 dropped (`cleared`, bounded by maxContexts like the contexts),
// as the writer adds them: the list copied from the map, then made into JSON. At its bound it is
// `contexts` drops.
const clearedAt = new Map(records.map((record, i) => [record.key, at + i] as [string, number]))
const whole: number[] = []
let longestClearedSlice = 0
for (let run = 0; run < 7; run++) {
  let started = performance.now()
  const drops = [...clearedAt].map(([key, when]) => ({ key, at: when }))
  JSON.stringify(drops)
  whole.push(performance.now() - started)
  started = performance.now()
  const list = [...clearedAt]
  let copied = performance.now() - started
  for (let i = 0; i < list.length; i += 500) {
    started = performance.now()
    list.slice(i, i + 500).map(([key, when]) => JSON.stringify({ key, at: when })).join(',')
    longestClearedSlice = Math.max(longestClearedSlice, performance.now() - started + copied)
    copied = 0
  }
}
whole.sort((a, b) => a - b)
console.log(`cleared (${clearedAt.size} drops): in one piece ${whole[3].toFixed(1)} ms (median of 7; min ${whole[0].toFixed(1)}, max ${whole[6].toFixed(1)}); in slices of 500, longest ${longestClearedSlice.toFixed(1)} ms`)
