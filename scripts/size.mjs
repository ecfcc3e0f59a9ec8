// What Holdfast costs a page: minified + gzipped bytes of what a user's bundler ships for two
// typical imports, with the dependencies (zod/mini, idb-keyval) bundled and React external.
//
//   node scripts/size.mjs            print the table, exit 1 when a budget is exceeded
//   node scripts/size.mjs --modules  also print the biggest modules of each bundle
//
// Entries import the BUILT packages (packages/*/dist, through their `exports` map, exactly as an
// installed copy resolves), so run `npm run build` first. Bundling is rollup + node-resolve with
// browser conditions (tree-shaken as Vite/webpack would), then terser (the plugin's defaults:
// compress + mangle, ES module) and zlib gzip at level 9. The budgets are checked on those.
// dist/index.js is one module per package, so the breakdown by module (--modules, or any failed
// budget) bundles the same entries from packages/*/src instead, to name the source files.
import { existsSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { rollup } from 'rollup'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import terser from '@rollup/plugin-terser'
import esbuild from 'rollup-plugin-esbuild'
import { minify } from 'terser'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// Budgets CI enforces. Raise one only in the commit that needs it, and say why there.
//
// (b) was set at 10,500 B (below every peer but Unleash) and is raised to 17,000 B. Measured on
// 2026-11-21, (b) is 16.6 KB: zod/mini, which the project mandates for boundary validation, costs
// 5.0 KB by itself for our four outer shapes (its floor: `z.object({ a: z.string() })` alone is
// 4.1 KB); the persisted, multi-tab event pipeline is about 4 KB; idb-keyval 0.6 KB; React 0.7 KB;
// the rest of core about 6.5 KB. Meeting 10,500 needs one of two product decisions, not a trim:
// hand-written boundary checks instead of zod/mini (−5 KB), or the event pipeline as a chunk loaded
// on demand, with its counts and the maxQueued bound handed over from a stand-in (−3.5 KB).
const BUDGET = {
  react: 17_000, // (b): client + React bindings, gzip bytes
  reactLayer: 1_500, // (b) − (a): what the React package adds on top of the core
}

const ENTRIES = {
  core: {
    label: '(a) createClient + getGate',
    code: `import { createClient } from '@holdfast/core'
const client = createClient({ url: 'https://flags.example', context: { targetingKey: 'u' } })
void client.start()
export const on = client.getGate('new-checkout')`,
  },
  react: {
    label: '(b) FlagProvider, useGate, useConfig, useFlagStatus',
    code: `export { FlagProvider, useGate, useConfig, useFlagStatus } from '@holdfast/react'`,
  },
}

// zod/mini is built from zod/v4/mini + zod/v4/core (+ the locale it defaults to). Anything else
// under node_modules/zod/ (zod/index.js, zod/v4/index.js, zod/v4/classic/*, zod/v3/*) is the
// classic API, which is several times larger and must never reach a user's bundle.
const ZOD_MINI = /[\\/]node_modules[\\/]zod[\\/](mini|v4-mini|v4[\\/]mini|v4[\\/]core|v4[\\/]locales)[\\/]/
const ZOD = /[\\/]node_modules[\\/]zod[\\/]/

const VIRTUAL = '\0size-entry'

const SOURCES = {
  '@holdfast/core': join(root, 'packages/core/src/index.ts'),
  '@holdfast/react': join(root, 'packages/react/src/index.ts'),
}

async function measure(name, { fromSource = false } = {}) {
  const entry = ENTRIES[name]
  const loaded = []
  const bundle = await rollup({
    input: VIRTUAL,
    external: (id) => id === 'react' || id.startsWith('react/') || id === 'react-dom' || id.startsWith('react-dom/'),
    onwarn(warning, warn) {
      // Module-level 'use client' in the React package's dist: a bundler for the client drops it.
      if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return
      // zod's own comments and import cycles: noise about a dependency, not about our bundle.
      if ((warning.code === 'INVALID_ANNOTATION' || warning.code === 'CIRCULAR_DEPENDENCY') && /node_modules/.test(warning.id ?? warning.ids?.[0] ?? '')) return
      warn(warning)
    },
    plugins: [
      {
        name: 'size-entry',
        // Resolved as if the entry were a file at the workspace root, so `@holdfast/*` goes
        // through node_modules/@holdfast → packages/*/package.json `exports` → dist.
        resolveId: (id) => (id === VIRTUAL ? id : fromSource ? (SOURCES[id] ?? null) : null),
        load: (id) => (id === VIRTUAL ? entry.code : null),
        moduleParsed: (info) => void loaded.push(info.id),
      },
      nodeResolve({ browser: true, rootDir: root, extensions: ['.mjs', '.js', '.json', '.ts', '.tsx'], exportConditions: ['browser', 'module', 'import', 'default'] }),
      ...(fromSource ? [esbuild({ target: 'es2020', tsconfig: join(root, 'tsconfig.base.json'), jsx: 'automatic' })] : []),
    ],
  })
  const { output } = await bundle.generate({
    format: 'es',
    plugins: [terser()],
  })
  await bundle.close()
  // The budget is what the page loads up front: the entry chunk. Code behind a dynamic import()
  // (loaded on demand) is reported beside it, not counted.
  const chunk = output.find((o) => o.type === 'chunk' && o.isEntry)
  const lazy = output.filter((o) => o.type === 'chunk' && !o.isEntry)
  const modules = Object.assign({}, ...output.filter((o) => o.type === 'chunk').map((o) => o.modules))
  const min = Buffer.byteLength(chunk.code)
  const gz = gzipSync(chunk.code, { level: 9 }).length
  const lazyGz = lazy.reduce((n, c) => n + gzipSync(c.code, { level: 9 }).length, 0)

  const classic = loaded.filter((id) => ZOD.test(id) && !ZOD_MINI.test(id))
  const resolvedFromDist = loaded.filter((id) => /packages[\\/](core|react)[\\/]/.test(id))
  const notDist = resolvedFromDist.filter((id) => !/packages[\\/](core|react)[\\/]dist[\\/]/.test(id))
  return { name, label: entry.label, min, gz, lazyGz, lazyCount: lazy.length, modules, classic, notDist }
}

// Each module's rendered code minified and gzipped on its own: not additive (gzip shares a
// dictionary across modules, and the bundle mangles across them), but it ranks them honestly.
async function topModules(result, count) {
  const rows = []
  for (const [id, info] of Object.entries(result.modules)) {
    if (!info.code || info.renderedLength === 0 || id.startsWith('\0')) continue
    // Not as a module: its declarations are used by the rest of the chunk, so none may be dropped.
    const m = await minify(info.code, { module: false, compress: { toplevel: false, unused: false }, mangle: { toplevel: false } })
    const code = m.code ?? ''
    rows.push({ id: shortId(id), rendered: info.renderedLength, min: code.length, gz: gzipSync(code, { level: 9 }).length })
  }
  rows.sort((a, b) => b.gz - a.gz)
  return rows.slice(0, count)
}

function shortId(id) {
  if (id.startsWith('\0')) return id.slice(1)
  const nm = id.lastIndexOf(`${sep}node_modules${sep}`)
  if (nm !== -1) return id.slice(nm + 14)
  return relative(root, id)
}

function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) =>
    '| ' + cells.map((c, i) => (align[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join(' | ') + ' |'
  const sepLine = '| ' + widths.map((w, i) => (align[i] === 'r' ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ') + ' |'
  return [line(headers), sepLine, ...rows.map(line)].join('\n')
}

const fmt = (n) => n.toLocaleString('en-US')

async function main() {
  for (const dir of ['core', 'react'])
    if (!existsSync(join(root, `packages/${dir}/dist/index.js`))) {
      console.error(`packages/${dir}/dist/index.js is missing: run \`npm run build\` first`)
      process.exit(1)
    }
  const showModules = process.argv.includes('--modules')
  const core = await measure('core')
  const react = await measure('react')
  const layer = react.gz - core.gz

  const failures = []
  for (const r of [core, react]) {
    if (r.classic.length) failures.push(`${r.label}: classic zod in the bundle:\n  ${r.classic.map(shortId).join('\n  ')}`)
    if (r.notDist.length) failures.push(`${r.label}: resolved sources instead of dist:\n  ${r.notDist.map(shortId).join('\n  ')}`)
  }
  if (react.gz > BUDGET.react) failures.push(`(b) is ${fmt(react.gz)} B gzip, over the ${fmt(BUDGET.react)} B budget`)
  if (layer > BUDGET.reactLayer) failures.push(`the React layer (b − a) is ${fmt(layer)} B gzip, over the ${fmt(BUDGET.reactLayer)} B budget`)

  console.log(`Holdfast bundle size: rollup (browser conditions, react external) + terser, gzip -9\n`)
  console.log(
    table(
      ['import', 'min (B)', 'min+gzip (B)', 'budget (B)'],
      [
        [core.label, fmt(core.min), fmt(core.gz), '—'],
        [react.label, fmt(react.min), fmt(react.gz), `≤ ${fmt(BUDGET.react)}`],
        ['React layer (b − a)', fmt(react.min - core.min), fmt(layer), `≤ ${fmt(BUDGET.reactLayer)}`],
      ],
      ['l', 'r', 'r', 'r'],
    ),
  )
  for (const r of [core, react])
    if (r.lazyCount) console.log(`${r.label}: + ${r.lazyCount} chunk(s) loaded on demand, ${fmt(r.lazyGz)} B gzip (not in the budget)`)
  const zodMods = Object.keys(react.modules).filter((id) => ZOD.test(id) && react.modules[id].renderedLength > 0)
  console.log(`\nzod: ${zodMods.length} modules rendered, all from zod/mini (v4/mini + v4/core): ${react.classic.length === 0 ? 'yes' : 'NO'}`)

  if (showModules || failures.length) {
    for (const name of ['core', 'react']) {
      const r = await measure(name, { fromSource: true })
      console.log(`\nBiggest modules of ${r.label}, bundled from src/ (${fmt(r.gz)} B gzip in all; each module minified + gzipped alone, so not additive):\n`)
      const rows = await topModules(r, 40)
      console.log(table(['module', 'rendered', 'min', 'gzip'], rows.map((m) => [m.id, fmt(m.rendered), fmt(m.min), fmt(m.gz)]), ['l', 'r', 'r', 'r']))
    }
  }

  if (failures.length) {
    console.error(`\nsize check failed:\n- ${failures.join('\n- ')}`)
    process.exit(1)
  }
  console.log('\nsize budgets: ok')
}

await main()
