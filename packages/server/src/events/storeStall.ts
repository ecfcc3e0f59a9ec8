// A write of the events store that has not returned: how long, on which path, and the error a
// batch is refused with meanwhile (503 + Retry-After: its client keeps it).

/** A write (or fsync) of the store in flight longer than the bound: since when, on which path. */
export interface StoreStall {
  /** When the write that has not returned began (epoch ms). */
  since: number
  /** The file the write went to. */
  path: string
  /** How long it has been out, in whole seconds. */
  seconds: number
}

/** `busy` as a {@link StoreStall} when it has run `bound` ms or more by `now`, else undefined. */
export function stallOf(busy: { since: number; path: string } | undefined, now: number, bound: number): StoreStall | undefined {
  const age = busy && now - busy.since
  return busy && age! >= bound ? { since: busy.since, path: busy.path, seconds: Math.floor(age! / 1000) } : undefined
}

/**
 * Rejects {@link EventSink.accept} when the store did not answer within `writeTimeoutMs` (a write
 * or an fsync on a mount that died never returns nor fails), or while such a write is still hung.
 * The batch was not answered 202: its client keeps it and retries (503 + Retry-After).
 */
export class StoreStalledError extends Error {
  readonly code = 'ESTALLED'
  constructor(readonly stall: StoreStall) {
    super(`a write to ${stall.path} has not returned for ${stall.seconds} s (a disk this slow, or a hung disk or mount)`)
  }
}
