import { useConfig, useFlagClient, useGate, useValue } from '@holdfast/react'
import type { BannerConfig } from '../flags'

/** What the flags do to the product: the banner, the checkout (kill switch, rollout) and a beta link. */
export function ShopPreview() {
  const banner = useConfig<BannerConfig>('banner-config', {})
  const betaDashboard = useGate('beta-dashboard')
  return (
    <section className="panel shop">
      <h2>The shop, as this user sees it</h2>
      {typeof banner.text === 'string' ? (
        <div data-testid="banner" className="banner" style={{ background: typeof banner.color === 'string' ? banner.color : '#475569' }}>
          {banner.text}
        </div>
      ) : (
        <div data-testid="banner" className="banner banner-none muted">
          (no banner)
        </div>
      )}
      <Checkout />
      <p className="small">
        {betaDashboard ? (
          <a data-testid="beta-dashboard" href="#beta" onClick={(e) => e.preventDefault()}>
            Try the beta dashboard →
          </a>
        ) : (
          <span data-testid="beta-dashboard" className="muted">
            Beta dashboard: not for this user
          </span>
        )}
      </p>
    </section>
  )
}

function Checkout() {
  const client = useFlagClient()
  const killed = useGate('checkout-kill-switch')
  const newCheckout = useGate('new-checkout')
  const buttonText = useValue('checkout-button-text', 'Buy')
  const threshold = useValue('free-shipping-threshold', 100)
  const variant = newCheckout ? 'new' : 'classic'
  return (
    <div data-testid="checkout" data-variant={variant} data-disabled={killed} className={`checkout checkout-${variant}`}>
      <div className="checkout-head">
        <strong>Checkout</strong>
        <span data-testid="checkout-variant" className="pill">
          {newCheckout ? 'new one-page checkout' : 'classic checkout'}
        </span>
      </div>
      <p className="small">Free shipping on orders over ${threshold}.</p>
      {killed && (
        <p data-testid="checkout-closed" className="closed">
          Checkout is paused by the kill switch. Your cart is saved.
        </p>
      )}
      <button
        data-testid="checkout-button"
        disabled={killed}
        onClick={() => client.logEvent('checkout-clicked', { metadata: { variant } })}
      >
        {buttonText}
      </button>
    </div>
  )
}
