// A refetch a stream notice asked for names the version the notice announced (`flagConfigEtag`).
// Behind a load balancer it may land on a replica that has not taken that version yet (a relay of
// a --redis fleet a few ms, or a lost notice's check interval, behind the one whose stream sent
// it). Answered at once, the client would apply the old answer and hear nothing more: the notice
// is spent, and its stream's relay already announced the version. So a request naming a version
// this replica has not served is held until it is served here, for at most a bounded wait.
//
//   leader: apply v2 ── notice(v2) ──► tab ── refetch ?flagConfigEtag=v2 ──► follower (still v1)
//   follower: ……… take v2 ──► the held refetch is answered from v2 (not v1, then silence)
import type { FlagSource } from '../flags/flagSource'

/** The longest a refetch waits for the version its notice named: 2,000 ms. */
export const CATCH_UP_MS = 2000
/** Versions remembered as served here (a notice naming one is old news, answered at once). */
const REMEMBERED = 16
/**
 * Refetches held at once; past it, requests are answered at once. Each is an open request of its
 * own client (a socket, its body read; a client that leaves gives its slot back), so this bounds a
 * flood of connections, not of names.
 */
const MAX_WAITING = 10_000

/** See the file comment. */
export interface CatchUp {
  /**
   * For a refetch naming `wanted`, a version other than the one served: a promise that settles once
   * `wanted` is served here or after the wait; undefined when there is nothing to wait for (the
   * version was served here before: the notice is older than what is served). `client`: the
   * request's response; once it closes (its client left), the wait is over and its slot free.
   */
  wait(wanted: string, client?: WaitingClient): Promise<void> | undefined
  /** Stops listening and lets every waiting request go; from then on none waits. */
  close(): void
}

/** The response of a held request, as {@link CatchUp.wait} watches it. */
export interface WaitingClient {
  readonly destroyed?: boolean
  once(event: 'close', listener: () => void): unknown
  off(event: 'close', listener: () => void): unknown
}

/** Follows `source`'s updates for {@link CatchUp.wait}. */
export function createCatchUp(source: FlagSource, maxWaitMs = CATCH_UP_MS): CatchUp {
  const served: string[] = []
  const remember = (version: string) => {
    if (served.includes(version)) return
    served.push(version)
    if (served.length > REMEMBERED) served.shift()
  }
  const initial = source.current()?.version
  if (initial !== undefined) remember(initial)
  // One entry per held request, never per version named: a replica cannot tell a version it has
  // not taken yet from a made-up one (both are just names), so a bound on distinct names was one
  // anyone could fill. 16 requests with random `flagConfigEtag`s every 2 s held every slot, and a
  // real tab's refetch was answered at once from the old version, its notice spent. Now a made-up
  // name holds only the request that sent it.
  const waiting = new Set<{ wanted: string; release: () => void }>()
  // After close (a drain): no version can come any more, so a refetch still being read is not held.
  let closed = false
  const unsubscribe = source.subscribe((event) => {
    if (event.type !== 'update') return
    const version = event.version.version
    remember(version)
    for (const waiter of [...waiting]) if (waiter.wanted === version) waiter.release()
  })
  return {
    wait(wanted, client) {
      if (closed || served.includes(wanted)) return undefined
      // A client gone already is answered by nobody: it holds no slot.
      if (waiting.size >= MAX_WAITING || client?.destroyed) return undefined
      return new Promise<void>((resolve) => {
        const waiter = {
          wanted,
          release: () => {
            clearTimeout(timer)
            client?.off('close', waiter.release)
            waiting.delete(waiter)
            resolve()
          },
        }
        const timer = setTimeout(waiter.release, maxWaitMs)
        timer.unref?.()
        // Before, a request dropped right after its body kept its slot for the whole wait: requests
        // sent and closed (no socket kept open) could hold every slot.
        client?.once('close', waiter.release)
        waiting.add(waiter)
      })
    },
    close() {
      closed = true
      unsubscribe()
      for (const waiter of [...waiting]) waiter.release()
    },
  }
}
