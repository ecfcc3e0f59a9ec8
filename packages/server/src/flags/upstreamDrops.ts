// Proxy mode's `--on-upstream-unauthorized`: each forwarded credentials' run of 401/403, the
// contexts whose values a refusal dropped (`clear`, `clear-after`), and with --redis their drop
// markers in the store and the other relays' drops taken from it. A drop stands until the upstream
// answers the context here again with values.
import type { ServerLogger } from '../logger'
import { setBounded } from '../lru'
import type { SharedContexts, SharedTicket } from '../store/sharedContexts'
import type { StoredDocument } from '../store/sharedStore'
import { DEFAULT_MAX_CONTEXTS, type ContextCache } from './contextCache'
import { DROP_MARKER_PREFIX, dropMarkerSchema, readRecord, type DropMarker, type RefusedInRun } from './records'
import { waitUntil } from './steadyClock'
import { unauthorizedLongEnough, type UnauthorizedPolicy } from './upstreamHealth'

/** What {@link createUpstreamDrops} needs from the proxy source. */
export interface UpstreamDropsOptions {
  /** The held contexts: a drop takes the context's answer out. */
  cache: ContextCache
  /** `--on-upstream-unauthorized`: `keep` never drops; `clear` at the first 401/403; `clear-after` once they lasted. */
  onUnauthorized: UnauthorizedPolicy
  /** Bound on each map kept per context or credentials (the oldest out). Default 10,000. */
  maxContexts?: number
  /** The relay's clock (epoch ms) and its steady clock (see steadyClock.ts). */
  now: () => number
  steady: () => number
  log: ServerLogger
  /** `--redis`: the shared store's driver, once made (it is made with {@link UpstreamDrops.take}). Default: none. */
  shared: () => SharedContexts | undefined
  /** Saves the held contexts (to the data dir) after a change of content. */
  save: (contentChanged: boolean) => void
  /**
   * --redis: writes `key`'s held answer to the store again at its own place in the store's order
   * (the store took a drop older than it). Default: nothing.
   */
  shareAgain?: (key: string) => void
}

/** Where the drops stood when an upstream request went out: see {@link UpstreamDrops.sent}. */
export interface DropMark {
  drops: number
  runs: number
}

/** The drops of one proxy source. */
export interface UpstreamDrops {
  /** Per credentials (hash), since when (the steady clock) the upstream refused them, nothing else between. */
  unauthorizedSince: ReadonlyMap<string, number>
  /**
   * Drops `key`'s values here (the caller took them out of the cache): recorded, and with --redis
   * written to the store, at `place` in its order when given (default: a ticket taken now).
   */
  dropped(key: string, place?: SharedTicket): void
  /** A drop read back from the data dir at `open` (when, epoch ms). */
  restore(key: string, at: number): void
  /** The contexts dropped and when (epoch ms), for the data dir. */
  cleared(): Array<[string, number]>
  /** When `key` was dropped (epoch ms), if it is. */
  clearedAt(key: string): number | undefined
  /**
   * --redis: whether another relay's document for `key` is taken. A drop marker is taken as a drop
   * (never as values); an answer older than a drop here is not; the others go to `takeAnswer`.
   */
  take(key: string, doc: StoredDocument, takeAnswer: (key: string, doc: StoredDocument) => boolean): boolean | Promise<boolean>
  /** An upstream request for `key` goes out (`ticket`: with a place in the store's order asked for): where the drops stand. */
  sent(key: string, ticket: boolean): DropMark
  /** Whether `key` was dropped here after `mark` (its answer, from before, is not served). */
  droppedSince(key: string, mark: DropMark): boolean
  /** The upstream accepted `credentials` for a request sent at `mark`: their run of 401/403 ends, if it began before. */
  accepted(credentials: string, mark: DropMark): void
  /** The upstream answered `key` with values: its drop ends. Returns whether it was dropped with a place in the store. */
  answeredAgain(key: string): boolean
  /**
   * The upstream answered `status` (401/403) for `key`, held here, with `credentials`: counted, and
   * its values dropped when the policy says it lasted long enough (`clear-after`: at that moment,
   * whether or not another request comes). `ticket` (--redis): the refusal's place in the store's
   * order, taken as it came back (a request sent while it was out may have been heard first).
   */
  refused(key: string, credentials: string, status: number | undefined, ticket?: SharedTicket): void
  /**
   * `clear-after`: `key`, held, of `credentials` refused in a run not yet long enough, was not asked
   * (a re-ask round asks one context of a refused key): it joins the run, dropped when it is due.
   */
  refusedLater(key: string, credentials: string): void
  /** Stops the timed `clear-after` drops (the source closes). */
  stop(): void
  /** `clear-after`: the held contexts refused in a run not yet due, and since when (epoch ms), for the data dir. */
  refusedRuns(): RefusedInRun[]
  /** A context refused in a `clear-after` run before a restart (read back from the data dir): the run goes on (under `clear`, it is dropped at once; `keep`: nothing). */
  restoreRun(run: RefusedInRun): void
}

/** Creates the drops of a proxy source. */
export function createUpstreamDrops(options: UpstreamDropsOptions): UpstreamDrops {
  const { cache, onUnauthorized, now, steady, log, shared, save } = options
  // Kept at most `maxContexts` long, the oldest out: anyone may send new contexts or credentials.
  const remember = <V>(map: Map<string, V>, key: string, value: V) => setBounded(map, key, value, options.maxContexts ?? DEFAULT_MAX_CONTEXTS)
  // Since when (the steady clock) each forwarded credentials got nothing but 401/403 (for `clear-after`): a key
  // revoked is counted on its own, whatever the upstream answers other keys meanwhile.
  const unauthorizedSince = new Map<string, number>()
  // Each run of 401/403 in `unauthorizedSince` numbered as it began (a counter, as `dropOrder`): a
  // success ends a run only when its request went out after the run began. A 200 for another
  // context of the key, sent before its first 401 and got after it, is the upstream's word from
  // before: it ended the run, the next 401 began another, and the revoked key's values were served
  // S seconds past that one (for as long as such answers came).
  let unauthorizedRuns = 0
  const unauthorizedRun = new Map<string, number>()
  // --redis: the contexts whose values were dropped for an upstream 401/403 (`clear`,
  // `clear-after`), each with a place in the store's order taken as it was dropped (a failed one:
  // none). Another relay's answer older than that was got before the refusal, and is not taken:
  // before, the next upstream failure for the context (a 500) had this relay look it up in the
  // store, take such an answer and serve the revoked credentials their values again, for as long
  // as the outage lasted. Forgotten when the upstream answers the context here again.
  const droppedAt = new Map<string, SharedTicket>()
  // The ticket being taken, shared by the drops meanwhile: a round drops every context of a
  // revoked SDK key at once (reaskRounds.ts: one ticket, not one per context; each context's
  // marker is still one write, see scripts/measure-drop-markers.ts).
  let dropTicket: SharedTicket | undefined
  // The order tickets were asked for here (a counter): the drop ticket's, and each context's latest
  // answer's. A context whose answer's ticket was asked for after the drop ticket (dropped, answered
  // again, dropped again, all while a slow Redis had not given that ticket) takes a ticket of its
  // own: before, its second drop shared the first one's, older than the answer between, so the store
  // kept that answer over the drop, and this relay took it back and served the revoked user (200).
  let tickets = 0
  let dropTicketOrder = 0
  const answerTicketOrder = new Map<string, number>()
  // Each context whose values an upstream 401/403 dropped (`clear`, `clear-after`), and when (epoch
  // ms), kept in the data dir: a --snapshot older than the drop does not stand in for it, also after
  // a restart, until the upstream answers it again. Before, a relay restarted in an outage served
  // the revoked credentials' user the snapshot's values (CONTRACT §9: the newest of data dir and
  // snapshot, and the drop is newer), as `--flags-url` never did (its data dir records a clear).
  const clearedAt = new Map<string, number>()
  // This relay's own drops in the order they came (a counter, not a clock), the latest per context:
  // an answer to a request that went out before its context's drop is the upstream's word from
  // before the 401/403 (a round drops every held context of a refused key without asking each,
  // reaskRounds.ts, while a user's request for one may be out). Before, its 200, got after the
  // drop, ended it: the revoked user's values were held and served again (200, 'pro', through the
  // outage after), and with --redis the drop still queued for the store was given up and the
  // answer written in its place, for the whole fleet.
  let drops = 0
  const dropOrder = new Map<string, number>()
  const dropped = (key: string, place?: SharedTicket) => {
    const at = now()
    remember(clearedAt, key, at)
    remember(dropOrder, key, ++drops)
    const store = shared()
    if (!store) return
    if (place) {
      remember(droppedAt, key, place)
      const marker: DropMarker = { kind: 'dropped', key, at }
      return void store.dropped?.(key, { body: JSON.stringify(marker), fetchedAt: at }, place)
    }
    if (!dropTicket || (answerTicketOrder.get(key) ?? 0) > dropTicketOrder) {
      const ticket = store.ticket()
      dropTicket = ticket
      dropTicketOrder = ++tickets
      void ticket.finally(() => dropTicket === ticket && (dropTicket = undefined))
    }
    remember(droppedAt, key, dropTicket)
    // The drop goes into the store too, at its place in the store's order (a drop marker in the
    // context's place): before, the store kept the answer from before the drop, and a relay without
    // a data dir (restarted, or new to the fleet) took it at start and served the revoked
    // credentials their values (200) for as long as the upstream was down.
    const marker: DropMarker = { kind: 'dropped', key, at }
    store.dropped?.(key, { body: JSON.stringify(marker), fetchedAt: at }, dropTicket)
  }
  // Another relay's drop marker for a context (see `dropped`), at the store's `version`: nothing to
  // serve. What is held here from before it (by the store's order; for an answer read back from
  // the data dir without one, by the times) goes as it went there, unless this relay keeps values
  // through a 401/403 (`keep`); and, as after a drop here, a store answer older than it is not
  // taken, nor a --snapshot older than it served, until the upstream answers the context again.
  function takeDrop(key: string, version: number, marker: DropMarker): boolean {
    if (onUnauthorized.mode === 'keep') return true
    const held = cache.peek(key)
    if (held && (held.storeVersion !== undefined ? held.storeVersion > version : held.fetchedAt > marker.at)) {
      // Asked for after the drop (by store order): the store now holds an older word than this
      // answer, which may never have been written there (the same values as the copy taken before
      // it are not shared again at once). Written back: before, a relay new to the fleet, or the
      // dropping one, took the drop in an outage and answered 503 to a user whose key was accepted.
      if (held.storeVersion !== undefined) options.shareAgain?.(key)
      return true
    }
    if (held) {
      cache.delete(key)
      save(true)
      droppedForOthers()
    }
    remember(clearedAt, key, marker.at)
    remember(droppedAt, key, Promise.resolve({ ok: true as const, value: version }))
    return true
  }
  // Said as this relay's own drops are (its users now get 503, or an older snapshot no more): at
  // most once a minute on the steady clock, with the count since (a revoked key drops thousands).
  let droppedByOthers = 0
  let droppedByOthersSaidAt: number | undefined
  const droppedForOthers = () => {
    droppedByOthers++
    const at = steady()
    if (droppedByOthersSaidAt !== undefined && at - droppedByOthersSaidAt < 60_000) return
    log.warn(`another relay dropped ${droppedByOthers === 1 ? "a context's values" : `${droppedByOthers} contexts' values`} for an upstream 401/403 (its drop taken from the store): dropped here too (--on-upstream-unauthorized ${onUnauthorized.mode})`)
    droppedByOthersSaidAt = at
    droppedByOthers = 0
  }

  // `clear-after`: per credentials, the contexts refused in their current run of 401/403 and a timer
  // that drops them once the run has lasted SECONDS. Before, the drop was looked for only at the
  // next 401 for that context: a user who did not ask again kept its values held (and in the data
  // dir), and a relay restarted after SECONDS in an outage served the revoked credentials them (200).
  const dueDrops = new Map<string, { run: number; keys: Set<string>; timer: ReturnType<typeof setTimeout> | undefined }>()
  // --redis, per credentials: the place in the store's order of the latest refusal of their current
  // run (a ticket taken as it came back: one taken as the request went out came before another
  // relay's request sent while it was out, which the upstream may have heard first, before the
  // revocation, and that 200 stood over the drop on every relay for good). A timed drop is the upstream's
  // word at that refusal, not when the timer fires: written at a ticket taken then, it stood over an
  // answer another relay got after the key was granted again (asked for after the refusal), and
  // every relay dropped the user's good values (503 through an outage). Now written at this place,
  // such an answer is newer and stands, and one taken here from the store is not dropped.
  const runPlace = new Map<string, { run: number; version: number }>()
  const placeOfRun = (credentials: string, run: number) => {
    const place = runPlace.get(credentials)
    return place?.run === run ? place.version : undefined
  }
  // A run's place read back from the data dir may be one this store never handed out (another
  // Redis's, or a hand edit): ahead of its clock, a drop written there reads as nothing on every
  // relay (READ: no ticket gave it), so a relay that never asked kept the revoked user's values and
  // served them (200) in an outage. Such a place gives way to a ticket taken now, as a late answer's does.
  const placeNoLaterThanNow = async (place: number): SharedTicket => {
    const now = await shared()?.ticket()
    return !now || (now.ok && place <= now.value) ? { ok: true as const, value: place } : now
  }
  // Set by `stop()`: a timer that fires after it (one pushed out of `dueDrops` is not cleared there) does nothing.
  let closed = false
  const dropWhenDue = (key: string, credentials: string) => {
    if (onUnauthorized.mode === 'keep') return
    const run = unauthorizedRun.get(credentials)
    const since = unauthorizedSince.get(credentials)
    if (run === undefined || since === undefined) return
    const due = dueDrops.get(credentials)
    if (due?.run === run) {
      if (due.keys.has(key) || due.keys.size >= (options.maxContexts ?? DEFAULT_MAX_CONTEXTS)) return
      due.keys.add(key)
    } else {
      if (due) clearTimeout(due.timer)
      arm(credentials, run, since, new Set([key]))
    }
    // Written to the data dir with the run's start: a restart carries the run on. Before, a relay
    // restarted within SECONDS forgot it, and the context was held (and saved) until its next 401:
    // served to the revoked credentials from the data dir (200) in any outage after.
    save(true)
  }
  // A timer can fire before the steady clock says the run lasted SECONDS (Node dates a timer from
  // the event loop's cached time, which a busy loop leaves behind; a wall clock slewed slow makes
  // the steady clock slow too): then it looks again later, for the same run, as the --flags-url
  // timer does. Before, it gave up, and the contexts stayed held until their next 401.
  const arm = (credentials: string, run: number, since: number, keys: Set<string>) => {
    // A request still out at close() that is refused arms nothing (its context is saved in the run).
    if (closed) return void remember(dueDrops, credentials, { run, keys, timer: undefined })
    const seconds = onUnauthorized.mode === 'clear-after' ? onUnauthorized.seconds : 0
    const timer = setTimeout(() => {
      if (closed) return
      if (dueDrops.get(credentials)?.timer === timer) dueDrops.delete(credentials)
      // An answer with values ended the run meanwhile (or another began): nothing is due.
      const started = unauthorizedSince.get(credentials)
      if (unauthorizedRun.get(credentials) !== run || started === undefined) return
      if (!unauthorizedLongEnough(onUnauthorized, started, steady())) {
        // (This run's contexts refused since may be in an entry of their own: one timer for all.)
        const other = dueDrops.get(credentials)
        if (other?.run !== run) return arm(credentials, run, started, keys)
        for (const held of keys) if (other.keys.size < (options.maxContexts ?? DEFAULT_MAX_CONTEXTS)) other.keys.add(held)
        return
      }
      let count = 0
      const place = placeOfRun(credentials, run)
      let placed: SharedTicket | undefined
      for (const held of keys) {
        const answer = cache.peek(held)
        if (!answer) continue
        // Taken from the store, asked for (by another relay) after the latest refusal: the upstream
        // accepted these credentials since.
        if (place !== undefined && answer.storeVersion !== undefined && answer.storeVersion > place) continue
        cache.delete(held)
        dropped(held, place === undefined ? undefined : (placed ??= placeNoLaterThanNow(place)))
        count++
      }
      if (count === 0) return
      const what = `the values of ${count === 1 ? 'a context' : `${count} contexts`} it refused`
      log.warn(onUnauthorized.mode === 'clear-after' ? `the upstream has answered 401/403 for ${seconds} s: dropping ${what} (--on-upstream-unauthorized clear-after)` : `the upstream refused (401/403) before the restart: dropping ${what} (--on-upstream-unauthorized ${onUnauthorized.mode})`)
      save(true)
    }, waitUntil(since + seconds * 1000, steady()))
    timer.unref?.()
    remember(dueDrops, credentials, { run, keys, timer })
  }
  return {
    unauthorizedSince,
    dropped,
    refusedLater: (key, credentials) => dropWhenDue(key, credentials),
    refusedRuns() {
      const runs: RefusedInRun[] = []
      const [wall, tick] = [now(), steady()]
      for (const [credentials, due] of dueDrops) {
        const started = unauthorizedSince.get(credentials)
        if (unauthorizedRun.get(credentials) !== due.run || started === undefined) continue
        const place = placeOfRun(credentials, due.run)
        for (const key of due.keys) if (cache.peek(key)) runs.push({ key, credentials, since: wall - (tick - started), ...(place === undefined ? {} : { place }) })
      }
      return runs
    },
    restoreRun({ key, credentials, since, place }) {
      // Under `clear` too (a relay restarted with the stricter policy: a refusal drops at once): its
      // refused contexts go as the relay opens. Before, only `clear-after` read them back, and under
      // `clear` they were held and served (200, stale) in any outage until their next 401.
      if (onUnauthorized.mode === 'keep' || !cache.peek(key)) return
      // Its start on this process's steady clock; a wall clock now behind it counts as no time since.
      if (!unauthorizedRun.has(credentials)) {
        remember(unauthorizedRun, credentials, ++unauthorizedRuns)
        remember(unauthorizedSince, credentials, steady() - Math.max(0, now() - since))
      }
      // The run's place in the store's order goes on too: a drop due after the restart is the
      // upstream's word at that refusal, not at the restart (see `runPlace`).
      const run = unauthorizedRun.get(credentials)!
      if (place !== undefined && (placeOfRun(credentials, run) ?? -1) < place) remember(runPlace, credentials, { run, version: place })
      dropWhenDue(key, credentials)
    },
    stop() {
      closed = true
      // The entries stay: the data dir's last write, made as the source closes, carries the runs on.
      for (const due of dueDrops.values()) clearTimeout(due.timer)
    },
    restore: (key, at) => remember(clearedAt, key, at),
    cleared: () => [...clearedAt],
    clearedAt: (key) => clearedAt.get(key),
    take(key, doc, takeAnswer) {
      if (doc.body.startsWith(DROP_MARKER_PREFIX)) {
        const marker = readRecord(dropMarkerSchema, doc.body)
        if (marker && marker.key === key) return takeDrop(key, doc.version, marker)
      }
      const mark = droppedAt.get(key)
      // A drop read back from the data dir (`clearedAt` without a place in the store's order): another
      // relay's answer fetched no later than it was got before the refusal. Before, a relay restarted
      // in an outage took the store's copy at once and served the revoked credentials their values.
      // Only the times tell here (no ticket survives a restart); one fetched after the drop is taken.
      const cleared = mark ? undefined : clearedAt.get(key)
      if (cleared !== undefined && doc.fetchedAt <= cleared) return false
      if (!mark) return takeAnswer(key, doc)
      // Answered here again meanwhile (the mark is gone): taken or not as any other.
      return mark.then((since) => (!droppedAt.has(key) || (since.ok && doc.version >= since.value) ? takeAnswer(key, doc) : false))
    },
    sent(key, ticket) {
      if (ticket) remember(answerTicketOrder, key, ++tickets)
      return { drops, runs: unauthorizedRuns }
    },
    droppedSince: (key, mark) => (dropOrder.get(key) ?? 0) > mark.drops,
    accepted(credentials, mark) {
      if ((unauthorizedRun.get(credentials) ?? 0) > mark.runs) return
      unauthorizedSince.delete(credentials)
      unauthorizedRun.delete(credentials)
      // Its contexts are due nothing now; the data dir must not carry the run over a restart.
      const due = dueDrops.get(credentials)
      if (!due) return
      clearTimeout(due.timer)
      dueDrops.delete(credentials)
      save(true)
    },
    answeredAgain(key) {
      const ended = droppedAt.has(key)
      droppedAt.delete(key)
      clearedAt.delete(key)
      return ended
    },
    refused(key, credentials, status, ticket) {
      // Only credentials with values held here are counted (nothing else is there to drop), and each
      // 401 makes them the newest remembered: made-up keys, each refused once, pushed a revoked key
      // out of this bounded map, and its count started again with its next 401, so with enough of
      // them between two of its requests its values were never dropped.
      // On the steady clock: set back an hour, a revoked key's values were served for that hour.
      const tick = steady()
      // Both made the newest remembered at each 401, so they go out of their bounds together.
      const since = unauthorizedSince.get(credentials)
      remember(unauthorizedRun, credentials, (since === undefined ? undefined : unauthorizedRun.get(credentials)) ?? ++unauthorizedRuns)
      remember(unauthorizedSince, credentials, since ?? tick)
      const run = unauthorizedRun.get(credentials)!
      void ticket?.then((placed) => {
        if (!placed.ok || unauthorizedRun.get(credentials) !== run || (placeOfRun(credentials, run) ?? -1) >= placed.value) return
        remember(runPlace, credentials, { run, version: placed.value })
      })
      if (!unauthorizedLongEnough(onUnauthorized, unauthorizedSince.get(credentials)!, tick)) return dropWhenDue(key, credentials)
      log.warn(`the upstream answered ${status} for a context: dropping its values (--on-upstream-unauthorized ${onUnauthorized.mode})`)
      cache.delete(key)
      dropped(key)
      save(true)
    },
  }
}
