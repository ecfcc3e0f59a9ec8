// Lints what npm would publish: packs every package (as `npm publish` would), then runs publint and
// @arethetypeswrong/cli on each tarball and checks the tarball's contents against what users rely
// on (CONTRACT §1). Exits non-zero on any error. Run `npm run build` first; nothing here builds.
//
//   node scripts/check-packages.mjs
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => join(root, 'node_modules/.bin', name)
const PACKAGES = ['packages/core', 'packages/react', 'packages/server']
// @holdfast/openfeature: the OpenFeature web provider (peer @openfeature/web-sdk).
PACKAGES.push('packages/openfeature')

export const failures = []
const fail = (pkg, message) => failures.push(`${pkg}: ${message}`)

/** Packs the workspaces into `dir`; returns [{ name, dir, tarball, files }]. */
export function packAll(dir) {
  const out = execFileSync('npm', ['pack', ...PACKAGES.flatMap((p) => ['-w', p]), '--pack-destination', dir, '--json', '--loglevel=error'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return JSON.parse(out).map((p, i) => ({
    name: p.name,
    dir: join(root, PACKAGES[i]),
    tarball: join(dir, p.filename),
    files: p.files.map((f) => ({ path: f.path, mode: f.mode })),
  }))
}

/** Reads one file out of a .tgz (a plain ustar archive, as npm writes it). */
function readFromTarball(tarball, path) {
  const tar = gunzipSync(readFileSync(tarball))
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const name = tar.toString('utf8', offset, offset + 100).replace(/\0.*$/s, '')
    const prefix = tar.toString('utf8', offset + 345, offset + 500).replace(/\0.*$/s, '')
    const size = parseInt(tar.toString('utf8', offset + 124, offset + 136).replace(/\0.*$/s, '').trim() || '0', 8)
    const full = prefix ? `${prefix}/${name}` : name
    if (!name) break
    if (full === `package/${path}`) return tar.toString('utf8', offset + 512, offset + 512 + size)
    offset += 512 + Math.ceil(size / 512) * 512
  }
  return undefined
}

/** Every file an `exports`/`main`/`types`/`bin` field points at. */
function referencedFiles(pkg) {
  const found = new Set()
  const walk = (v) => {
    if (typeof v === 'string') found.add(v.replace(/^\.\//, ''))
    else if (v && typeof v === 'object') Object.values(v).forEach(walk)
  }
  walk(pkg.exports)
  walk(pkg.bin)
  for (const field of ['main', 'module', 'types']) walk(pkg[field])
  return [...found]
}

export function checkContents(p) {
  const pkg = JSON.parse(readFromTarball(p.tarball, 'package.json'))
  const paths = new Set(p.files.map((f) => f.path))
  for (const file of referencedFiles(pkg)) if (!paths.has(file)) fail(p.name, `package.json points at ${file}, which is not in the tarball (built? a concurrent build?)`)
  for (const f of p.files)
    if (!/^(dist\/.*\.(js|cjs|d\.ts|d\.cts)|schema\/[\w.-]+\.schema\.json|package\.json|README\.md|LICENSE)$/.test(f.path)) fail(p.name, `unexpected file in the tarball: ${f.path}`)
  // "license": "MIT" in package.json is a claim; the text itself must ship with the code.
  if (!paths.has('LICENSE')) fail(p.name, 'LICENSE is missing from the tarball')
  else if (readFromTarball(p.tarball, 'LICENSE') !== readFileSync(join(root, 'LICENSE'), 'utf8')) fail(p.name, 'LICENSE differs from the repository root LICENSE')
  if (pkg.sideEffects !== false) fail(p.name, '"sideEffects": false is missing')
  for (const cond of ['types', 'import', 'require']) if (!JSON.stringify(pkg.exports?.['.'] ?? {}).includes(`"${cond}"`)) fail(p.name, `exports["."] has no "${cond}" condition`)

  const js = p.files.filter((f) => /\.c?js$/.test(f.path)).map((f) => f.path)
  const dts = p.files.filter((f) => /\.d\.c?ts$/.test(f.path)).map((f) => f.path)
  if (p.name === '@holdfast/react') {
    // Server Components bundlers look at the first statement of each module a client import
    // reaches; every JS file the package ships must start with it.
    for (const file of js) if (!readFromTarball(p.tarball, file).startsWith("'use client';")) fail(p.name, `${file} does not start with 'use client'`)
    for (const file of dts) if (readFromTarball(p.tarball, file).includes('use client')) fail(p.name, `${file} carries a 'use client' banner (meaningless in types)`)
  }
  for (const [name, file] of Object.entries(pkg.bin ?? {})) {
    const path = file.replace(/^\.\//, '')
    const text = readFromTarball(p.tarball, path)
    if (!text?.startsWith('#!/usr/bin/env node\n')) fail(p.name, `bin ${name} (${path}) does not start with "#!/usr/bin/env node"`)
  }
  return pkg
}

function run(label, command, args) {
  const r = spawnSync(command, args, { cwd: root, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } })
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.replace(/^npm warn Unknown (user|cli) config.*\n/gm, '').trim()
  return { ok: r.status === 0, output, label }
}

function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'holdfast-check-'))
  try {
    const packed = packAll(tmp)
    for (const p of packed) {
      console.log(`\n=== ${p.name} (${p.files.length} files: ${p.files.map((f) => f.path).join(', ')})`)
      checkContents(p)
      // --strict: publint's warnings fail too; its suggestions are printed only.
      const publint = run('publint', bin('publint'), ['run', p.tarball, '--strict'])
      console.log(publint.output)
      if (!publint.ok) fail(p.name, 'publint reported problems (above)')
      // Default "strict" profile: node10, node16 from CJS and from ESM, bundler.
      const attw = run('attw', bin('attw'), [p.tarball, '--format', 'table', '--no-emoji', '--no-color'])
      console.log(attw.output)
      if (!attw.ok) fail(p.name, 'attw reported problems (above)')
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  if (failures.length) {
    console.error(`\ncheck:packages failed:\n- ${failures.join('\n- ')}`)
    process.exit(1)
  }
  console.log('\ncheck:packages: publint, attw and tarball contents ok')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
