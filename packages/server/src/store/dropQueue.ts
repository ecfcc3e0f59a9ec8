// The drops waiting for their first write to the shared store (SharedContexts.dropped), by
// context, written eight at a time. A re-ask round drops every held context of a revoked SDK key
// at once (reaskRounds.ts): before, each marker's write went out at once, and past the Redis
// client's queue (1,000 commands) every command failed ('The queue is full'), the drops' and
// whatever else the relay asked then (answers, tickets), counted in the store's failures, the
// drops retried after a warning.
import type { LocalDocument } from './storeReplica'
import type { SharedTicket } from './sharedStore'

/** Drop writes out at once. */
const WRITES_AT_ONCE = 8

/** What {@link createDropQueue} needs from the shared contexts. */
export interface DropQueueOptions {
  /** Writes one drop marker at its ticket (settles when the store answered, or the write failed and is kept for a retry). */
  write: (contextKey: string, marker: LocalDocument, version?: SharedTicket) => Promise<void>
  /** Sets a context's entry in a bounded map, counting (and later saying) a drop let go at the bound. */
  keep: <V>(map: Map<string, V>, contextKey: string, value: V) => void
}

/** The drop queue of one shared-contexts driver. */
export interface DropQueue {
  /** Queues `contextKey`'s drop (the latest per context) and writes what the bound on writes out allows. */
  add(contextKey: string, marker: LocalDocument, version?: SharedTicket): void
  /** Forgets `contextKey`'s drop still waiting (answered here again). */
  delete(contextKey: string): void
  /** The contexts whose drop waits or is being written: not in the store until it says so. */
  keys(): string[]
  /** How many drops wait or are being written. */
  pending(): number
  /** Resolves once no drop waits or is being written, or after `ms`. */
  drain(ms: number): Promise<void>
  /** Forgets the drops still waiting. */
  clear(): void
}

/** Creates the queue. */
export function createDropQueue(options: DropQueueOptions): DropQueue {
  const due = new Map<string, { marker: LocalDocument; version?: SharedTicket }>()
  // The contexts whose drop is being written (at most eight), each with its writes out: not in the
  // store until it says so. Before, `redis.unshared` counted only those waiting for a turn, and
  // read 0 while eight drops were out to a stalled Redis.
  const out = new Map<string, number>()
  // The writes out, all contexts together: derived from `out`, never kept beside it.
  const writing = () => {
    let count = 0
    for (const writes of out.values()) count += writes
    return count
  }
  // Told once no drop waits or is being written (see `drain`).
  let drained: (() => void) | undefined
  const writeDrops = () => {
    while (writing() < WRITES_AT_ONCE && due.size > 0) {
      const [contextKey, { marker, version }] = due.entries().next().value!
      due.delete(contextKey)
      out.set(contextKey, (out.get(contextKey) ?? 0) + 1)
      void options.write(contextKey, marker, version).finally(() => {
        const left = out.get(contextKey)! - 1
        if (left === 0) out.delete(contextKey)
        else out.set(contextKey, left)
        writeDrops()
        if (out.size === 0 && due.size === 0) drained?.()
      })
    }
  }
  return {
    add(contextKey, marker, version) {
      options.keep(due, contextKey, { marker, version })
      writeDrops()
    },
    delete: (contextKey) => void due.delete(contextKey),
    keys: () => [...due.keys(), ...out.keys()],
    pending: () => due.size + writing(),
    async drain(ms) {
      if (due.size === 0 && out.size === 0) return
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([new Promise<void>((resolve) => (drained = resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
      clearTimeout(timer)
      drained = undefined
    },
    clear: () => due.clear(),
  }
}
