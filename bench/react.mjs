// React (jsdom + react-dom/client, @holdfast/react from dist): 1,000 components each read their
// own flag with useGate; a refresh changes 1 of the 1,000 flags. Counts the components that
// rendered again (must be 1) and times the re-render (refresh() → committed DOM), next to the
// same refresh when nothing changed (no render at all) for scale.
import { JSDOM } from 'jsdom'

const dom = new JSDOM('<!doctype html><html><body><div id="root"></div></body></html>', { pretendToBeVisual: true })
for (const key of ['window', 'document', 'navigator', 'HTMLElement', 'Node', 'Event', 'MutationObserver', 'requestAnimationFrame', 'cancelAnimationFrame'])
  Object.defineProperty(globalThis, key, { value: dom.window[key], configurable: true, writable: true })
globalThis.IS_REACT_ACT_ENVIRONMENT = true

const { createElement: h, act } = await import('react')
const { createRoot } = await import('react-dom/client')
const { FlagProvider, createClient, useGate } = await import('@holdfast/react')
const { bodyOf, median, memoryFetch, quietLogger, report } = await import('./common.mjs')

const N = 1000
const flagsWith = (changed) => Array.from({ length: N }, (_, i) => ({ key: `flag-${i}`, value: i === 500 ? changed : i % 2 === 0, reason: 'STATIC' }))
let body = bodyOf(flagsWith(true))
const client = createClient({
  url: 'http://flags.invalid',
  context: { targetingKey: 'bench-user' },
  bootstrap: { context: { targetingKey: 'bench-user' }, flags: flagsWith(true), fetchedAt: Date.now() },
  storage: 'memory',
  refreshOnFocus: false,
  fetch: memoryFetch(() => body),
  logger: quietLogger,
})

const renders = new Array(N).fill(0)
function Reader({ i }) {
  renders[i]++
  return h('li', null, useGate(`flag-${i}`) ? 'on' : 'off')
}
const list = h('ul', null, Array.from({ length: N }, (_, i) => h(Reader, { key: i, i })))
const root = createRoot(document.getElementById('root'))
let start = performance.now()
await act(async () => root.render(h(FlagProvider, { client }, list)))
const mountMs = performance.now() - start
await act(() => client.start())
const li500 = () => document.querySelectorAll('li')[500].textContent

const changeMs = []
const noopMs = []
const rendered = []
for (let r = 0; r < 25; r++) {
  // One flag flips.
  body = bodyOf(flagsWith(r % 2 === 1))
  const before = [...renders]
  start = performance.now()
  await act(() => client.refresh())
  const ms = performance.now() - start
  if (li500() !== (r % 2 === 1 ? 'on' : 'off')) throw new Error('the changed flag did not reach the DOM')
  rendered.push(renders.reduce((n, count, i) => n + (count - before[i]), 0))
  // The same body again: nothing changes.
  const again = [...renders]
  start = performance.now()
  await act(() => client.refresh())
  const noop = performance.now() - start
  if (renders.some((count, i) => count !== again[i])) throw new Error('a refresh that changed nothing rendered')
  if (r >= 5) {
    changeMs.push(ms)
    noopMs.push(noop)
  }
}
await act(async () => root.unmount())
await client.close()

const g = 'React: 1,000 components, useGate each (jsdom)'
report([
  { group: g, metric: 'first render of the 1,000 components (bootstrap values)', value: mountMs, unit: 'ms' },
  { group: g, metric: 'components rendered when 1 of 1,000 flags changes (want 1; max over 25 runs)', value: Math.max(...rendered), unit: 'renders' },
  { group: g, metric: 'refresh() changing 1 flag → DOM committed (1,000-flag response)', value: median(changeMs), unit: 'ms' },
  { group: g, metric: 'same refresh, nothing changed (no render): the re-render is the difference', value: median(noopMs), unit: 'ms' },
])
