'use client'

import { useFlagDetails, useFlagStatus } from '@holdfast/react'
import { DEFAULT_BANNER } from './Shop'

const FLAGS: ReadonlyArray<[key: string, defaultValue: boolean | object]> = [
  ['banner-config', DEFAULT_BANNER],
  ['checkout-kill-switch', false],
  ['new-checkout', false],
  ['beta-dashboard', false],
]

/** Where each value came from, and how fresh the client is: what Holdfast says honestly. */
export function FlagFooter() {
  const status = useFlagStatus()
  return (
    <footer style={{ marginTop: '2rem', fontSize: '.85rem', color: '#475569' }}>
      <p>
        Flags: <span data-testid="status-state">{status.state}</span> from{' '}
        <span data-testid="status-source">{status.source}</span>
        {status.error && (
          <>
            {' '}
            (<span data-testid="status-error">{status.error.code}</span>)
          </>
        )}
      </p>
      <ul>
        {FLAGS.map(([key, defaultValue]) => (
          <FlagSource key={key} flagKey={key} defaultValue={defaultValue} />
        ))}
      </ul>
    </footer>
  )
}

function FlagSource({ flagKey, defaultValue }: { flagKey: string; defaultValue: boolean | object }) {
  const details = useFlagDetails(flagKey, defaultValue)
  return (
    <li>
      {flagKey}: <span data-testid={`flag-${flagKey}-source`}>{details.source}</span>
      {details.stale ? ' (stale)' : ''}
    </li>
  )
}
