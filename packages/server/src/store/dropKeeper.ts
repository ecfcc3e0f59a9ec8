// The drops let go at the bound of those waiting for the store (`maxContexts`): counted, and said
// once a burst is over, at most once a minute (and at the stop). createSharedContexts keeps its
// owed drops and its drop queue's through it.
import type { ServerLogger } from '../logger'
import { setBounded } from '../lru'

/** What {@link createDropKeeper} returns. */
export interface DropKeeper {
  /** Keeps `value` for `contextKey` in `map`, bounded at `max`; one let go at the bound is counted and said. */
  keepDrop<V>(map: Map<string, V>, contextKey: string, value: V): void
  /** Says the drops let go since it last said so, if any (the stop calls it). */
  sayLetGo(): void
}

/** Creates the bound of the drops waiting for the store; see the file comment. */
export function createDropKeeper(max: number, log?: ServerLogger): DropKeeper {
  // A drop let go at the bound of those waiting (`max`, as the owed answers): its marker never
  // reaches the store. Before, it went without a word (and `redis.unshared` read one less). Said
  // once the burst is over, at most once a minute, with the count since (and at the stop).
  let letGo = 0
  let letGoSaidAt: number | undefined
  let letGoTimer: ReturnType<typeof setTimeout> | undefined
  const sayLetGo = () => {
    clearTimeout(letGoTimer)
    letGoTimer = undefined
    if (letGo === 0) return
    log?.warn(`${letGo} dropped context(s) not recorded in the store: more than ${max} were waiting for it (maxContexts); a relay started without a data dir may take their answers from before the drop`)
    letGoSaidAt = performance.now()
    letGo = 0
  }
  const keepDrop = <V>(map: Map<string, V>, contextKey: string, value: V) => {
    const full = map.size >= max && !map.has(contextKey)
    setBounded(map, contextKey, value, max)
    if (!full) return
    letGo++
    if (letGoTimer) return
    letGoTimer = setTimeout(sayLetGo, letGoSaidAt === undefined ? 0 : Math.max(0, 60_000 - (performance.now() - letGoSaidAt)))
    letGoTimer.unref?.()
  }
  return { keepDrop, sayLetGo }
}
