// The install test: what a user gets from `npm install`. Packs every package, installs the
// tarballs into a scratch project OUTSIDE the workspace (so nothing resolves through the monorepo's
// node_modules or tsconfig paths), then uses them from ESM, CommonJS and TypeScript (node16 and
// bundler resolution), runs the CLI, and checks that importing any entry point runs nothing.
//
//   node test/install/run.mjs [--keep]     (--keep leaves the scratch project for inspection)
//
// Needs `npm run build` first and the npm registry (idb-keyval, react, @openfeature/*, types).
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { packAll } from '../../scripts/check-packages.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const tsc = join(root, 'node_modules/typescript/bin/tsc')
const keep = process.argv.includes('--keep')

const results = []
function step(name, fn) {
  const started = Date.now()
  try {
    const detail = fn()
    results.push({ name, ok: true, ms: Date.now() - started, detail })
    console.log(`ok   ${name}${detail ? ` — ${detail}` : ''}`)
  } catch (error) {
    results.push({ name, ok: false })
    console.log(`FAIL ${name}\n${String(error?.stdout ?? '')}${String(error?.stderr ?? '')}${error?.message ?? error}`)
  }
}

function sh(cwd, command, args, { timeout = 120_000 } = {}) {
  return execFileSync(command, args, { cwd, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
}

const files = {
  // ESM: a real round trip against the packed server, over HTTP on 127.0.0.1.
  'esm.mjs': `
import assert from 'node:assert/strict'
import { createClient, fetchBootstrap, HoldfastError } from '@holdfast/core'
import { FlagProvider, useGate, createClient as reExported } from '@holdfast/react'
import { createFlagServer } from '@holdfast/server'

assert.equal(typeof FlagProvider, 'function')
assert.equal(typeof useGate, 'function')
assert.equal(reExported, createClient, '@holdfast/react re-exports the same @holdfast/core (one copy installed)')
assert.ok(new HoldfastError('NETWORK', 'x') instanceof Error)

const server = await createFlagServer({
  port: 0,
  logger: { info() {}, warn() {}, error() {} },
  flags: { flags: { 'new-checkout': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' } } },
})
try {
  const client = createClient({
    url: server.url,
    context: { targetingKey: 'user-1' },
    storage: 'memory',
    events: { url: server.url + '/holdfast/v1/events' },
  })
  assert.equal(client.getGate('new-checkout'), false)
  const status = await client.start()
  assert.equal(status.state, 'ready')
  assert.equal(client.getGate('new-checkout'), true)
  // The event pipeline is a chunk of the package loaded on demand: it must resolve from the tarball.
  client.logEvent('installed')
  await client.flush()
  assert.deepEqual(client.getEventStats(), { queued: 0, sent: 2, dropped: 0, retries: 0, retriedRequests: 0 })
  assert.deepEqual(server.events().map((e) => e.name).sort(), ['installed', 'new-checkout'])
  await client.close()
  const bootstrap = await fetchBootstrap({ url: server.url, context: { targetingKey: 'user-1' } })
  assert.equal(bootstrap?.flags.find((f) => f.key === 'new-checkout')?.value, true)
} finally {
  await server.close()
}
// The testing entries: one helper, reachable from either package, a FlagClient with no I/O.
const { createTestClient } = await import('@holdfast/core/testing')
const { createTestClient: fromReact } = await import('@holdfast/react/testing')
assert.equal(fromReact, createTestClient, '@holdfast/react/testing re-exports @holdfast/core/testing')
const fake = createTestClient({ flags: { 'new-checkout': true } })
let told = 0
fake.subscribeFlag('new-checkout', () => told++)
fake.set('new-checkout', false)
assert.equal(fake.getGate('new-checkout', true), false)
assert.equal(told, 1)
console.log('esm ok')
`,
  // CommonJS: require() of every package, and a server render through the React bindings.
  'cjs.cjs': `
const assert = require('node:assert/strict')
const { createElement: h } = require('react')
const { renderToString } = require('react-dom/server')
const core = require('@holdfast/core')
const { FlagProvider, useGate, useConfig, useFlagStatus, createClient } = require('@holdfast/react')
const server = require('@holdfast/server')

assert.equal(createClient, core.createClient, 'one copy of @holdfast/core')
assert.equal(typeof server.createFlagServer, 'function')

function Checkout() {
  const on = useGate('new-checkout')
  const config = useConfig('banner', { text: 'none' })
  const status = useFlagStatus()
  return h('p', null, on ? 'new' : 'old', ' ', config.text, ' ', status.source)
}
const bootstrap = {
  context: { targetingKey: 'user-1' },
  flags: [{ key: 'new-checkout', value: true }, { key: 'banner', value: { text: 'hello' } }],
  fetchedAt: Date.now(),
}
const html = renderToString(
  h(FlagProvider, { url: 'http://127.0.0.1:9', context: { targetingKey: 'user-1' }, bootstrap, storage: 'memory' }, h(Checkout)),
)
assert.match(html, /new.*hello.*bootstrap/)
assert.equal(require('@holdfast/core/testing').createTestClient({ flags: { a: 1 } }).getValue('a', 0), 1)
assert.equal(require('@holdfast/react/testing').createTestClient, require('@holdfast/core/testing').createTestClient)

// The event pipeline chunk, through require() this time, against the packed server.
;(async () => {
  const flags = await server.createFlagServer({ port: 0, logger: { info() {}, warn() {}, error() {} }, flags: { flags: {} } })
  try {
    const client = core.createClient({ url: flags.url, context: { targetingKey: 'user-1' }, storage: 'memory', events: { url: flags.url + '/holdfast/v1/events' } })
    await client.start()
    client.logEvent('required')
    await client.flush()
    assert.deepEqual(flags.events().map((e) => e.name), ['required'])
    await client.close()
  } finally {
    await flags.close()
  }
  console.log('cjs ok')
})().catch((error) => {
  console.error(error)
  process.exit(1)
})
`,
  // TypeScript: the declarations as users' compilers see them.
  'types/app.mts': `
import { createClient, fetchBootstrap, type Bootstrap, type Details, type FlagClient, type Status } from '@holdfast/core'
import { createFlagServer, type FlagServer } from '@holdfast/server'
const client: FlagClient = createClient({ url: 'https://flags.example', context: { targetingKey: 'u', plan: 'pro' }, storage: 'memory' })
const on: boolean = client.getGate('new-checkout')
const config: { color: string } = client.getConfig('theme', { color: 'red' })
const details: Details<number> = client.getDetails('limit', 10)
const status: Status = client.getStatus()
const boot: Promise<Bootstrap | null> = fetchBootstrap({ url: 'https://flags.example', context: { targetingKey: 'u' } })
const server: Promise<FlagServer> = createFlagServer({ flags: './flags.json', port: 0 })
// @ts-expect-error getGate's default must be a boolean
client.getGate('x', 'yes')
import { createTestClient, type TestClient } from '@holdfast/core/testing'
const fake: TestClient = createTestClient({ flags: { limit: 3 }, status: 'stale' })
const asClient: FlagClient = fake
fake.set('limit', 4)
export { on, config, details, status, boot, server, asClient }
`,
  'types/app.cts': `
import { createClient } from '@holdfast/core'
import { FlagProvider, useGate } from '@holdfast/react'
import type { FlagServerOptions } from '@holdfast/server'
const client = createClient({ url: 'https://flags.example', context: { targetingKey: 'u' } })
const on: boolean = client.getGate('x')
const options: FlagServerOptions = { flags: './flags.json' }
export = { client, on, options, FlagProvider, useGate }
`,
  'types/App.tsx': `
import { FlagProvider, useGate, useConfig, useFlagStatus, createClient, type Status } from '@holdfast/react'
function Checkout() {
  const on: boolean = useGate('new-checkout')
  const banner = useConfig('banner', { text: '' })
  const status: Status = useFlagStatus()
  return <p>{on ? 'new' : 'old'} {banner.text} {status.state}</p>
}
const client = createClient({ url: 'https://flags.example', context: { targetingKey: 'u' } })
export const App = () => (
  <FlagProvider client={client}>
    <Checkout />
  </FlagProvider>
)
import { createTestClient } from '@holdfast/react/testing'
export const Tested = () => (
  <FlagProvider client={createTestClient({ flags: { 'new-checkout': true } })}>
    <Checkout />
  </FlagProvider>
)
export const Owned = () => (
  <FlagProvider url="https://flags.example" context={{ targetingKey: 'u' }} refreshIntervalMs={60_000}>
    <Checkout />
  </FlagProvider>
)
`,
  'types/app.ts': `
import { createClient, type ClientOptions } from '@holdfast/core'
const options: ClientOptions = { url: 'https://flags.example', context: { targetingKey: 'u' }, events: { url: 'https://events.example' } }
export const on: boolean = createClient(options).getGate('x')
`,
  // Strict everywhere and skipLibCheck off: our .d.ts/.d.cts files are type-checked too.
  'tsconfig.node16.json': JSON.stringify(
    {
      compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, jsx: 'react-jsx', types: ['node'] },
      files: ['types/app.mts', 'types/app.cts', 'types/App.tsx'],
    },
    null,
    2,
  ),
  'tsconfig.bundler.json': JSON.stringify(
    {
      compilerOptions: { module: 'esnext', moduleResolution: 'bundler', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, jsx: 'react-jsx', types: ['node'] },
      files: ['types/app.ts', 'types/App.tsx'],
    },
    null,
    2,
  ),
  // Importing must run nothing (CONTRACT §1): no timers, sockets, listeners or storage probes.
  // The probe stands in browser globals that count what touches them, imports one entry, then
  // compares Node's active resources and the process's listeners with what was there before.
  'probe.mjs': `
const [, , specifier, mode] = process.argv
const touched = []
const count = (what) => (...args) => void touched.push(\`\${what}(\${String(args[0])})\`)
const target = { addEventListener: count('addEventListener'), removeEventListener() {}, dispatchEvent() { return true } }
Object.assign(globalThis, target)
globalThis.window = globalThis
globalThis.document = { ...target, addEventListener: count('document.addEventListener'), visibilityState: 'visible', hidden: false }
globalThis.indexedDB = { open: count('indexedDB.open'), deleteDatabase: count('indexedDB.deleteDatabase') }
globalThis.localStorage = { getItem: count('localStorage.getItem'), setItem: count('localStorage.setItem') }
globalThis.BroadcastChannel = class { constructor(name) { touched.push(\`new BroadcastChannel(\${name})\`) } }
for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
  const original = globalThis[name]
  globalThis[name] = (...args) => (touched.push(name), original(...args))
}
// stdio handles and in-flight file reads (the loader's own) come and go; timers, sockets,
// watchers, DNS lookups and workers are what would keep a process alive or reach out.
const transient = /^(TTYWrap|PipeWrap|CloseReq|FileHandleCloseReq|FSReq.*)$/
const resources = () => process.getActiveResourcesInfo().filter((r) => !transient.test(r)).sort()
const listeners = () => process.eventNames().map((name) => \`\${String(name)}×\${process.listenerCount(name)}\`).sort()
const before = { resources: resources(), events: listeners() }
if (mode === 'require') (await import('node:module')).createRequire(process.cwd() + '/')(specifier)
else await import(specifier)
const after = { resources: resources(), events: listeners() }
const problems = [...touched]
if (JSON.stringify(after.resources) !== JSON.stringify(before.resources)) problems.push(\`active resources \${before.resources} -> \${after.resources}\`)
if (JSON.stringify(after.events) !== JSON.stringify(before.events)) problems.push(\`process listeners \${before.events} -> \${after.events}\`)
process.stdout.write(JSON.stringify(problems))
`,
}

// @holdfast/openfeature, installed beside the official @openfeature/web-sdk (its peer): the
// provider from ESM and CommonJS against the packed server, and its types under node16 and bundler.
const openfeatureFiles = {
  'openfeature.mjs': `
import assert from 'node:assert/strict'
import { OpenFeature, ProviderStatus } from '@openfeature/web-sdk'
import { HoldfastWebProvider } from '@holdfast/openfeature'
import { createFlagServer } from '@holdfast/server'

const server = await createFlagServer({
  port: 0,
  logger: { info() {}, warn() {}, error() {} },
  flags: { flags: { 'new-checkout': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' } } },
})
try {
  const provider = new HoldfastWebProvider({ url: server.url, storage: 'memory', events: { url: server.url + '/holdfast/v1/events' } })
  await OpenFeature.setProviderAndWait(provider, { targetingKey: 'user-1' })
  const client = OpenFeature.getClient()
  assert.equal(client.providerStatus, ProviderStatus.READY)
  assert.deepEqual(
    { value: client.getBooleanValue('new-checkout', false), reason: client.getBooleanDetails('new-checkout', false).reason },
    { value: true, reason: 'STATIC' },
  )
  client.track('installed', { value: 1 })
  await OpenFeature.close()
  assert.deepEqual(server.events().map((e) => e.name).sort(), ['installed', 'new-checkout'])
} finally {
  await server.close()
}
console.log('openfeature esm ok')
`,
  'openfeature.cjs': `
const assert = require('node:assert/strict')
const { OpenFeature } = require('@openfeature/web-sdk')
const { HoldfastWebProvider } = require('@holdfast/openfeature')
const core = require('@holdfast/core')
;(async () => {
  const client = core.createClient({
    url: 'http://127.0.0.1:9',
    context: { targetingKey: 'user-1' },
    storage: 'memory',
    bootstrap: { context: { targetingKey: 'user-1' }, flags: [{ key: 'banner', value: { text: 'hi' } }], fetchedAt: Date.now() },
  })
  const provider = new HoldfastWebProvider({ client })
  assert.equal(provider.client, client, 'one copy of @holdfast/core')
  await OpenFeature.setProviderAndWait('cjs', provider)
  assert.deepEqual(OpenFeature.getClient('cjs').getObjectValue('banner', {}), { text: 'hi' })
  await OpenFeature.close()
  await client.close()
  console.log('openfeature cjs ok')
})().catch((error) => {
  console.error(error)
  process.exit(1)
})
`,
  'types/openfeature.mts': `
import { OpenFeature, type Provider } from '@openfeature/web-sdk'
import { HoldfastWebProvider, type HoldfastProviderOptions } from '@holdfast/openfeature'
import { createClient } from '@holdfast/core'
const options: HoldfastProviderOptions = { url: 'https://flags.example', context: { targetingKey: 'u' }, refreshIntervalMs: 60_000 }
const provider: Provider = new HoldfastWebProvider(options)
const shared: Provider = new HoldfastWebProvider({ client: createClient({ url: 'https://flags.example', context: { targetingKey: 'u' } }) })
const ready: Promise<void> = OpenFeature.setProviderAndWait(provider)
// @ts-expect-error a client or client options, not a bare URL
new HoldfastWebProvider('https://flags.example')
export { shared, ready }
`,
  'types/openfeature.cts': `
import { HoldfastWebProvider } from '@holdfast/openfeature'
const provider = new HoldfastWebProvider({ url: 'https://flags.example' })
export = provider
`,
  'tsconfig.openfeature.json': JSON.stringify(
    {
      compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
      files: ['types/openfeature.mts', 'types/openfeature.cts'],
    },
    null,
    2,
  ),
  'tsconfig.openfeature-bundler.json': JSON.stringify(
    {
      compilerOptions: { module: 'esnext', moduleResolution: 'bundler', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
      files: ['types/openfeature.mts'],
    },
    null,
    2,
  ),
}

/** The @holdfast/openfeature steps; run after the others. */
function openfeatureSteps(app) {
  step('@holdfast/openfeature: ESM, OpenFeature.setProviderAndWait + track against the packed server', () => sh(app, process.execPath, ['openfeature.mjs']).trim())
  step('@holdfast/openfeature: CommonJS require, a client passed in', () => sh(app, process.execPath, ['openfeature.cjs']).trim())
  step('@holdfast/openfeature: tsc --noEmit, node16 (.mts, .cts) and bundler', () => {
    sh(app, process.execPath, [tsc, '-p', 'tsconfig.openfeature.json'])
    sh(app, process.execPath, [tsc, '-p', 'tsconfig.openfeature-bundler.json'])
    return ''
  })
}

function main() {
  const scratch = mkdtempSync(join(tmpdir(), 'holdfast-install-'))
  console.log(`scratch project: ${scratch}`)
  let ok = false
  try {
    const tarballs = join(scratch, 'tarballs')
    mkdirSync(tarballs)
    const app = join(scratch, 'app')
    mkdirSync(join(app, 'types'), { recursive: true })
    let packed
    step('npm pack', () => {
      packed = packAll(tarballs)
      return packed.map((p) => `${p.name} (${p.files.length} files)`).join(', ')
    })
    if (!packed) return
    const spec = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]))
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify(
        {
          name: 'holdfast-install-test',
          private: true,
          dependencies: { ...spec, react: '^19', 'react-dom': '^19', '@openfeature/web-sdk': '^1.10.0' },
          devDependencies: { '@types/react': '^19', '@types/node': '^20' },
          // @holdfast/react depends on @holdfast/core@0.1.0: take it from the tarball, never the registry.
          overrides: { '@holdfast/core': spec['@holdfast/core'] },
        },
        null,
        2,
      ),
    )
    for (const [name, text] of Object.entries({ ...files, ...openfeatureFiles })) writeFileSync(join(app, name), text.trimStart())

    step('npm install (tarballs + registry deps)', () => {
      sh(app, 'npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { timeout: 300_000 })
      const ls = JSON.parse(sh(app, 'npm', ['ls', '--all', '--json', '@holdfast/core', 'idb-keyval', 'react']))
      const versions = JSON.stringify(ls)
      if ((versions.match(/"@holdfast\/core"/g) ?? []).length < 1) throw new Error('@holdfast/core not installed')
      const idb = ls.dependencies['@holdfast/core'].dependencies?.['idb-keyval']?.version ?? ls.dependencies['idb-keyval']?.version
      return `idb-keyval ${idb}, react ${ls.dependencies.react.version}`
    })
    step('ESM import + flags and events round trip against the packed server', () => sh(app, process.execPath, ['esm.mjs']).trim())
    step('CommonJS require + React server render + events (on-demand chunk via require)', () => sh(app, process.execPath, ['cjs.cjs']).trim())
    step('tsc --noEmit, moduleResolution node16 (.mts, .cts, .tsx)', () => (sh(app, process.execPath, [tsc, '-p', 'tsconfig.node16.json']), ''))
    step('tsc --noEmit, moduleResolution bundler (.ts, .tsx)', () => (sh(app, process.execPath, [tsc, '-p', 'tsconfig.bundler.json']), ''))
    step('bin: holdfast-server --help', () => {
      const out = sh(app, join(app, 'node_modules/.bin/holdfast-server'), ['--help'])
      if (!out.startsWith('Usage: holdfast-server')) throw new Error(`unexpected output:\n${out}`)
      return 'prints usage, exit 0'
    })
    step('bin: holdfast-server --version', () => {
      const out = sh(app, join(app, 'node_modules/.bin/holdfast-server'), ['--version']).trim()
      const installed = JSON.parse(readFileSync(join(app, 'node_modules/@holdfast/server/package.json'), 'utf8')).version
      if (out !== installed) throw new Error(`--version printed ${JSON.stringify(out)}, the installed package is ${installed}`)
      return out
    })
    openfeatureSteps(app)
    for (const name of [...packed.map((p) => p.name), '@holdfast/core/testing', '@holdfast/react/testing'])
      for (const mode of ['import', 'require'])
        step(`${mode}('${name}') runs nothing and exits at once`, () => {
          const started = Date.now()
          const r = spawnSync(process.execPath, ['probe.mjs', name, mode], { cwd: app, encoding: 'utf8', timeout: 10_000 })
          const ms = Date.now() - started
          if (r.error) throw new Error(`the process did not exit by itself within 10 s (${r.error.message}): something keeps it alive`)
          if (r.status !== 0) throw new Error(r.stderr)
          const problems = JSON.parse(r.stdout)
          if (problems.length) throw new Error(`import-time side effects: ${problems.join(', ')}`)
          return `exited in ${ms} ms`
        })
    ok = results.length > 0 && results.every((r) => r.ok)
  } finally {
    if (keep) console.log(`kept ${scratch}`)
    else rmSync(scratch, { recursive: true, force: true })
  }
  const failed = results.filter((r) => !r.ok).length
  console.log(`\ninstall test: ${results.length - failed} passed, ${failed} failed`)
  if (!ok) process.exit(1)
}

main()
