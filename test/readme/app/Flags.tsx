// app/Flags.tsx
'use client'
import type { ReactNode } from 'react'
import { FlagProvider, type Bootstrap, type EvaluationContext } from '@holdfast/react'

export function Flags(props: { url: string; context: EvaluationContext; bootstrap: Bootstrap | null; children: ReactNode }) {
  const { url, context, bootstrap, children } = props
  // key: the provider reads its options once (`context` and `headers` excepted); a new user comes with a new bootstrap.
  return (
    <FlagProvider key={context.targetingKey} url={url} context={context} bootstrap={bootstrap ?? undefined}>
      {children}
    </FlagProvider>
  )
}
