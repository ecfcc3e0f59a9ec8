'use client'

import { useConfig, useGate } from '@holdfast/react'

export interface Banner {
  text: string
  color: string
}

/** What the page shows when no flag value is known at all (first visit while the flag server is down). */
export const DEFAULT_BANNER: Banner = { text: 'Welcome!', color: '#475569' }

/** The page itself: it only reads flags, and does not care where their values came from. */
export function Shop() {
  const banner = useConfig<Banner>('banner-config', DEFAULT_BANNER)
  const checkoutPaused = useGate('checkout-kill-switch')
  const newCheckout = useGate('new-checkout')
  const betaDashboard = useGate('beta-dashboard')

  return (
    <main data-testid="shop">
      <p data-testid="banner" style={{ background: banner.color, color: 'white', padding: '.75rem 1rem', borderRadius: 6 }}>
        {banner.text}
      </p>
      {checkoutPaused ? (
        <p data-testid="checkout-paused">Checkout is paused for a few minutes. Your cart is saved.</p>
      ) : (
        <button data-testid="checkout" type="button">
          {newCheckout ? 'Check out (new, faster checkout)' : 'Check out'}
        </button>
      )}
      {betaDashboard && (
        <section data-testid="beta-dashboard">
          <h2 style={{ fontSize: '1.1rem' }}>Beta dashboard</h2>
          <p>Your sales this week, live. Thanks for trying it early.</p>
        </section>
      )}
    </main>
  )
}
