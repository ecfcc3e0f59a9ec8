import { isOneLineItself, markOneLineItself, type ServerLogger } from './logger'

/**
 * Bounds the lines of one kind: within a window (60 s) the first `burst` (5) lines of a kind are
 * written, the others counted, and one line then says `… and 9,995 more like this in the last 60 s`
 * (with the last of them). A client can make some lines repeat (each event it sends that the events
 * sink refuses named one); written each time, 5,000 of them were 5,000 lines, burying what else the
 * server said and filling the disk of whatever keeps the log. A kind is the line with its numbers
 * and its parenthesised details (ids, lengths) left out, and the level.
 *
 * A kind that falls quiet (no line of it for `quietMs`, 2 s) has what it held back said then, not at
 * the end of its window: a state said by a line of one kind, then undone by one of another (a flags
 * file refused, then fixed; a source down, then back), a sixth time within a minute, left the log
 * saying the old state until the window ended, up to 60 s, while the server was in the new one.
 * A flood (a line of the kind every second or faster) is still summed up once a window.
 */
export interface RepeatLimiter {
  /** `logger` with its lines limited. */
  logger: ServerLogger
  /**
   * Writes the summaries of the windows that ended and of the kinds quiet for `quietMs` (their
   * window goes on); with `all`, of every kind, before an exit. Call it every second or so.
   */
  tick(all?: boolean): void
}

export interface RepeatLimiterOptions {
  /** Window of a kind, ms. Default 60,000. */
  windowMs?: number
  /** Lines of a kind written per window. Default 5. */
  burst?: number
  /** A kind with no line for this long has what it held back said at the next tick. Default 2,000. */
  quietMs?: number
  /** Kinds followed at once; past it, new kinds share one. Default 500. */
  maxKinds?: number
  /** The clock, ms (monotonic). Default performance.now. */
  now?: () => number
}

type Level = 'info' | 'warn' | 'error'
interface Kind {
  level: Level
  since: number
  written: number
  more: number
  last: string
  lastAt: number
}

const PREFIX = '[holdfast-server] '
const OVERFLOW = '\0overflow'

/** Creates a {@link RepeatLimiter} writing to `target`. */
export function createRepeatLimiter(target: ServerLogger, options: RepeatLimiterOptions = {}): RepeatLimiter {
  const windowMs = options.windowMs ?? 60_000
  const burst = options.burst ?? 5
  const quietMs = options.quietMs ?? 2000
  const maxKinds = options.maxKinds ?? 500
  const now = options.now ?? (() => performance.now())
  const kinds = new Map<string, Kind>()

  const summarise = (kind: Kind) => {
    if (kind.more === 0) return
    const last = kind.last.startsWith(PREFIX) ? kind.last.slice(PREFIX.length) : kind.last
    target[kind.level](`${PREFIX}… and ${kind.more.toLocaleString('en-US')} more like this in the last ${Math.round(windowMs / 1000)} s (the last: ${last})`)
  }
  const tick = (all = false) => {
    const at = now()
    const due: Kind[] = []
    for (const [key, kind] of kinds) {
      if (all || at - kind.since >= windowMs) {
        due.push(kind)
        kinds.delete(key)
      } else if (kind.more > 0 && at - kind.lastAt >= quietMs) {
        // Said now; the window goes on (a line more of the kind is held back again).
        due.push({ ...kind })
        kind.more = 0
      }
    }
    // In the order their last lines came: the log ends on the latest state.
    for (const kind of due.sort((a, b) => a.lastAt - b.lastAt)) summarise(kind)
  }
  const log = (level: Level, message: string) => {
    let key = `${level} ${kindOf(message)}`
    let kind = kinds.get(key)
    if (kind && now() - kind.since >= windowMs) {
      summarise(kind)
      kinds.delete(key)
      kind = undefined
    }
    if (!kind && kinds.size >= maxKinds) {
      tick()
      if (kinds.size >= maxKinds) {
        key = `${level} ${OVERFLOW}`
        kind = kinds.get(key)
      }
    }
    if (!kind) kinds.set(key, (kind = { level, since: now(), written: 0, more: 0, last: '', lastAt: 0 }))
    if (kind.written < burst) {
      kind.written++
      return target[level](message)
    }
    kind.more++
    kind.last = message
    kind.lastAt = now()
  }
  const limited: ServerLogger = { info: (m) => log('info', m), warn: (m) => log('warn', m), error: (m) => log('error', m) }
  // Its lines reach `target` as they came: a target that escapes them itself says so still.
  if (isOneLineItself(target)) markOneLineItself(limited)
  return {
    logger: limited,
    tick,
  }
}

// The line without what differs between two of its kind: numbers and (parenthesised details).
function kindOf(message: string): string {
  let kind = message
  for (let pass = 0; pass < 3; pass++) {
    const next = kind.replace(/\([^()]*\)/g, '()')
    if (next === kind) break
    kind = next
  }
  return kind.replace(/\d+/g, '#').slice(0, 300)
}
