// The page of the OpenFeature browser test: the official web SDK and HoldfastWebProvider, bundled
// from the built packages (esbuild, browser conditions) as an app's bundler would. The flag
// server's URL comes in the query string; the test reads what the page exposes on `window`.
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk'
import { HoldfastWebProvider } from '@holdfast/openfeature'

const flags = new URLSearchParams(location.search).get('flags')
const seen = []
for (const event of [ProviderEvents.Ready, ProviderEvents.Stale, ProviderEvents.Error, ProviderEvents.ConfigurationChanged])
  OpenFeature.addHandler(event, (details) => seen.push(details?.flagsChanged ? `${event}[${details.flagsChanged.length}]` : event))

const provider = new HoldfastWebProvider({ url: flags, refreshOnFocus: false, events: { url: `${flags}/holdfast/v1/events`, flushIntervalMs: 600_000 } })
const client = OpenFeature.getClient()
const pick = (d) => ({ value: d.value, reason: d.reason, variant: d.variant, errorCode: d.errorCode, source: d.flagMetadata.source, stale: d.flagMetadata.stale })

window.app = {
  ready: OpenFeature.setProviderAndWait(provider, { targetingKey: 'browser-user', email: 'ann@example.com' }).then(() => 'ok', (e) => `rejected: ${e}`),
  events: () => [...seen],
  status: () => client.providerStatus,
  evaluate: () => ({ beta: pick(client.getBooleanDetails('beta', false)), banner: pick(client.getObjectDetails('banner', {})) }),
  track: (name, details) => client.track(name, details),
  close: () => OpenFeature.close(),
  // Whether Holdfast's cache entry is in IndexedDB yet (the database idb-keyval made for it).
  cached: () =>
    new Promise((resolve) => {
      const open = indexedDB.open('holdfast')
      open.onerror = () => resolve(false)
      open.onsuccess = () => {
        const db = open.result
        if (!db.objectStoreNames.contains('keyval')) return resolve(false)
        const keys = db.transaction('keyval').objectStore('keyval').getAllKeys()
        keys.onsuccess = () => resolve(keys.result.some((k) => String(k).startsWith('holdfast:flags:')))
        keys.onerror = () => resolve(false)
      }
    }),
}
