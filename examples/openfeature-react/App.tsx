// Holdfast behind the OpenFeature React SDK: the app keeps OpenFeature's vendor-neutral hooks
// and gets Holdfast's last known good values, IndexedDB cache and persisted events underneath.
// Flags are the demo's (examples/flags.json); run the reference server with `npm run demo`.
import { Suspense } from 'react'
import { OpenFeature, OpenFeatureProvider, useBooleanFlagValue, useFlag, useOpenFeatureClient } from '@openfeature/react-sdk'
import { HoldfastWebProvider } from '@holdfast/openfeature'

/** Call once at start-up, before rendering. `setProvider` (not `…AndWait`) never blocks the page. */
export function setUpFlags(url: string, user: { id: string; plan: string }): HoldfastWebProvider {
  const provider = new HoldfastWebProvider({ url, events: { url: `${url}/holdfast/v1/events` } })
  OpenFeature.setProvider(provider, { targetingKey: user.id, plan: user.plan })
  return provider
}

/** Switching the user: the provider shows their cached values at once, then the fresh ones. */
export const logIn = (user: { id: string; plan: string }) => OpenFeature.setContext({ targetingKey: user.id, plan: user.plan })

function Banner() {
  const banner = useFlag('banner-config', { text: 'Welcome', color: '#333' })
  // Holdfast keeps serving through an outage; OpenFeature's reason says so.
  const note = banner.reason === 'STALE' ? ' (saved copy: the flag service is unreachable)' : ''
  return (
    <p className="banner" style={{ color: banner.value.color }}>
      {banner.value.text}
      {note}
    </p>
  )
}

function Checkout() {
  const newCheckout = useBooleanFlagValue('new-checkout', false)
  const killed = useBooleanFlagValue('checkout-kill-switch', false)
  const client = useOpenFeatureClient()
  if (killed) return <p className="checkout">Checkout is paused</p>
  return (
    <button className="checkout" onClick={() => client.track('checkout-clicked', { value: 1, variant: newCheckout ? 'new' : 'classic' })}>
      {newCheckout ? 'New checkout' : 'Checkout'}
    </button>
  )
}

/** The page: suspends until the provider holds values (from the cache, a bootstrap or the network). */
export function App() {
  return (
    <OpenFeatureProvider suspendUntilReady>
      <Suspense fallback={<p className="loading">Loading…</p>}>
        <Banner />
        <Checkout />
      </Suspense>
    </OpenFeatureProvider>
  )
}
