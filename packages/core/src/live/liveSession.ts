// The running live updates of one client (liveUpdates.ts starts them, in the chunk loaded on
// demand once a bulk answer advertises a stream). It ties the stream connection, the tabs and the client's flag sync together:
//
//   leader tab: stream notice ──► notice(version) ──► answer ──► post {values} ──► other tabs
//   other tab:  {notice} of its own user ──► wait for the leader's {values} (up to 5 s) ──► adopt;
//               the leader's request ended otherwise ({settled}: a 304, an error) ──► fetch itself
//               {notice} of another user ──► wait 100–400 ms for {values} of its own user ──► adopt, or fetch itself
//   stream down ──► poll every fallbackPollMs (jittered) until it is back ──► on reopen, one catch-up refetch
//   page hidden > inactivityDelaySec ──► stream closed (leadership given up); visible ──► full refetch + reconnect
import type { EnvironmentHandlers } from '../types'
import type { AttemptExtra, OkResult } from '../flags/sync'
import type { FetchResult } from '../protocol/fetchFlags'
import type { LiveUpdates, LiveUpdatesDeps } from './liveUpdates'
import { readShared } from './readShared'
import { rememberStream } from './rememberStream'
import { createStreamConnection, random01, type StreamConnection } from './streamConnection'
import { readStreamInfo, sameOrigin } from './streamInfo'
import { createTabLink, keyTag, type TabLink, type TabMessage } from './tabs'

/** Longest a tab waits for the answer of a leader showing its user before fetching itself. */
const LEADER_WAIT_MS = 5000

/** Shortest time between two refetches for notices: at most two a second, and a change still shows within 2 s. */
const NOTICE_GAP_MS = 500

/** Starts live updates for one client (see the file comment): the stream, the tabs, the page's activity. */
export function createLiveSession(deps: LiveUpdatesDeps): LiveUpdates {
  const { clock, sync, environment, options } = deps
  const inPage = typeof document !== 'undefined'
  const tabs = options.shareTabs ?? (inPage && typeof BroadcastChannel !== 'undefined')
  // Numbers an app passes (an unset environment variable: NaN, 0, a negative, Infinity) fall back
  // to their defaults with a warning, as the client's own do (flags/options.ts): `fallbackPollMs: 0`
  // (read as "no fallback polling", as `refreshIntervalMs: 0` is) polled on a 0 ms timer, bulk
  // requests back to back for as long as the stream was down. A poll period under a second (30
  // typed for 30 s) is raised to one with a warning, as `refreshIntervalMs` is (MIN_POLL_MS, written
  // here as 1000: imported, this on-demand chunk would import it from the up-front bundle): it
  // polled every 30 ms. (A small heartbeatTimeoutMs or inactivityDelaySec storms nothing: the
  // stream's reconnects wait on its backoff, and a sleep ends only when the page is shown again.)
  const number = (name: 'inactivityDelaySec' | 'fallbackPollMs' | 'heartbeatTimeoutMs', min?: number) => {
    let value = options[name]
    if (value! > 0 && value! < min!) deps.logger.warn(`liveUpdates.${name} ${value} raised to ${(value = min)}`)
    if (value === undefined || (value > 0 && value < Infinity)) return value
    deps.logger.warn(`liveUpdates.${name} ${value} is not usable; using the default`)
  }
  const inactivityDelaySec = number('inactivityDelaySec')
  const fallbackPollMs = number('fallbackPollMs', 1000) ?? 30_000
  const heartbeatTimeoutMs = number('heartbeatTimeoutMs')
  let stream = deps.stream
  let connection: StreamConnection | undefined
  let pollTimer: unknown
  let hiddenTimer: unknown
  let asleep = false
  let closed = false
  /** The leader's stream is down (told over the channel): followers poll as well. */
  let leaderDown = false
  /**
   * This tab's latest 200 advertised no usable stream (a server restarted with live updates off):
   * a stream still open is kept (another server of the fleet may still have it), but one that is
   * down is not dialled again, nor polled for; the app's own polling is what is left (OFREP: "If
   * not present, the provider should continue using polling"). A 200 that advertises one reopens it.
   */
  let unadvertised = false
  let waiting: { timer: unknown; version?: string } | undefined

  // Tabs share an answer only with tabs that would have sent the same request: the same URL, the
  // same context, and the same configured headers. Those of a request are what it went out with
  // (fetchFlags' `creds`, a hash: the channel never carries a raw token); a tab's own are those of
  // its latest request, whose values it shows. An answer fetched with another environment's key or
  // another tenant's token holds that one's values. Never the headers option asked again: a token
  // getter ran per tab message (an async one made the tab share with none, so every tab fetched
  // for itself on every change). Until its first answer, a tab's are its own alone.
  let creds: unknown = Math.random()
  const keyOf = (hash: string) => `${deps.url}|${hash}|${creds}`
  const ownKey = () => keyOf(sync.contextHash())
  let noticeQueued = false
  let lastNoticeAt = -Infinity
  let gapTimer: unknown
  let gapVersion: string | undefined
  /** A notice of this tab's own stream came in the gap: the other tabs are told with its refetch. */
  let gapTell = false
  /** The `metadata.holdfast.fetchedAt` of this tab's latest full answer (its own or adopted), under its key (whose values). */
  let held: Record<string, number | undefined> = {}

  /**
   * Refetch for a notice, with the ETag and the notice's version (`flagConfigEtag=…&flagConfigLastModified=…`), through the
   * client's one request path. A request already out may predate the change: one more follows it.
   * Refetches for notices start at least NOTICE_GAP_MS apart; the notices in between become one
   * refetch at the end of the gap (for the newest version), so a stream that floods notices (a
   * broken or hostile server, a proxy replaying them) cannot drive requests back to back.
   * `tell`: a notice of this tab's own stream, passed on to the other tabs with the refetch it
   * makes, so a flood does not become a message (a clone and a task) per notice in every tab.
   */
  function notice(version?: string, tell?: boolean) {
    const wait = lastNoticeAt + NOTICE_GAP_MS - clock.now()
    // Never longer than the gap itself: a clock set back an hour (NTP) made the last refetch look an
    // hour ahead, and every notice of that hour waited for it (no change shown until then).
    if (wait > 0 && wait <= NOTICE_GAP_MS) {
      gapVersion = version
      gapTell ||= !!tell
      gapTimer ??= clock.setTimeout(() => {
        gapTimer = undefined
        const told = gapTell
        gapTell = false
        if (!closed) notice(gapVersion, told)
      }, wait)
      return
    }
    lastNoticeAt = clock.now()
    if (tell) link?.post({ t: 'notice', version, key: ownKey() })
    // A version from the channel may be another version's or a stray script's: one longer than this
    // version ever builds (an etag of 512 and a date of 64, URL-encoded) is none, or one tab's
    // refetch went out with a 100 KB query, was refused (431) and left that tab stale. (Not a string: no length.)
    const extra: AttemptExtra = version && version.length < 5300 ? { query: version } : {}
    if (!sync.busy()) return void sync.request('explicit', extra)
    if (noticeQueued) return
    noticeQueued = true
    void sync.request('explicit', extra).then(() => {
      noticeQueued = false
      if (!closed) void sync.request('explicit', extra)
    })
  }
  // The channel name carries the message format's version: a tab still running an older Holdfast
  // after a deploy neither leads nor feeds this one. (2: a notice's `version` is its refetch query.)
  // `tag`: the static headers the stream and the channel are those of (see `share`).
  let tag = keyTag(deps.headers)
  const newLink = (): TabLink | undefined =>
    tabs
      ? createTabLink(`holdfast-live:2:${stream.url}${tag}`, (message) => {
          try {
            onMessage(message)
          } catch (error) {
            deps.logger.error('live updates: a message from another tab failed', error)
          }
        })
      : undefined
  let link = newLink()

  /**
   * The first stream of a page opens a second after the first answer (at once outside a page), then
   * catches up with one conditional refetch. A page load is not held open by a never-ending request
   * (tools that wait for "network idle", such as Playwright's, would wait for ever).
   */
  let delayTimer: unknown
  let delayed = false
  /** The stream opened late (or another tab's stream closed): changes in between were not announced. */
  let delayedOpen = false

  function connect(takeover = false) {
    // A tab taking over from a leader that closed connects at once: the page load is long over.
    if (!delayed && inPage && !takeover) {
      delayed = true
      delayTimer = clock.setTimeout(() => {
        delayTimer = undefined
        delayedOpen = true
        if (!closed && !asleep && (!link || link.leading())) open()
      }, 1000)
      return
    }
    delayed = true
    delayedOpen = takeover
    open()
  }

  /**
   * The stream moved from (see `share`): kept until the new one says its first line. Closed at the
   * move, a change announced before the new one opened was announced on neither stream.
   */
  let retiring: StreamConnection | undefined
  const retire = () => {
    retiring?.stop()
    retiring = undefined
  }

  function open() {
    if (unadvertised) return giveUp()
    let own: StreamConnection
    connection ??= own = createStreamConnection({
      url: stream.url,
      fetch: deps.fetch,
      headers: sameOrigin(stream.url, deps.url) ? deps.headers : undefined,
      clock,
      random: deps.random,
      environment,
      logger: deps.logger,
      kit: deps.kit,
      heartbeatTimeoutMs,
      onNotice: (version) => notice(version, true),
      onOpen(reconnected) {
        retire()
        stopPolling()
        link?.post({ t: 'stream', up: true, key: ownKey() })
        // Changes made while the stream was down (or not yet open) were not announced: one
        // conditional refetch (a 304 when nothing changed), spread by the reconnect's own jitter.
        if (reconnected || delayedOpen) notice(undefined, true)
      },
      onDown() {
        // The stream moved from went down before the new one opened: it is only let go.
        if (own != connection) return retire()
        if (unadvertised) return giveUp()
        link?.post({ t: 'stream', up: false, key: ownKey() })
        startPolling()
      },
    })
    connection.start()
    // Open only once its first line comes (never within start()): poll until then, so a stream that
    // answers and then says nothing never holds polling off (a healthy one opens and stops the timer).
    startPolling()
  }

  function disconnect() {
    retire()
    if (delayTimer !== undefined) clock.clearTimeout(delayTimer)
    delayTimer = undefined
    delayed = false
    delayedOpen = false
    connection?.stop()
    connection = undefined
  }

  /**
   * No stream to dial or poll for (see `unadvertised`). The leadership goes too: held by a tab that
   * dials nothing, it kept every tab opened later, whose answers advertise the stream again, from it.
   * This tab queues again at its next 200 that advertises one (`share`).
   */
  function giveUp() {
    disconnect()
    stopPolling()
    link?.resign()
  }

  function startPolling() {
    if (pollTimer !== undefined || closed || asleep) return
    const base = fallbackPollMs
    const next = () => {
      pollTimer = clock.setTimeout(() => {
        pollTimer = undefined
        void sync.request('poll')
        startPolling()
      }, Math.round(base * (0.8 + 0.4 * random01(deps.random))))
    }
    next()
  }

  function stopPolling() {
    if (pollTimer !== undefined) clock.clearTimeout(pollTimer)
    pollTimer = undefined
  }

  function lead() {
    if (closed || asleep) return
    if (!link) return connect()
    const asked = clock.now()
    link.lead(() => {
      if (closed || asleep) return link!.resign()
      // Granted only after waiting: another tab led until now.
      const takeover = clock.now() - asked > 100
      // A hidden tab does not take a stream over (the leader slept or closed): it sleeps, as it
      // would after the inactivity delay, and catches up in full once shown.
      if (takeover && !environment.visible()) return sleep()
      stopFollowing()
      connect(takeover)
    }, () => {
      // The storage lease went to another tab: this tab follows again, and its stream goes (two
      // leaders would hold two streams for as long as both tabs stay open).
      disconnect()
      stopPolling()
      hello()
    })
    hello()
  }

  // Until a leader speaks up, ask whether one exists and how its stream is.
  const hello = () => link!.post({ t: 'hello' })

  function stopFollowing() {
    stopWaiting()
    leaderDown = false
  }

  function stopWaiting() {
    if (waiting) clock.clearTimeout(waiting.timer)
    waiting = undefined
  }

  function onMessage(message: TabMessage) {
    if (closed) return
    switch (message.t) {
      case 'hello':
        if (link?.leading() && connection) link.post({ t: 'stream', up: connection.open(), key: ownKey() })
        return
      case 'stream':
        if (link?.leading()) return
        // While the leader's stream is down it polls; a tab showing the leader's user gets those
        // answers over the channel, so only the tabs of other users poll for themselves.
        leaderDown = !message.up && message.key !== ownKey()
        if (leaderDown) startPolling()
        else stopPolling()
        return
      case 'notice':
        if (link?.leading() || asleep) return
        if (waiting) return
        // The leader shows this user and is fetching: its answer comes over the channel, however
        // long its request takes (a loaded machine, a slow server), or {settled} says it will not.
        // Otherwise another tab showing this user will likely fetch first: wait a little for it.
        // Either way, a tab that hears nothing fetches for itself.
        waiting = {
          version: message.version,
          timer: clock.setTimeout(
            () => {
              waiting = undefined
              notice(message.version)
            },
            message.key === ownKey() ? LEADER_WAIT_MS : 100 + Math.round(300 * random01(deps.random)),
          ),
        }
        return
      case 'settled':
        // The leader's request for this user ended without a full answer to share. A 304 for the
        // snapshot this tab holds confirms it here too; otherwise (another snapshot, an error) ask now.
        if (waiting && message.key === ownKey()) {
          if (message.etag !== undefined && message.etag === sync.etag()) return stopWaiting()
          const { version } = waiting
          stopWaiting()
          notice(version)
        }
        return
      case 'values':
        return take(message)
    }
  }

  function take(message: Extract<TabMessage, { t: 'values' }>, again?: 1) {
    const hash = sync.contextHash()
    const shared = message.result as OkResult | null
    if (closed || message.key !== keyOf(hash) || asleep || shared?.kind !== 'ok' || !Array.isArray(shared.entries)) return
    const answer = readShared(shared, deps.kit)
    const at = answer.upstream?.fetchedAt
    // An answer older than the one this tab holds for this user (by the server's
    // metadata.holdfast.fetchedAt) never replaces it: the other tab's request started before
    // this tab's newer one finished, or its message came late. Without a fetchedAt on either
    // side the answers cannot be ordered, and the shared one is taken, as before. A tab waiting
    // for the leader's answer to a notice waits no more: what it holds is newer still.
    if (at! < held[message.key]!) return stopWaiting()
    if (sync.adopt(answer, hash)) {
      hold(message.key, answer.upstream)
      stopWaiting()
    }
    // Refused because this tab's own request is out: once it settles (joined, not a new request),
    // taken if still newer than what that request brought, or the tab would keep its own older
    // answer. Once only: a request out after that one is newer than this answer anyway. Only an
    // answer with a fetchedAt: an unordered one might be older than what that request brings.
    else if (!again && at! >= 0 && sync.busy()) void sync.request('explicit').then(() => take(message, 1))
  }

  /**
   * The answer just applied for `key` is what this tab holds now, but a stale answer older than the
   * values held did not replace them (flags/merge.ts): those are still what the tab holds. Its time
   * is capped by this device's clock, as the merge caps it: held as is from a relay clock hours
   * ahead, every newer answer another tab shared for hours after read as older and was dropped.
   * (No fetchedAt: NaN, which orders against nothing, as undefined did.)
   */
  function hold(key: string, upstream?: { fetchedAt?: number; stale?: boolean }) {
    const at = Math.min(upstream?.fetchedAt!, clock.now())
    held = { [key]: upstream?.stale && at < held[key]! ? held[key] : at }
  }

  function sleep() {
    asleep = true
    stopPolling()
    stopFollowing()
    disconnect()
    // Deaf until it wakes: it would ignore every message, and one reaching a page kept in the
    // back/forward cache makes Chromium drop the page (a reload instead of an instant restore).
    link?.close()
  }

  // OFREP: after `inactivityDelaySec` hidden, close; when active again, reconnect and refetch in full.
  // A tab about to be frozen runs no script until it resumes: it gives the stream (or its place in
  // the queue for it) up at once, or every other tab would go without notices meanwhile.
  const handlers: EnvironmentHandlers = {
    onHidden(event) {
      // Into the back/forward cache: frozen there like a frozen tab (restored, it is visible again).
      if (event?.persisted) return sleep()
      if (hiddenTimer !== undefined || asleep) return
      const seconds = inactivityDelaySec ?? stream.inactivityDelaySec
      hiddenTimer = clock.setTimeout(() => {
        hiddenTimer = undefined
        sleep()
      }, seconds * 1000)
    },
    onFreeze: sleep,
    onResume: () => environment.visible() && handlers.onVisible!(),
    onVisible() {
      if (hiddenTimer !== undefined) clock.clearTimeout(hiddenTimer)
      hiddenTimer = undefined
      if (!asleep) return
      asleep = false
      void sync.request('explicit', { full: true })
      lead()
    },
  }
  const stopListening = environment.listen(handlers)

  lead()

  return {
    answered(result, hash) {
      if (closed) return
      try {
        share(result, hash)
      } catch (error) {
        deps.logger.error('live updates failed on an answer', error)
      }
    },
    connected: () => connection?.open() ?? false,
    close() {
      if (closed) return
      closed = true
      stopListening()
      stopPolling()
      stopFollowing()
      if (hiddenTimer !== undefined) clock.clearTimeout(hiddenTimer)
      if (gapTimer !== undefined) clock.clearTimeout(gapTimer)
      disconnect()
      link?.close()
    },
  }

  function share(result: FetchResult, hash: string) {
      creds = (result as { creds?: string }).creds ?? creds
      // The app changed the static headers' values (`<FlagProvider headers>` refilled, another SDK
      // key): the stream, opened with the old key, would announce only the old key's changes (each a
      // needless refetch) and never the new key's. Dropped, with the tabs' channel and leadership of
      // the old key; this tab joins the new key's (leads, or follows the tab that leads it).
      // (Asleep, it stays deaf: `lead` waits for it to wake.)
      if (tag != (tag = keyTag(deps.headers))) {
        disconnect()
        link?.close()
        link = newLink()
        lead()
      }
      if (result.kind !== 'ok') {
        // Only the leader's ending matters: followers of its user wait for it (see 'notice').
        if (link?.leading()) link.post({ t: 'settled', key: keyOf(hash), etag: result.kind === 'not-modified' && hash === sync.contextHash() ? (result.etag ?? sync.etag()) : undefined })
        return
      }
      hold(keyOf(hash), result.upstream)
      const advertised = readStreamInfo(result.streams, deps.url)
      // At once, not at the next page's chunk start: after a key change (or a move of the stream),
      // the next page's 304 on that key found no record (or the old stream) and asked again in full.
      rememberStream(deps.url, tag, advertised)
      const was = unadvertised
      unadvertised = !advertised
      // Before, a page went on dialling a stream no longer advertised (a 404 on a backoff up to a
      // minute) and polling every fallbackPollMs for as long as it was open: more requests, not fewer.
      if (!advertised) {
        if (!connection?.open()) giveUp()
      } else if (advertised.url !== stream.url || (was && !connection)) {
        // The server moved its stream (or advertises it again): follow it at once, with no catch-up refetch (this answer is
        // one). With one (a page's first stream, a second late), a vendor's URL signed anew in
        // every answer moved it at each, and each move's catch-up brought an answer that moved it
        // again: a request and a new connection a second for as long as the page was open.
        stream = advertised
        // The open stream stays until the new one opens (see `retiring`); moved again before that,
        // the one still open stays, and the one still connecting goes.
        const old = connection?.open() ? connection : retiring
        if (old == connection) connection = undefined
        retiring = undefined
        disconnect()
        retiring = old
        // (A tab not leading now connects as usual once it leads.)
        if (!asleep && (!link || link.leading())) {
          delayed = true
          open()
        } else if (was && !asleep) lead()
      }
      link?.post({ t: 'values', key: keyOf(hash), result })
  }
}
