/**
 * The Holdfast demo page. Test ids (the end-to-end suite drives the page through these):
 *
 *   flag-<key>                 row of one flag (key as in examples/flags.json)
 *   flag-<key>-value           the value the app gets, as JSON (e.g. `true`, `"Buy now"`, `{"text":…}`)
 *   flag-<key>-source          network | cache | bootstrap | fallback | default
 *   flag-<key>-variant         the variant, or "—"
 *   flag-<key>-error           the flag's errorCode (present only when there is one)
 *   flag-<key>-age             how long ago the value was first received ("—" when never)
 *   flag-<key>-stale           "stale" or "fresh"
 *   status-state               loading | ready | stale | error
 *   status-source              none | network | cache | bootstrap | fallback
 *   status-last-success        age of the last 200/304 ("—" when none)
 *   status-error               the error code (NETWORK, TIMEOUT, HTTP, INVALID_RESPONSE, EMPTY_RESPONSE…) or "—"
 *   status-error-message       the error's message (present only with an error)
 *   status-storage             indexeddb | memory
 *   refresh                    button: client.refresh()
 *   events-queued / events-sent / events-dropped    event counts
 *   events-retries             retried requests (`retriedRequests`), or retried events with an older client
 *   events-waiting             why events are waiting ("Nothing waiting." when none are)
 *   log-event                  button: logs a custom event "demo-button-clicked"
 *   flush-events               button: client.flush()
 *   outage-<mode>              buttons: none | 503 | empty | empty-flags | html | hang (then refreshes)
 *   outage-events              checkbox: the events endpoint answers 503 too
 *   outage-current             the current outage mode of the flag server the browser talks to (the relay)
 *   outage-problem             shown when its demo controls cannot be reached
 *   upstream-outage-<mode> / upstream-outage-current / upstream-outage-problem
 *                              the same for the upstream flag service behind the relay (with the relay only)
 *   relay-upstream-state       the relay's view of the upstream: ok | failing | unauthorized | none
 *   relay-fetched-age          how old the values the relay serves are (its fetchedAt)
 *   relay-source / relay-last-success / relay-refused / relay-last-error    the rest of the relay's status
 *   kill-switch-toggle         button: turns checkout-kill-switch on/off in the flag server's flags file
 *   kill-switch-server         what the flags file says: "on" | "off"
 *   kill-switch-seen           what this tab's client holds: "on" | "off"
 *   kill-switch-pending        shown when the server did not serve the change within 5 s (an outage)
 *   current-user               the current context: "alice · email=alice@example.com · plan=pro"
 *   user-alice / user-bob / user-anonymous    buttons: switch user (anonymous = a new random id)
 *   banner                     the banner from banner-config ("(no banner)" without one)
 *   checkout                   the checkout area; data-variant="new|classic", data-disabled="true|false"
 *   checkout-variant           "new one-page checkout" or "classic checkout" (the new-checkout rollout)
 *   checkout-closed            shown when the kill switch is on
 *   checkout-button            disabled by the kill switch; logs "checkout-clicked"
 *   beta-dashboard             the beta-dashboard gate's effect
 *
 * `?user=alice|bob|anonymous` picks the first user; otherwise the last chosen one (localStorage).
 */
import { useState } from 'react'
import { FlagProvider } from '@holdfast/react'
import { EVENTS_URL, FLAGS_URL, RELAY } from './config'
import { FALLBACK } from './flags'
import { initialUser, saveUser, type DemoUser } from './users'
import { EventsPanel } from './components/EventsPanel'
import { FlagTable } from './components/FlagTable'
import { KillSwitchPanel } from './components/KillSwitchPanel'
import { OutagePanel } from './components/OutagePanel'
import { RelayPanel } from './components/RelayPanel'
import { ShopPreview } from './components/ShopPreview'
import { StatusPanel } from './components/StatusPanel'
import { UserSwitcher } from './components/UserSwitcher'

export function App() {
  const [user, setUser] = useState(initialUser)
  const switchUser = (next: DemoUser) => {
    saveUser(next)
    // Drop ?user=… so a reload keeps the user just chosen.
    if (window.location.search) window.history.replaceState(null, '', window.location.pathname)
    setUser(next)
  }

  // Options other than `context` and `headers` are read once; a new `context` switches the user (setContext).
  return (
    <FlagProvider
      url={FLAGS_URL}
      context={user.context}
      fallback={FALLBACK}
      refreshIntervalMs={5000}
      requestTimeoutMs={3000}
      events={{ url: EVENTS_URL, flushIntervalMs: 3000 }}
    >
      <header className="top">
        <div>
          <h1>Holdfast demo</h1>
          <p className="muted">
            Feature flags that keep the last known good values through any outage, and say where each value came from.
          </p>
        </div>
        <UserSwitcher user={user} onChange={switchUser} />
      </header>
      {/* The controls come first: nothing above them changes size, so they never move under the pointer. */}
      <main className="grid">
        <OutagePanel />
        <KillSwitchPanel />
        <ShopPreview />
        <StatusPanel />
        <EventsPanel />
        {RELAY && <RelayPanel />}
        <FlagTable />
      </main>
      <footer className="muted small">
        flag server <code>{FLAGS_URL}</code> · polling every 5 s · events every 3 s
      </footer>
    </FlagProvider>
  )
}
