import { FlagProvider, FlagsReady, useGate, useConfig, useFlagStatus, type Bootstrap } from '@holdfast/react'
import { Banner, Cart, Spinner, type User } from './your-app' // your own code

export function App({ user, bootstrap }: { user: User; bootstrap?: Bootstrap }) {
  return (
    <FlagProvider url="https://flags.example.com" context={{ targetingKey: user.id, plan: user.plan }} bootstrap={bootstrap}>
      <FlagsReady timeoutMs={100} fallback={<Spinner />}>
        <Checkout />
      </FlagsReady>
    </FlagProvider>
  )
}

export function Checkout() {
  const killed = useGate('checkout-kill-switch')               // re-renders only when this flag changes
  const banner = useConfig('banner-config', { text: 'Welcome' })
  const { state } = useFlagStatus()
  if (killed) return <p>Checkout is paused.</p>
  return <><Banner {...banner} />{state === 'stale' && <small>showing saved settings</small>}<Cart /></>
}
