// app/page.tsx — a server component
import { cookies } from 'next/headers'
import { fetchBootstrap } from '@holdfast/core' // not @holdfast/react: that entry is a 'use client' module
import { getUser } from '../lib/session' // your session
import { Flags } from './Flags'
import { Shop } from './Shop'

export default async function Page() {
  const user = await getUser(await cookies()) // reading cookies makes the page dynamic
  const context = { targetingKey: user.id, email: user.email, plan: user.plan }
  // Never rejects: when the flag server is down or slower than 1 s this is null and the page renders anyway.
  const bootstrap = await fetchBootstrap({ url: process.env.HOLDFAST_URL!, context, timeoutMs: 1000 })
  return (
    <Flags url={process.env.HOLDFAST_PUBLIC_URL ?? process.env.HOLDFAST_URL!} context={context} bootstrap={bootstrap}>
      <Shop />
    </Flags>
  )
}
