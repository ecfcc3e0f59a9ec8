import { createClient } from '@holdfast/core'
import { user, getToken, buildTimeFlags, disableCheckout, renderBanner } from './your-app' // your own code

const client = createClient({
  url: 'https://flags.example.com',                 // any OFREP server
  context: { targetingKey: user.id, plan: user.plan },
  headers: () => ({ Authorization: `Bearer ${getToken()}` }), // called per request
  fallback: buildTimeFlags,                          // optional: for a first visit with no network
  events: { url: 'https://flags.example.com/holdfast/v1/events' },
})
await client.start()                                 // cache first, then one network attempt; never rejects

if (client.getGate('checkout-kill-switch')) disableCheckout()
const banner = () => client.getConfig('banner-config', { text: 'Welcome' })
renderBanner(banner())
client.subscribeFlag('banner-config', () => renderBanner(banner()))   // only when this flag changes

const { value, source, stale, updatedAt } = client.getDetails('new-checkout', false)
client.logEvent('checkout_completed', { value: 42 })
const { state, error } = client.getStatus()         // 'ready' | 'stale' | 'loading' | 'error'
