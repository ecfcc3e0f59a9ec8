// The `headers` prop of a provider that creates its client: an app that passes a new token after
// login or a token refresh (`headers={{ Authorization: `Bearer ${token}` }}`) must have it sent on
// every later request — flags, events, the live stream — by the same client, values kept.
import { afterEach } from 'vitest'
import { describe, expect, it } from 'vitest'
import { FlagProvider, useFlagClient, useValue, type ClientOptions, type FlagClient, type HeadersOption } from '@holdfast/react'
import { act, render, screen, waitFor } from './rtl'
import { clientOptions, startServer } from './testServer'
import { pollUntil, startStreamingOfrep, type StreamingOfrep } from '../support/streamingOfrep'

const streams: StreamingOfrep[] = []
afterEach(async () => {
  await Promise.all(streams.splice(0).map((s) => s.close()))
})

function Greeting({ onClient, flag = 'greeting' }: { onClient: (client: FlagClient) => void; flag?: string }) {
  onClient(useFlagClient())
  return <p>{useValue(flag, 'DEFAULT')}</p>
}

describe('the headers prop', () => {
  for (const kind of ['an object', 'a function'] as const) {
    it(`as ${kind}: a new token passed after login is sent on every later flag and events request, by the same client`, async () => {
      const server = await startServer({ greeting: 'hello' })
      const options = clientOptions(server, { events: { url: server.eventsUrl, exposures: false } })
      const headers = (token: string): HeadersOption => (kind === 'an object' ? { Authorization: `Bearer ${token}` } : () => ({ Authorization: `Bearer ${token}` }))
      const seen = new Set<FlagClient>()
      const app = (token: string) => (
        <FlagProvider {...options} headers={headers(token)}>
          <Greeting onClient={(c) => seen.add(c)} />
        </FlagProvider>
      )
      const { rerender } = render(app('old'))
      await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hello'))
      expect(server.authorization.flags).toEqual(['Bearer old'])

      rerender(app('new'))
      const [client] = seen
      server.flags = { greeting: 'hello again' }
      await act(() => client.refresh())
      expect(screen.getByRole('paragraph').textContent).toBe('hello again')
      expect(server.authorization.flags).toEqual(['Bearer old', 'Bearer new'])
      client.logEvent('clicked')
      await act(() => client.flush())
      expect(server.authorization.events).toEqual(['Bearer new'])
      expect(seen.size).toBe(1)
    })
  }

  it("a login that brings a new user and a new token in one render: the new user's first request carries the new token", async () => {
    const server = await startServer({}, { anonymous: { greeting: 'hi guest' }, alice: { greeting: 'hi alice' } })
    const options = clientOptions(server)
    const app = (user: string, token: string) => (
      <FlagProvider {...options} context={{ targetingKey: user }} headers={{ Authorization: `Bearer ${token}` }}>
        <Greeting onClient={() => {}} />
      </FlagProvider>
    )
    const { rerender } = render(app('anonymous', 'guest'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi guest'))
    rerender(app('alice', 'alice-token'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice'))
    expect(server.requests).toEqual(['anonymous', 'alice'])
    expect(server.authorization.flags).toEqual(['Bearer guest', 'Bearer alice-token'])
  })

  it("a logout that drops the headers prop (an object, then undefined or a function): the guest's requests no longer carry the user's token", async () => {
    // Before: the client kept the object it was created with and refilled it only from a later
    // object, so after `headers={token ? { Authorization: … } : undefined}` went undefined on
    // logout every request, the guest's included, still sent the logged-out user's bearer token.
    const server = await startServer({}, { alice: { greeting: 'hi alice' }, guest: { greeting: 'hi guest' }, bob: { greeting: 'hi bob' } })
    const options = clientOptions(server)
    const app = (user: string, headers: HeadersOption | undefined) => (
      <FlagProvider {...options} context={{ targetingKey: user }} headers={headers}>
        <Greeting onClient={() => {}} />
      </FlagProvider>
    )
    const { rerender } = render(app('alice', { Authorization: 'Bearer alice-token' }))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi alice'))
    rerender(app('guest', undefined))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi guest'))
    rerender(app('bob', () => ({ Authorization: 'Bearer bob-token' })))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('hi bob'))
    expect(server.requests).toEqual(['alice', 'guest', 'bob'])
    expect(server.authorization.flags).toEqual(['Bearer alice-token', '', 'Bearer bob-token'])
  })

  // With a logout between (a headers object whose getter throws, a token read after logout):
  // pinned, it passes on main too. The provider copies an object prop in a try, so such a getter
  // never reaches core or the live code and never throws into render; the last readable headers
  // stay in use until a readable prop comes.
  for (const loggedOutBetween of [false, true])
    it(`a live stream that reconnects after the token changed sends the new one${loggedOutBetween ? ' (a getter that throws between: never into render)' : ''}`, async () => {
      const s = await startStreamingOfrep((self) => [{ type: 'sse', url: `${self}/stream` }])
      streams.push(s)
      const options: ClientOptions = { url: s.url, context: { targetingKey: 'alice' }, storage: 'memory', liveUpdates: true, logger: { warn() {}, error() {} } }
      let client!: FlagClient
      const app = (headers: Record<string, string>) => (
        <FlagProvider {...options} headers={headers}>
          <Greeting onClient={(c) => (client = c)} />
        </FlagProvider>
      )
      const { rerender, unmount } = render(app({ Authorization: 'Bearer old' }))
      await pollUntil(() => s.open.length === 1, 5000, 'the stream')
      expect(s.streamHeaders.map((h) => h.authorization)).toEqual(['Bearer old'])
      if (loggedOutBetween) {
        const loggedOut = Object.defineProperty({}, 'Authorization', { enumerable: true, get: () => { throw new Error('no session') } })
        expect(() => rerender(app(loggedOut as Record<string, string>))).not.toThrow()
        await act(() => client.refresh())
        expect(client.getStatus().state).toBe('ready')
      }
      rerender(app({ Authorization: 'Bearer new' }))
      s.open[0].destroy() // the connection drops: the client connects again
      // A dropped stream is tried again after the backoff's 2–4 s (spread so a fleet does not come back at once).
      await pollUntil(() => s.streamHeaders.length === 2, 12_000, 'the stream again')
      expect(s.streamHeaders.map((h) => h.authorization)).toEqual(['Bearer old', 'Bearer new'])
      unmount()
    }, 30_000)

  // A vendor scopes a stream to the SDK key it was opened with. Before, the stream stayed open with
  // the old key after the prop changed: the new key's changes were never announced (only polling
  // or a focus showed them), and the old key's notices each made a needless refetch.
  it('an SDK key changed in a headers object: the stream opened with the old key closes, one opens with the new key', async () => {
    const s = await startStreamingOfrep()
    streams.push(s)
    const options: ClientOptions = { url: s.url, context: { targetingKey: 'alice' }, storage: 'memory', liveUpdates: true, refreshOnFocus: false, logger: { warn() {}, error() {} } }
    let client!: FlagClient
    const app = (key: string) => (
      <FlagProvider {...options} headers={{ 'X-API-Key': key }}>
        <Greeting onClient={(c) => (client = c)} />
      </FlagProvider>
    )
    const { rerender, unmount } = render(app('staging'))
    await pollUntil(() => s.open.length === 1, 5000, 'the stream')
    rerender(app('production'))
    await act(() => client.refresh())
    await pollUntil(() => s.open.length === 2, 5000, 'a stream with the production key')
    expect(s.streamHeaders.map((h) => h['x-api-key'])).toEqual(['staging', 'production'])
    await pollUntil(() => s.open[0].closed, 2000, 'the staging stream to close')
    unmount()
  }, 20_000)
})

// The cache (and the tabs sharing a stream) is keyed by static headers, an SDK key. The provider
// keeps one client through re-renders with a new `headers` literal; before, it handed core a
// function for an object prop, so every key on one origin shared one cache entry: a production
// page started in an outage showed the values a staging page had cached, as `cache`.
/** Pages of one origin (one storageName) on the SDK key they are given; `client()` is the latest page's. */
function keyedPages(server: Parameters<typeof clientOptions>[0]) {
  const options = clientOptions(server, { liveUpdates: false, refreshOnFocus: false })
  let client: FlagClient | undefined
  const page = (key: string) => (
    <FlagProvider {...options} headers={{ 'X-API-Key': key }}>
      <Greeting onClient={(c) => (client = c)} flag="banner" />
    </FlagProvider>
  )
  return { page, client: () => client! }
}

describe('a headers object keys the cache', () => {
  it("a page on another SDK key, started in an outage, never shows this key's cached values; its own are still there", async () => {
    const server = await startServer({ banner: 'staging-value' })
    const { page, client } = keyedPages(server)
    const staging = render(page('staging'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('staging-value'))
    await act(() => client().close())
    staging.unmount()

    server.mode = 'error'
    const production = render(page('production'))
    await waitFor(() => expect(client().getStatus().state).toBe('error'))
    // Before: 'staging-value', source 'cache', for the production key.
    expect(screen.getByRole('paragraph').textContent).toBe('DEFAULT')
    expect(client().getDetails('banner', 'DEFAULT').source).toBe('default')
    production.unmount()

    render(page('staging'))
    await waitFor(() => expect(client().getDetails('banner', 'DEFAULT')).toMatchObject({ value: 'staging-value', source: 'cache' }))
  })

  it("a provider switched to another key by value caches that key's answers under it, never under the first key", async () => {
    const server = await startServer({ banner: 'staging-value' })
    const { page, client } = keyedPages(server)
    const switched = render(page('staging'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('staging-value'))
    switched.rerender(page('production'))
    server.flags = { banner: 'production-value' }
    await act(() => client().refresh())
    expect(screen.getByRole('paragraph').textContent).toBe('production-value')
    await act(() => client().close())
    switched.unmount()

    server.mode = 'error'
    for (const key of ['staging', 'production']) {
      const reloaded = render(page(key))
      // Before: the staging page showed 'production-value' (written under the staging key).
      await waitFor(() => expect(client().getDetails('banner', 'DEFAULT')).toMatchObject({ value: `${key}-value`, source: 'cache' }))
      reloaded.unmount()
    }
  })

  it("an answer fetched on the first key while the key changed is never cached under the new key", async () => {
    const server = await startServer({ banner: 'staging-value' })
    const { page, client } = keyedPages(server)
    const switched = render(page('staging'))
    await waitFor(() => expect(screen.getByRole('paragraph').textContent).toBe('staging-value'))
    server.mode = 'hang'
    let out!: Promise<unknown>
    act(() => void (out = client().refresh()))
    await waitFor(() => expect(server.requests.length).toBe(2))
    // The key changes while the staging request is out; staging changed a flag meanwhile.
    switched.rerender(page('production'))
    server.flags = { banner: 'staging-value-2' }
    server.release()
    await act(() => out)
    await act(() => client().close())
    switched.unmount()

    server.mode = 'error'
    render(page('production'))
    await waitFor(() => expect(client().getStatus().state).toBe('error'))
    // Before: 'staging-value-2', source 'cache', on the production key.
    expect(client().getDetails('banner', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
  })
})
