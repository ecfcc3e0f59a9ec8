// Builds every package to ESM + CJS + .d.ts. esbuild strips types (fast); rollup-plugin-dts bundles
// declarations and needs the classic TypeScript compiler API, which is why typescript is pinned to
// 5.9 (typescript@7, the native compiler, has no JS API).
import { builtinModules } from 'node:module'
import { readFileSync, existsSync } from 'node:fs'
import esbuild from 'rollup-plugin-esbuild'
import { dts } from 'rollup-plugin-dts'

const node = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)])

function pkgConfigs(dir, { banner, extraInputs = {} } = {}) {
  const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'))
  const deps = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]
  const external = (id) => node.has(id) || deps.some((d) => id === d || id.startsWith(`${d}/`))
  const input = { index: `${dir}/src/index.ts`, ...extraInputs }
  const plugins = [esbuild({ target: 'es2020', tsconfig: 'tsconfig.base.json', jsx: 'automatic' })]
  const onwarn = (w, warn) => {
    // Module-level 'use client' directives are dropped by rollup; the banner puts it back.
    if (w.code === 'MODULE_LEVEL_DIRECTIVE') return
    warn(w)
  }
  return [
    {
      input,
      external,
      plugins,
      onwarn,
      output: [
        { dir: `${dir}/dist`, format: 'es', entryFileNames: '[name].js', banner, chunkFileNames: '[name]-[hash].js' },
        { dir: `${dir}/dist`, format: 'cjs', entryFileNames: '[name].cjs', banner, chunkFileNames: '[name]-[hash].cjs', exports: 'named' },
      ],
    },
    {
      input: `${dir}/src/index.ts`,
      external,
      plugins: [dts({ tsconfig: 'tsconfig.base.json', compilerOptions: { paths: {} } })],
      output: [
        { file: `${dir}/dist/index.d.ts`, format: 'es', banner },
        { file: `${dir}/dist/index.d.cts`, format: 'es', banner },
      ],
    },
  ]
}

const configs = [...pkgConfigs('packages/core')]
if (existsSync('packages/react/src/index.ts')) configs.push(...pkgConfigs('packages/react', { banner: "'use client';" }))
if (existsSync('packages/server/src/index.ts'))
  configs.push(...pkgConfigs('packages/server', { extraInputs: existsSync('packages/server/src/bin.ts') ? { bin: 'packages/server/src/bin.ts' } : {} }))
export default configs
