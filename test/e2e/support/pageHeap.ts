// Memory of a page in real Chromium, for the browser memory-growth suite: the JS heap measured over
// CDP after collecting garbage, and an init script that puts test-only hooks on every page of a
// browser profile before any of its scripts run:
//
//   window.__leak()        keeps a flat string of HOLDFAST_INJECT_LEAK bytes (none when unset): a
//                          workload calls it once per measured iteration, so running a test with
//                          HOLDFAST_INJECT_LEAK=1024 shows its limit catches a 1 KB leak an iteration
//   window.__live          what is open now: IndexedDB connections, BroadcastChannels, EventSources,
//                          pending timers (setTimeout not yet fired or cleared, setInterval not
//                          cleared), fetches in flight, streams answered so far, (a stream's until it is answered: the server counts open streams)
//   window.__clock         a clock whose timers fire only when the test says (`fireNext`), for a
//                          client's `clock` option: backoff waits of seconds cost no real time;
//                          `perFetchMs` passes on it after each answer (notices a second apart)
import type { BrowserContext, Page } from 'playwright-core'

/** Bytes kept per measured iteration by `window.__leak()`; 0 unless HOLDFAST_INJECT_LEAK is set. */
export const INJECT_LEAK = Number(process.env.HOLDFAST_INJECT_LEAK ?? 0)

export interface LiveCounts {
  idb: number
  channels: number
  eventSources: number
  timers: number
  fetches: number
  streamsAnswered: number
  /** Timers pending on `window.__clock`. */
  clockTimers: number
}

declare global {
  interface Window {
    __leak(): void
    __kept: string[]
    __live: { idb: number; channels: number; eventSources: number; timers: Set<unknown>; fetches: number; streamsAnswered: number }
    __clock: {
      now(): number
      setTimeout(callback: () => void, ms: number): unknown
      clearTimeout(handle: unknown): void
      /** Moves the clock on by `ms` (a timer falling due fires at the next `fireNext`). */
      pass(ms: number): void
      /** Time that passes, on this clock, after each fetch's answer: 0 unless a test sets it. */
      perFetchMs: number
      /** Delays (ms from now) of the timers pending. */
      pending(): number[]
      /** Fires the pending timer due first among those due within `withinMs`; false when there is none. */
      fireNext(withinMs: number): boolean
    }
  }
}

/** Installs the hooks (see the file comment) on every page `context` opens from now on. */
export async function installPageHooks(context: BrowserContext): Promise<void> {
  await context.addInitScript((leakBytes: number) => {
    window.__kept = []
    window.__leak = () => {
      // A flat string (repeat or padEnd would make a rope sharing its filler).
      if (leakBytes > 0) window.__kept.push(String.fromCharCode(...Array.from({ length: leakBytes }, (_, j) => 97 + ((window.__kept.length + j) % 26))))
    }
    const live = (window.__live = { idb: 0, channels: 0, eventSources: 0, timers: new Set<unknown>(), fetches: 0, streamsAnswered: 0 })

    const open = IDBFactory.prototype.open
    IDBFactory.prototype.open = function (this: IDBFactory, name: string, version?: number) {
      const request = open.call(this, name, version)
      request.addEventListener('success', () => {
        live.idb++
        let closed = false
        const db = request.result
        const done = () => {
          if (!closed) (closed = true), live.idb--
        }
        const close = db.close
        db.close = function () {
          done()
          return close.call(this)
        }
        db.addEventListener('close', done)
      })
      return request
    } as typeof open

    const Channel = BroadcastChannel
    window.BroadcastChannel = class extends Channel {
      #closed = false
      constructor(name: string) {
        super(name)
        live.channels++
      }
      override close() {
        if (!this.#closed) (this.#closed = true), live.channels--
        super.close()
      }
    }

    const Source = EventSource
    window.EventSource = class extends Source {
      #closed = false
      constructor(url: string | URL, init?: EventSourceInit) {
        super(url, init)
        live.eventSources++
      }
      override close() {
        if (!this.#closed) (this.#closed = true), live.eventSources--
        super.close()
      }
    } as typeof EventSource

    const setTimeout_ = window.setTimeout
    const clearTimeout_ = window.clearTimeout
    const setInterval_ = window.setInterval
    const clearInterval_ = window.clearInterval
    window.setTimeout = ((callback: TimerHandler, ms?: number, ...args: unknown[]) => {
      const id = setTimeout_(
        (...a: unknown[]) => {
          live.timers.delete(id)
          if (typeof callback === 'function') callback(...a)
        },
        ms,
        ...args,
      )
      live.timers.add(id)
      return id
    }) as typeof setTimeout
    window.clearTimeout = ((id?: number) => (live.timers.delete(id), clearTimeout_(id))) as typeof clearTimeout
    window.setInterval = ((callback: TimerHandler, ms?: number, ...args: unknown[]) => {
      const id = setInterval_(callback, ms, ...args)
      live.timers.add(id)
      return id
    }) as typeof setInterval
    window.clearInterval = ((id?: number) => (live.timers.delete(id), clearInterval_(id))) as typeof clearInterval

    const fetch_ = window.fetch
    window.fetch = (...args: Parameters<typeof fetch>) => {
      live.fetches++
      const answer = fetch_(...args)
      const stream = String(args[0] instanceof Request ? args[0].url : args[0]).includes('/holdfast/v1/stream')
      // Until its body has arrived (read from a clone), but a stream's only until its answer.
      answer
        .then((response) => (stream ? void live.streamsAnswered++ : response.body ? response.clone().arrayBuffer() : undefined))
        .catch(() => {})
        .finally(() => (live.fetches--, window.__clock.pass(window.__clock.perFetchMs)))
      return answer
    }

    let offset = 0
    let seq = 0
    const timers = new Map<number, { at: number; callback: () => void }>()
    window.__clock = {
      now: () => Date.now() + offset,
      setTimeout(callback, ms) {
        const id = ++seq
        timers.set(id, { at: Date.now() + offset + ms, callback })
        return id
      },
      clearTimeout: (handle) => void timers.delete(handle as number),
      pass: (ms) => void (offset += ms),
      perFetchMs: 0,
      pending: () => [...timers.values()].map((t) => t.at - (Date.now() + offset)),
      fireNext(withinMs) {
        let next: [number, { at: number; callback: () => void }] | undefined
        for (const entry of timers) if (!next || entry[1].at < next[1].at) next = entry
        const now = Date.now() + offset
        if (!next || next[1].at > now + withinMs) return false
        timers.delete(next[0])
        offset += Math.max(0, next[1].at - now)
        next[1].callback()
        return true
      },
    }
  }, INJECT_LEAK)
}

/** What is open in the page now (see `window.__live`). */
export function liveCounts(page: Page): Promise<LiveCounts> {
  return page.evaluate(() => ({ ...window.__live, timers: window.__live.timers.size, clockTimers: window.__clock.pending().length }))
}

/**
 * The page's JS heap in use, in bytes, once garbage has been collected: collected twice (what a
 * first pass frees can make more collectable: weak maps, finalizers), with a pause for the tasks
 * a collection schedules (FinalizationRegistry callbacks, closed streams) between.
 */
export async function settledHeap(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page)
  try {
    await cdp.send('HeapProfiler.collectGarbage')
    await page.waitForTimeout(100)
    await cdp.send('HeapProfiler.collectGarbage')
    await cdp.send('HeapProfiler.collectGarbage')
    const { usedSize } = await cdp.send('Runtime.getHeapUsage')
    return usedSize
  } finally {
    await cdp.detach()
  }
}

export interface PageGrowth {
  bytes: number
  perIteration: number
  iterations: number
  heapBefore: number
  heapAfter: number
  /** Strings `window.__leak()` kept (the injected leak's iterations). */
  kept: number
}

/**
 * Runs `run(count)` for `warmUp` iterations (JIT, caches and bounded memos fill), measures the
 * heap, runs `iterations` more, and measures again. `run` must call `window.__leak()` once per
 * iteration it runs. `measure` is `settledHeap` unless given.
 */
export async function pageGrowth(page: Page, run: (count: number) => Promise<void>, iterations: number, warmUp: number, measure: (page: Page) => Promise<number> = settledHeap): Promise<PageGrowth> {
  await run(warmUp)
  await page.evaluate(() => (window.__kept.length = 0))
  const heapBefore = await measure(page)
  await run(iterations)
  const heapAfter = await measure(page)
  const kept = await page.evaluate(() => window.__kept.length)
  const bytes = heapAfter - heapBefore
  return { bytes, perIteration: bytes / iterations, iterations, heapBefore, heapAfter, kept }
}

/**
 * The page's JS heap from a heap snapshot, less compiled code and the browser's native objects:
 * what a script's objects, closures and strings hold. V8 keeps compiling (and optimising) code for
 * the paths a workload runs long after a warm-up; where a workload runs few scripts an iteration
 * (a tab handover), that code grew `settledHeap` by a few hundred bytes an iteration for hundreds
 * of iterations, while no kind of object grew (compared by constructor between snapshots).
 */
export async function objectHeap(page: Page): Promise<number> {
  await settledHeap(page)
  const cdp = await page.context().newCDPSession(page)
  const chunks: string[] = []
  try {
    cdp.on('HeapProfiler.addHeapSnapshotChunk', (event: { chunk: string }) => chunks.push(event.chunk))
    await cdp.send('HeapProfiler.enable')
    await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
  } finally {
    await cdp.detach()
  }
  const snapshot = JSON.parse(chunks.join('')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[] }
  const fields = snapshot.snapshot.meta.node_fields
  const types = snapshot.snapshot.meta.node_types[0]
  const type = fields.indexOf('type')
  const size = fields.indexOf('self_size')
  let total = 0
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const kind = types[snapshot.nodes[i + type]!]
    if (kind !== 'code' && kind !== 'native') total += snapshot.nodes[i + size]!
  }
  return total
}
