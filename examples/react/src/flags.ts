import type { Bootstrap, JsonValue } from '@holdfast/react'

/** Banner copy from the `banner-config` flag. */
export interface BannerConfig {
  text?: string
  color?: string
}

/** The flags this page shows, with the default the code falls back to when nothing is known. */
export const DEMO_FLAGS: ReadonlyArray<{ key: string; defaultValue: JsonValue; about: string }> = [
  { key: 'checkout-kill-switch', defaultValue: false, about: 'kill switch: true closes checkout' },
  { key: 'banner-config', defaultValue: {}, about: 'JSON config for the banner' },
  { key: 'new-checkout', defaultValue: false, about: '50/50 rollout by user' },
  { key: 'beta-dashboard', defaultValue: false, about: 'targeted: @example.com or plan pro' },
  { key: 'checkout-button-text', defaultValue: 'Buy', about: 'string' },
  { key: 'free-shipping-threshold', defaultValue: 100, about: 'number' },
]

/**
 * The build-time snapshot: what a first visit shows before the flag server ever answered (and
 * what it keeps showing if it never does). Lowest precedence; any user.
 */
export const FALLBACK: Bootstrap = {
  context: { targetingKey: 'build' },
  fetchedAt: __HOLDFAST_DEMO_BUILT_AT__,
  flags: [
    { key: 'checkout-kill-switch', value: false, variant: 'off', reason: 'STATIC' },
    { key: 'banner-config', value: { text: 'Welcome to the Holdfast demo shop', color: '#2563eb' }, variant: 'welcome', reason: 'STATIC' },
    { key: 'new-checkout', value: false, variant: 'off', reason: 'STATIC' },
    { key: 'beta-dashboard', value: false, variant: 'off', reason: 'STATIC' },
    { key: 'checkout-button-text', value: 'Buy now', variant: 'buy', reason: 'STATIC' },
    { key: 'free-shipping-threshold', value: 50, variant: 'standard', reason: 'STATIC' },
  ],
}
