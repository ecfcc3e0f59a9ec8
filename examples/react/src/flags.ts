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
 * The build-time snapshot: what a first visit shows before the flag server ever answered (and what
 * it keeps showing if it never does). Lowest precedence; any user. Not written by hand: `npm run
 * demo` makes it with `holdfast-server snapshot` from the upstream flag service, as a CI step would.
 */
export const FALLBACK: Bootstrap | undefined = __HOLDFAST_DEMO_FALLBACK__ ?? undefined
