import type { EvaluationContext } from '@holdfast/react'

/** A user the demo can switch to. */
export interface DemoUser {
  name: 'alice' | 'bob' | 'anonymous'
  context: EvaluationContext
}

const STORAGE_KEY = 'holdfast-demo:user'

export const ALICE: DemoUser = { name: 'alice', context: { targetingKey: 'alice', email: 'alice@example.com', plan: 'pro' } }
export const BOB: DemoUser = { name: 'bob', context: { targetingKey: 'bob', email: 'bob@example.org', plan: 'free' } }

/** A new anonymous visitor: a random device id, no attributes. */
export function anonymousUser(): DemoUser {
  return { name: 'anonymous', context: { targetingKey: `anon-${crypto.randomUUID().slice(0, 8)}` } }
}

/**
 * The user to start with: `?user=alice|bob|anonymous` when given, else the one chosen last
 * (kept in localStorage, so a reload shows the same user's cached flags), else Alice.
 */
export function initialUser(): DemoUser {
  const asked = new URLSearchParams(window.location.search).get('user')
  if (asked === 'alice') return ALICE
  if (asked === 'bob') return BOB
  if (asked === 'anonymous') return anonymousUser()
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null') as DemoUser | null
    if (saved && typeof saved.context?.targetingKey === 'string') return saved
  } catch {
    // Unreadable or blocked storage: start over with Alice.
  }
  return ALICE
}

/** Remembers the chosen user across reloads. */
export function saveUser(user: DemoUser): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(user))
  } catch {
    // Storage blocked: the choice lasts until the reload.
  }
}
