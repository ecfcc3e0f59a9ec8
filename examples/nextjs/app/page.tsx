import { cookies } from 'next/headers'
// Server code imports from @holdfast/core: every entry of @holdfast/react is a client module
// ('use client'), whose functions a server component cannot call.
import { fetchBootstrap } from '@holdfast/core'
import { Flags } from './Flags'
import { FlagFooter } from './FlagFooter'
import { Shop } from './Shop'
import { USER_COOKIE, USERS, userById } from './users'

/** How long the render waits for the flag server before sending the page without a bootstrap. */
const BOOTSTRAP_TIMEOUT_MS = 1000

// Reading the cookie makes this page dynamic: rendered per request, never prerendered at build.
export default async function Page() {
  const user = userById((await cookies()).get(USER_COOKIE)?.value)
  // The URL the Next.js server reaches the flag server at, and the one the browser does: the same
  // on one machine, different behind a private network or a proxy.
  const serverUrl = process.env.HOLDFAST_URL || 'http://127.0.0.1:8787'
  const browserUrl = process.env.HOLDFAST_PUBLIC_URL || serverUrl

  // Never rejects: when the flag server is down or slower than the timeout this is null, the page
  // still renders (defaults on the server), and the browser shows its IndexedDB cache at once.
  const bootstrap = await fetchBootstrap({ url: serverUrl, context: user.context, timeoutMs: BOOTSTRAP_TIMEOUT_MS })

  return (
    <Flags url={browserUrl} context={user.context} bootstrap={bootstrap}>
      <header style={{ display: 'flex', gap: '1rem', alignItems: 'center', justifyContent: 'space-between' }}>
        <h1 style={{ fontSize: '1.4rem' }}>Holdfast shop</h1>
        <form method="post" action="/switch-user" style={{ display: 'flex', gap: '.5rem', alignItems: 'center' }}>
          <span data-testid="current-user">{user.name}</span>
          {USERS.map((other) => (
            <button key={other.id} name="user" value={other.id} disabled={other.id === user.id} data-testid={`switch-${other.id}`}>
              {other.name}
            </button>
          ))}
          <button name="user" value="guest" disabled={user.id === 'guest'} data-testid="switch-guest">
            Sign out
          </button>
        </form>
      </header>
      <Shop />
      <FlagFooter />
    </Flags>
  )
}
