'use client'

import type { ReactNode } from 'react'
import { FlagProvider, type Bootstrap, type EvaluationContext } from '@holdfast/react'

/**
 * The browser side of the flags: one client for this user, seeded with the server's bootstrap so
 * the first render (on the server, and again while hydrating) already has the user's values.
 * `key` gives every user a client of their own: a new user comes with a new bootstrap, which the
 * provider only reads when it creates its client.
 */
export function Flags(props: { url: string; context: EvaluationContext; bootstrap: Bootstrap | null; children: ReactNode }) {
  const { url, context, bootstrap, children } = props
  return (
    <FlagProvider key={context.targetingKey} url={url} context={context} bootstrap={bootstrap ?? undefined}>
      {children}
    </FlagProvider>
  )
}
