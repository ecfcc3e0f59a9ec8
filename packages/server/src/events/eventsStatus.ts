// What `/holdfast/v1/status` says of the events side (`events`).
import type { ForwardingStats } from './forwardingStats'
import type { StoreStall } from './storeStall'

/** `events` in `/holdfast/v1/status`: where events go, a write that hangs, and the forwarding. */
export interface EventsStatus {
  /** Where accepted events go: the events file (`--events-file`), the spool (`--events-upstream`), or memory only. */
  store: 'file' | 'spool' | 'memory'
  /** The events file or the spool directory. */
  path?: string
  /** A write (or fsync) of the store that has not returned within `eventsWriteTimeoutMs`: since when (epoch ms, the system clock's, as the log is dated), on which file. */
  stalled?: StoreStall
  /** Another server took the file's or spool's lock over (`by`: its pid, host and since; `at`: when this one saw it): events are refused (503) and not forwarded. */
  takenOver?: {
    /** The other server: its pid, host and since when it holds the lock. */
    by: string
    /** When this server saw the lock taken over (epoch ms). */
    at: number
  }
  /**
   * With `eventsUpstream`: the spool and the forwarder (pending, oldest age, state, delivered,
   * dropped, last error), and `stalled` when its read of the spool or its cursor write has not
   * returned within `eventsWriteTimeoutMs` (delivery waits on it; taking events may not).
   */
  forwarding?: ForwardingStats & {
    /** The spool read or cursor write that has not returned within `eventsWriteTimeoutMs`; absent while none. */
    stalled?: StoreStall
  }
}
