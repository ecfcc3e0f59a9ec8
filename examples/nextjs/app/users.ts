import type { EvaluationContext } from '@holdfast/core'

// Who is signed in. A real app reads its session; this example keeps the user's id in a cookie so
// the server can render their flags, and offers a few people whose flags differ.

/** The cookie that names the signed-in user. */
export const USER_COOKIE = 'holdfast-user'

export interface DemoUser {
  id: string
  name: string
  /** What the flag server's targeting rules see (`beta-dashboard` is on for @example.com or pro). */
  context: EvaluationContext
}

export const USERS: readonly DemoUser[] = [
  { id: 'ada', name: 'Ada (pro plan)', context: { targetingKey: 'ada', email: 'ada@example.com', plan: 'pro' } },
  { id: 'bob', name: 'Bob (free plan)', context: { targetingKey: 'bob', email: 'bob@other.org', plan: 'free' } },
]

export const GUEST: DemoUser = { id: 'guest', name: 'Guest', context: { targetingKey: 'guest', plan: 'free' } }

/** The user a cookie value names; anything unknown is the guest. */
export function userById(id: string | null | undefined): DemoUser {
  return USERS.find((user) => user.id === id) ?? GUEST
}
