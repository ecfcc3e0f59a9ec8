// Stand-ins for "your own code" in the README's quickstarts (test/readme/*), so that the
// quickstarts compile exactly as printed. Not part of any README block.
import type { Bootstrap } from '@holdfast/core'

/** The signed-in user, as an app would have it. */
export interface User {
  id: string
  plan: 'free' | 'pro'
}

export const user: User = { id: 'user-1', plan: 'pro' }
export const getToken = (): string => 'token'
export const buildTimeFlags: Bootstrap = { context: { targetingKey: 'build' }, flags: [], fetchedAt: 0 }
export function disableCheckout(): void {}
export function renderBanner(banner: { text: string }): void {
  void banner
}

export function Banner({ text }: { text: string }) {
  return <p>{text}</p>
}

export function Cart() {
  return <p>cart</p>
}

export function Spinner() {
  return <p>loading…</p>
}

/** Where the relay is, and this visitor, for the fallback example. */
export const RELAY_URL = 'https://flags.example.com'
export const context = { targetingKey: 'anonymous' }
