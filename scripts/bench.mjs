// `npm run bench`: the numbers in the README. Each section (bench/*.mjs) runs in its own Node
// process, so one section's heap, JIT state or globals (fake-indexeddb, jsdom) cannot skew
// another's; the results are printed as one table with the environment they were measured in.
// Sections import the BUILT packages (packages/*/dist through their `exports` maps): run
// `npm run build` first. Takes well under two minutes. bench/coldstart-chromium.mjs drives headless
// Chromium (/usr/bin/chromium, or HOLDFAST_CHROMIUM as in the e2e suite); without one, its row
// says "skipped" and the rest of the bench runs as usual.
//
//   node scripts/bench.mjs [--json]
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cpus, loadavg, platform, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const SECTIONS = [
  { file: 'evaluate.mjs' },
  { file: 'init.mjs' },
  { file: 'apply.mjs' },
  { file: 'coldstart.mjs' },
  { file: 'coldstart-chromium.mjs' },
  { file: 'react.mjs' },
  { file: 'memory.mjs', flags: ['--expose-gc'] },
]

for (const pkg of ['core', 'react'])
  if (!existsSync(join(root, `packages/${pkg}/dist/index.js`))) {
    console.error(`packages/${pkg}/dist is missing: run \`npm run build\` first`)
    process.exit(1)
  }

const version = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version
const load = loadavg()[0]
const started = Date.now()
const rows = []
let failed = false
for (const section of SECTIONS) {
  const t = Date.now()
  const r = spawnSync(process.execPath, [...(section.flags ?? []), join(root, 'bench', section.file)], {
    cwd: root,
    encoding: 'utf8',
    timeout: 90_000,
  })
  const line = r.stdout?.trim().split('\n').pop()
  if (r.status !== 0 || !line?.startsWith('[')) {
    failed = true
    console.error(`bench/${section.file} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr}${r.stdout}`)
    continue
  }
  rows.push(...JSON.parse(line))
  process.stderr.write(`  bench/${section.file}: ${((Date.now() - t) / 1000).toFixed(1)} s\n`)
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ rows }, null, 2))
} else {
  const digits = { 'ns/call': 1, ms: 2, '×': 2, MiB: 2 }
  const fmt = (row) => {
    if (row.skipped) return row.skipped
    const d = digits[row.unit] ?? 0
    const n = row.value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
    return `${n} ${row.unit}${row.extra ? ` (${row.extra})` : ''}`
  }
  const cells = rows.map((r) => [r.group, r.metric, fmt(r)])
  const w = [0, 1, 2].map((i) => Math.max(['group', 'measure', 'result'][i].length, ...cells.map((c) => c[i].length)))
  const line = (c) => `| ${c.map((x, i) => (i === 2 ? x.padStart(w[i]) : x.padEnd(w[i]))).join(' | ')} |`
  console.log(line(['group', 'measure', 'result']))
  console.log(`| ${w.map((n, i) => (i === 2 ? `${'-'.repeat(n - 1)}:` : '-'.repeat(n))).join(' | ')} |`)
  let previous
  for (const c of cells) {
    console.log(line([c[0] === previous ? '' : c[0], c[1], c[2]]))
    previous = c[0]
  }
}
const cpu = cpus()
console.log(
  [
    '',
    `node ${process.version}, ${platform()} ${release()}, ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    `load average at start: ${load.toFixed(2)}; medians after warm-up; packages from dist (built), react ${version('react')} (development build: act() needs it), jsdom ${version('jsdom')}, fake-indexeddb ${version('fake-indexeddb')}`,
    // What a section measured in beyond Node (the browser it drove), as it reported it.
    ...new Set(rows.map((r) => r.env).filter(Boolean)),
    `total ${((Date.now() - started) / 1000).toFixed(0)} s — reproduce with: npm run build && npm run bench`,
  ].join('\n'),
)
if (failed) process.exit(1)
