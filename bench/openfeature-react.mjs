// OpenFeature React SDK vs @holdfast/react (jsdom + react-dom/client, packages from dist): 1,000
// components each read their own boolean flag — `useBooleanFlagValue` under <OpenFeatureProvider>
// with HoldfastWebProvider, and `useGate` under <FlagProvider> — on the same 1,000-flag responses.
// Counts the components that render again when the first answer confirms the bootstrap's values,
// when 1 of the 1,000 flags changes (timed from refresh() to the committed DOM), and when an
// outage starts (a 503: every value kept, every flag now stale). Run `npm run build` first; `node bench/openfeature-react.mjs` prints one JSON
// line (a section of `npm run bench`).
import { JSDOM } from 'jsdom'

const dom = new JSDOM('<!doctype html><html><body><div id="a"></div><div id="b"></div></body></html>', { pretendToBeVisual: true })
for (const key of ['window', 'document', 'navigator', 'HTMLElement', 'Node', 'Event', 'MutationObserver', 'requestAnimationFrame', 'cancelAnimationFrame'])
  Object.defineProperty(globalThis, key, { value: dom.window[key], configurable: true, writable: true })
globalThis.IS_REACT_ACT_ENVIRONMENT = true

const { createElement: h, act } = await import('react')
const { createRoot } = await import('react-dom/client')
const { FlagProvider, createClient, useGate } = await import('@holdfast/react')
const { HoldfastWebProvider } = await import('@holdfast/openfeature')
const { OpenFeature, OpenFeatureProvider, useBooleanFlagValue } = await import('@openfeature/react-sdk')
const { bodyOf, median, quietLogger, report } = await import('./common.mjs')

const N = 1000
const RUNS = 15
const flagsWith = (changed) => Array.from({ length: N }, (_, i) => ({ key: `flag-${i}`, value: i === 500 ? changed : i % 2 === 0, reason: 'STATIC' }))

/** A fetch answering from memory: the current body, or a 503 while `down`. */
function serverInMemory() {
  let release
  // The first answer waits until the tree is mounted, so the switch from bootstrap to network
  // values is measured too.
  const gate = new Promise((resolve) => (release = resolve))
  const state = { body: bodyOf(flagsWith(true)), down: false }
  const fetch = async () => {
    await gate
    return state.down ? new Response('down', { status: 503 }) : new Response(state.body, { headers: { 'content-type': 'application/json' } })
  }
  return { state, fetch, release }
}

const options = (fetch) => ({
  url: 'http://flags.invalid',
  context: { targetingKey: 'bench-user' },
  bootstrap: { context: { targetingKey: 'bench-user' }, flags: flagsWith(true), fetchedAt: Date.now() },
  storage: 'memory',
  refreshOnFocus: false,
  fetch,
  logger: quietLogger,
})

async function measure(label, mount) {
  const server = serverInMemory()
  const renders = new Array(N).fill(0)
  const { root, client, li500, close } = await mount(server, renders)
  // Mounted on bootstrap values; now the first response arrives with the same values.
  let before = [...renders]
  await act(async () => {
    server.release()
    await client.start()
  })
  const firstAnswer = renders.reduce((n, count, i) => n + (count - before[i]), 0)
  const changeMs = []
  const changed = []
  for (let r = 0; r < RUNS; r++) {
    server.state.body = bodyOf(flagsWith(r % 2 === 1))
    before = [...renders]
    const start = performance.now()
    await act(() => client.refresh())
    const ms = performance.now() - start
    if (li500() !== (r % 2 === 1 ? 'on' : 'off')) throw new Error(`${label}: the changed flag did not reach the DOM`)
    changed.push(renders.reduce((n, count, i) => n + (count - before[i]), 0))
    if (r >= 3) changeMs.push(ms)
  }
  server.state.down = true
  before = [...renders]
  await act(() => client.refresh())
  if (client.getStatus().state !== 'stale') throw new Error(`${label}: the outage did not make the client stale`)
  const outage = renders.reduce((n, count, i) => n + (count - before[i]), 0)
  await act(async () => root.unmount())
  await close()
  return { firstAnswer, changed: median(changed), changedMax: Math.max(...changed), changeMs: median(changeMs), outage }
}

const holdfast = await measure('@holdfast/react', async (server, renders) => {
  const client = createClient(options(server.fetch))
  function Reader({ i }) {
    renders[i]++
    return h('li', null, useGate(`flag-${i}`) ? 'on' : 'off')
  }
  const root = createRoot(document.getElementById('a'))
  await act(async () => root.render(h(FlagProvider, { client }, h('ul', null, Array.from({ length: N }, (_, i) => h(Reader, { key: i, i }))))))
  void client.start()
  return { root, client, li500: () => document.querySelectorAll('#a li')[500].textContent, close: () => client.close() }
})

const openfeature = await measure('@openfeature/react-sdk', async (server, renders) => {
  const provider = new HoldfastWebProvider(options(server.fetch))
  // Resolves at once from the bootstrap; the first request waits at the gate.
  await OpenFeature.setProviderAndWait(provider, { targetingKey: 'bench-user' })
  function Reader({ i }) {
    renders[i]++
    return h('li', null, useBooleanFlagValue(`flag-${i}`, false) ? 'on' : 'off')
  }
  const root = createRoot(document.getElementById('b'))
  await act(async () => root.render(h(OpenFeatureProvider, null, h('ul', null, Array.from({ length: N }, (_, i) => h(Reader, { key: i, i }))))))
  return { root, client: provider.client, li500: () => document.querySelectorAll('#b li')[500].textContent, close: () => OpenFeature.close() }
})

const g = 'OpenFeature React SDK vs @holdfast/react: 1,000 components, one boolean flag each (jsdom)'
report([
  { group: g, metric: '@holdfast/react: components rendered when the first answer confirms the bootstrap values', value: holdfast.firstAnswer, unit: 'renders' },
  { group: g, metric: '@openfeature/react-sdk: components rendered when the first answer confirms the bootstrap values (source, reason move)', value: openfeature.firstAnswer, unit: 'renders' },
  { group: g, metric: '@holdfast/react (useGate): components rendered when 1 of 1,000 flags changes (median)', value: holdfast.changed, unit: 'renders' },
  { group: g, metric: '@holdfast/react (useGate): the same, worst run', value: holdfast.changedMax, unit: 'renders' },
  { group: g, metric: '@openfeature/react-sdk (useBooleanFlagValue): components rendered when 1 of 1,000 flags changes (median)', value: openfeature.changed, unit: 'renders' },
  {
    group: g,
    metric: '@openfeature/react-sdk: the same, worst run (the change right after a wave that rendered every reader: each one\'s status setState renders once more)',
    value: openfeature.changedMax,
    unit: 'renders',
  },
  { group: g, metric: '@holdfast/react: refresh() changing 1 flag → DOM committed', value: holdfast.changeMs, unit: 'ms' },
  { group: g, metric: '@openfeature/react-sdk: refresh() changing 1 flag → DOM committed', value: openfeature.changeMs, unit: 'ms' },
  { group: g, metric: '@holdfast/react: components rendered when an outage starts (503, values kept)', value: holdfast.outage, unit: 'renders' },
  { group: g, metric: '@openfeature/react-sdk: components rendered when an outage starts (status STALE, reasons STALE)', value: openfeature.outage, unit: 'renders' },
])
