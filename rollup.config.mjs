// Builds every package to ESM + CJS + .d.ts (and .d.cts for `require`). esbuild strips types
// (fast); rollup-plugin-dts bundles declarations and needs the classic TypeScript compiler API,
// which is why typescript is pinned to 5.9 (typescript@7, the native compiler, has no JS API).
import { builtinModules } from 'node:module'
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs'
import esbuild from 'rollup-plugin-esbuild'
import { dts } from 'rollup-plugin-dts'

const node = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)])

// Every build starts from an empty dist/: chunk names carry content hashes, so without this the
// chunks of earlier builds pile up and `npm pack` ships them.
const clean = (dir) => ({
  name: 'clean-dist',
  buildStart: () => rmSync(`${dir}/dist`, { recursive: true, force: true }),
})

// npm marks `bin` targets executable on install; this keeps `./dist/bin.js` runnable from the
// workspace too. (Rollup itself keeps the entry's `#!/usr/bin/env node` as the first line.)
const executable = (file) => ({
  name: 'executable',
  writeBundle: (options) => {
    if (existsSync(`${options.dir}/${file}`)) chmodSync(`${options.dir}/${file}`, 0o755)
  },
})

/**
 * A secondary entry (`@holdfast/core/testing`) built on its own: sharing chunks with the main
 * entry would split `index.js` into pieces, so the main bundles stay exactly as they were and code
 * both need (evaluation) is simply in both files.
 */
function entryConfigs(dir, name, { banner, external, plugins, onwarn }) {
  const input = `${dir}/src/${name}.ts`
  return [
    {
      input,
      external,
      plugins,
      onwarn,
      output: [
        { file: `${dir}/dist/${name}.js`, format: 'es', banner },
        { file: `${dir}/dist/${name}.cjs`, format: 'cjs', banner, exports: 'named' },
      ],
    },
    {
      input,
      external,
      plugins: [dts({ tsconfig: 'tsconfig.base.json', compilerOptions: { paths: {} } })],
      output: [
        { file: `${dir}/dist/${name}.d.ts`, format: 'es' },
        { file: `${dir}/dist/${name}.d.cts`, format: 'es' },
      ],
    },
  ]
}

/**
 * `banner` goes on the JS entries only: 'use client' marks a module for React Server Components
 * bundlers and means nothing in a .d.ts. `bin` is an ESM-only CLI entry sharing chunks with the
 * ESM build; nothing `require`s a CLI, so the CJS build leaves it out.
 */
function pkgConfigs(dir, { banner, bin, entries = [] } = {}) {
  const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'))
  const deps = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]
  const external = (id) => node.has(id) || deps.some((d) => id === d || id.startsWith(`${d}/`))
  const index = `${dir}/src/index.ts`
  const plugins = [esbuild({ target: 'es2020', tsconfig: 'tsconfig.base.json', jsx: 'automatic' })]
  const onwarn = (w, warn) => {
    // Module-level 'use client' directives are dropped by rollup; the banner puts it back.
    if (w.code === 'MODULE_LEVEL_DIRECTIVE') return
    warn(w)
  }
  return [
    {
      input: bin ? { index, bin } : { index },
      external,
      plugins: [clean(dir), ...plugins, ...(bin ? [executable('bin.js')] : [])],
      onwarn,
      output: { dir: `${dir}/dist`, format: 'es', entryFileNames: '[name].js', banner, chunkFileNames: '[name]-[hash].js' },
    },
    {
      input: { index },
      external,
      plugins,
      onwarn,
      output: { dir: `${dir}/dist`, format: 'cjs', entryFileNames: '[name].cjs', banner, chunkFileNames: '[name]-[hash].cjs', exports: 'named' },
    },
    {
      input: index,
      external,
      plugins: [dts({ tsconfig: 'tsconfig.base.json', compilerOptions: { paths: {} } })],
      // The same declarations twice: `.d.ts` describes index.js (ESM, "type": "module") and
      // `.d.cts` describes index.cjs, so `require` under node16 resolution gets CJS types.
      output: [
        { file: `${dir}/dist/index.d.ts`, format: 'es' },
        { file: `${dir}/dist/index.d.cts`, format: 'es' },
      ],
    },
    ...entries.flatMap((name) => entryConfigs(dir, name, { banner, external, plugins, onwarn })),
  ]
}

const configs = [...pkgConfigs('packages/core', { entries: ['testing'] })]
if (existsSync('packages/react/src/index.ts')) configs.push(...pkgConfigs('packages/react', { banner: "'use client';", entries: ['testing'] }))
if (existsSync('packages/server/src/index.ts'))
  configs.push(...pkgConfigs('packages/server', { bin: existsSync('packages/server/src/bin.ts') ? 'packages/server/src/bin.ts' : undefined }))
if (existsSync('packages/openfeature/src/index.ts')) configs.push(...pkgConfigs('packages/openfeature'))
export default configs
