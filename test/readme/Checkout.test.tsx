import { act, render, screen } from '@testing-library/react'
import { expect, test } from 'vitest'
import { FlagProvider } from '@holdfast/react'
import { createTestClient } from '@holdfast/react/testing'
import { Checkout } from './App'

test('the kill switch pauses checkout; a failed refresh shows saved settings', () => {
  const client = createTestClient({ flags: { 'checkout-kill-switch': false, 'banner-config': { text: 'Spring sale' } } })
  render(<FlagProvider client={client}><Checkout /></FlagProvider>)
  expect(screen.getByText('Spring sale')).toBeTruthy()
  expect(screen.queryByText('showing saved settings')).toBeNull()

  act(() => client.setStatus('stale'))                 // as after a failed refresh: values kept, marked stale
  expect(screen.getByText('showing saved settings')).toBeTruthy()

  act(() => client.set('checkout-kill-switch', true))  // listeners run at once, as on a server update
  expect(screen.getByText('Checkout is paused.')).toBeTruthy()
  expect(client.exposures).toContainEqual({ key: 'checkout-kill-switch', value: true, targetingKey: 'test-user' })
})
