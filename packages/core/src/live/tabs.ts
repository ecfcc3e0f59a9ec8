// The tabs of one origin share one stream: one tab leads (holds the connection), the others hear
// its notices and each other's answers over a BroadcastChannel. Leadership is a Web Lock held for
// as long as the tab leads, so when the leader closes (or crashes: the browser releases its locks)
// the next tab in the lock's queue is granted it at once. Where Web Locks are missing, a lease in
// localStorage renewed every 250 ms and valid for 1 s does the same, within a second (a leader
// that finds its lease taken, after a stall or a read that missed the other tab's claim, steps
// down and closes its stream); where that
// is missing too (storage blocked), every tab leads for itself — more connections, never none.
// The lease's key names the stream by a hash (32-bit FNV-1a: a page has a stream or two, and this
// chunk imports nothing from up-front code): a stream URL may carry a vendor's token, which OFREP
// says must not be persisted, and a crashed tab leaves its lease behind.
import type { HeadersOption } from '../types'
import { safely } from './safely'

/** What tabs say to each other. `key` is the OFREP URL and the context hash: never another user's values. */
export type TabMessage =
  | { t: 'notice'; version?: string; /** The leader's user (absent from older versions). */ key?: string }
  | { t: 'settled'; key: string; /** The snapshot a 304 confirmed. */ etag?: string }
  | { t: 'values'; key: string; result: unknown }
  | { t: 'stream'; up: boolean; key?: string }
  | { t: 'hello' }

/** The link of one tab to the others. */
export interface TabLink {
  /**
   * Queues for leadership (listening again after `close`); `onLead` runs when this tab becomes the
   * leader, `onLose` when the storage lease finds another tab took it (this tab's renewals stalled
   * past it, or a read missed the other tab's claim): it follows again, still queued. Idempotent.
   */
  lead(onLead: () => void, onLose: () => void): void
  /** Gives leadership up (another tab takes over); `lead` may be called again. */
  resign(): void
  /** Whether this tab leads now. */
  leading(): boolean
  /** Tells every other tab. */
  post(message: TabMessage): void
  /** Resigns and closes the channel (a page going to sleep: the back/forward cache evicts a page a message reaches); `lead` opens it again. */
  close(): void
}

const LEASE_MS = 1000
const RENEW_MS = 250

/** Creates the link of this tab for the stream named `name` (see the file comment); it hears and tells other tabs from its first `lead`. */
export function createTabLink(name: string, onMessage: (message: TabMessage) => void): TabLink {
  const id = Math.random().toString(36).slice(2)
  // The Web Lock's name and the lease's key.
  const leader = `holdfast-live:${fnv(name)}:leader`
  let channel: BroadcastChannel | undefined
  const listen = () => {
    try {
      channel ??= new BroadcastChannel(name)
      channel.onmessage = (event) => {
        const data = event.data as TabMessage | null
        if (data && typeof data === 'object' && typeof data.t === 'string') onMessage(data)
      }
    } catch {
      channel = undefined
    }
  }
  let isLeader = false
  let queued = false
  let release: (() => void) | undefined
  let abort: AbortController | undefined
  let leaseTimer: ReturnType<typeof setInterval> | undefined

  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks

  function leadWithLock(onLead: () => void) {
    abort = new AbortController()
    locks!
      .request(leader, { signal: abort.signal }, () => {
        if (!queued) return undefined
        isLeader = true
        onLead()
        // Resigned in onLead (a tab closed or asleep by then): the lock goes at once, or it would
        // be held for the page's life by a tab that leads nothing, and no tab could ever lead.
        return queued ? new Promise<void>((done) => (release = done)) : undefined
      })
      .catch(() => {})
  }

  function leadWithLease(onLead: () => void, onLose: () => void) {
    const tick = () => {
      try {
        const now = Date.now()
        // No lease: getItem's null, which JSON.parse reads as "null".
        const held = JSON.parse(localStorage.getItem(leader) as string) as { id?: string; until?: number } | null
        // No honest lease ends more than one period from now (the tabs share one clock): one that
        // claims to (a clock that ran ahead, another version, a stray script) holds no tab off.
        if (held && held.id !== id && typeof held.until === 'number' && held.until > now && held.until <= now + LEASE_MS) {
          if (isLeader) {
            isLeader = false
            onLose()
          }
          return
        }
        localStorage.setItem(leader, JSON.stringify({ id, until: now + LEASE_MS }))
        if (!isLeader) {
          isLeader = true
          onLead()
        }
      } catch {
        // No storage: this tab leads for itself.
        if (!isLeader) {
          isLeader = true
          onLead()
        }
      }
    }
    tick()
    leaseTimer = setInterval(tick, RENEW_MS)
  }

  const link: TabLink = {
    lead(onLead, onLose) {
      if (queued) return
      queued = true
      listen()
      if (locks && typeof locks.request === 'function') leadWithLock(onLead)
      else leadWithLease(onLead, onLose)
    },
    resign() {
      queued = false
      isLeader = false
      abort?.abort()
      abort = undefined
      release?.()
      release = undefined
      if (leaseTimer !== undefined) {
        clearInterval(leaseTimer)
        leaseTimer = undefined
        try {
          if ((JSON.parse(localStorage.getItem(leader) as string) as { id?: string } | null)?.id === id) localStorage.removeItem(leader)
        } catch {
          // nothing to clean up
        }
      }
    },
    leading: () => isLeader,
    post(message) {
      try {
        channel?.postMessage(message)
      } catch {
        // A message that cannot be cloned is simply not shared; the other tabs fetch for themselves.
      }
    },
    close() {
      link.resign()
      channel?.close()
      channel = undefined
    },
  }
  return link
}

/** 32-bit FNV-1a, base 36. */
export function fnv(text: string): string {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return (h >>> 0).toString(36)
}

// Static headers (an SDK key) name the tabs that share a stream, and the stream remembered for a
// 304, as they name the cache entry (client.ts). A vendor may scope a stream to the key it was
// opened with: a production tab following a staging tab's stream heard of no production change, and
// a production page could open the stream path staging was given. Tabs of one key still share one
// stream. A headers function does not: a token that rotates would make every tab lead (a stream
// each, where a browser allows six connections to an origin).
// Headers whose getter throws (a token read after logout) name no fixed key, as for the cache
// (client.ts): thrown here, the chunk's start was an unhandled rejection and live updates never started.
export const keyTag = (headers: HeadersOption | undefined) => safely(() => (typeof headers == 'object' ? '|' + fnv(JSON.stringify(headers)) : '')) ?? ''
