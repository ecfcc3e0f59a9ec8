'use client'
// A stand-in for the app's page content used by the README's Next.js page (test/readme/app/page.tsx).
import { useGate } from '@holdfast/react'

export function Shop() {
  return <p>{useGate('beta-dashboard') ? 'beta' : 'classic'}</p>
}
