// What a proxy-mode relay serves before the upstream answers: the last good answers saved in the
// data dir, and a `--snapshot`, each read once at `open()`.
import type { ServerLogger } from '../logger'
import type { ContextCache } from './contextCache'
import { parseFlagDefinitions } from './flagDefinitions'
import type { GenerationStore } from './generations'
import { loadNewestPayload } from './persistence'
import { contextsRecordSchema, readRecord, readRefused, type RefusedInRun } from './records'
import { loadSnapshotLayer, unusableSnapshot, type SnapshotLayer, type SnapshotState } from './snapshotFile'

/**
 * Puts the newest answers saved in the data dir into `cache` (none saved or readable: nothing), and
 * returns the contexts that generation records as dropped by an upstream 401/403, with when.
 * `now` is the relay's clock; `upstream` names the upstream in the log (credentials taken out);
 * `keep`: --on-upstream-unauthorized keep, under which no run is carried on (default false).
 */
export async function loadHeldContexts(store: GenerationStore, cache: ContextCache, now: () => number, log: ServerLogger, upstream: string, keep = false): Promise<{ cleared: Array<[string, number]>; refused: RefusedInRun[] }> {
  const payload = await loadNewestPayload(store, (text) => readRecord(contextsRecordSchema, text) !== undefined, log)
  const saved = payload === undefined ? undefined : readRecord(contextsRecordSchema, payload)
  if (!saved) return { cleared: [], refused: [] }
  // An answer dated ahead of this clock was not fetched later than now (see urlSharing.ts).
  const at = now()
  const ahead = new Set(saved.contexts.filter((context) => context.fetchedAt > at).map((context) => context.key))
  cache.load(saved.contexts.map((context) => (ahead.has(context.key) ? { ...context, fetchedAt: at } : context)))
  // Their times order nothing against the store's copies (see judgeShared in sharedTake.ts).
  for (const [key, held] of cache.entries()) if (ahead.has(key)) held.clockAhead = true
  log.info(`serving the last good answers of ${cache.size()} contexts from the data dir while ${upstream} is asked`)
  // `clear-after`'s runs, each entry on its own: one that cannot be read is said, not the rest lost.
  const refused = readRefused(saved.refused)
  if (refused.unread > 0) log.warn(`the data dir's list of contexts refused (401/403) in a clear-after run ${Array.isArray(saved.refused) ? `holds ${refused.unread === 1 ? 'an entry' : `${refused.unread} entries`} that cannot be read` : 'cannot be read (not a list)'} (a hand edit, another version): left out; their contexts' values are held until their next 401/403${keep ? '' : ` (the ${refused.runs.length} that read carry their runs on)`}`)
  return { cleared: (saved.cleared ?? []).map(({ key, at }) => [key, at]), refused: refused.runs }
}

/**
 * A `--snapshot` as proxy mode serves it: `layer` (and, for definitions, `core`) when usable;
 * `state` whether it could be used (absent without a path). `refusesStart`: false when the file
 * was read but holds no flags or can be served to nobody (the relay then starts not ready, as
 * before), else true.
 */
export interface ProxySnapshot {
  layer?: SnapshotLayer
  core?: ReturnType<typeof parseFlagDefinitions>
  state?: SnapshotState
  refusesStart: boolean
}

/**
 * Reads the `--snapshot` at `path` (none: nothing to serve); a torn, invalid or empty one is
 * reported, not served. A values snapshot the relay can serve to nobody (made with a header it does
 * not forward) is unusable likewise; one it serves to fewer than before (see `answerFromSnapshot`)
 * is said in the log: `forwardHeaders` are the relay's, lower case.
 */
export async function loadProxySnapshot(path: string | undefined, log: ServerLogger, now: () => number, forwardHeaders: readonly string[] = []): Promise<ProxySnapshot> {
  if (!path) return { refusesStart: true }
  const read = await loadSnapshotLayer(path, log, now())
  let state: SnapshotState | undefined = read.state
  let layer = read.layer
  let core: ReturnType<typeof parseFlagDefinitions> | undefined
  if (layer?.kind === 'definitions') {
    core = parseFlagDefinitions(layer.text, { strict: false })
    // Invalid definitions are unusable as a torn file is: served from elsewhere if anything has flags.
    if (!core.ok) {
      state = unusableSnapshot(path, `the snapshot ${path} is invalid: ${core.error}`, log).state
      return { state, refusesStart: true }
    }
  }
  // A record no request can match is served to nobody, as below: said, no refusal to start.
  if (!layer) return { state, refusesStart: read.servedToNobody !== true }
  // No flags to give is nothing to serve (CONTRACT §9: 503, never an empty 200), as the
  // definitions modes refuse such a snapshot too.
  const count = layer.kind === 'bootstrap' ? layer.bootstrap.flags.filter((f) => f.errorCode === undefined).length : core?.ok ? core.count : 0
  // Taken on a machine whose clock ran ahead: not fetched later than now (see urlSharing.ts).
  const at = now()
  if (count === 0) {
    // Reported, but not a refusal to start: with nothing else the relay is not ready (503), as before.
    state = unusableSnapshot(path, `the snapshot ${path} cannot be served: it holds no flags`, log).state
    return { state, refusesStart: false }
  }
  if (layer.kind === 'bootstrap') {
    // Made with a header the relay does not forward, no request can carry its credentials: it is
    // unusable as an empty one is (reported, not a refusal to start). Before, only a start warning
    // said so, and the status said `usable: true, servedTo: 'its-credentials'` (the metric 1).
    const unforwarded = layer.credentials?.headers.filter((name) => !forwardHeaders.includes(name)) ?? []
    if (unforwarded.length > 0) {
      const why = `the snapshot ${path} can be served to nobody: it was made with ${unforwarded.join(', ')}, which the relay does not forward (--forward-header); make it with the headers the relay forwards, or forward them`
      return { state: unusableSnapshot(path, why, log).state, refusesStart: false }
    }
    state = state && { ...state, kind: 'values', servedTo: 'its-credentials' }
    layer = { ...layer, bootstrap: { ...layer.bootstrap, fetchedAt: Math.min(layer.bootstrap.fetchedAt, at) } }
    if (!layer.credentials && forwardHeaders.length > 0) log.warn(`the snapshot ${path} records no credentials (made without --header, or by an older holdfast-server): it is served only to requests that forward none (${forwardHeaders.join(', ')}), as whose key made its values is unknown; make it again with --header naming the key the relay's clients send to serve it to them`)
  }
  else {
    layer = { ...layer, fetchedAt: Math.min(layer.fetchedAt, at) }
    // Definitions record no credentials and answer any context: every forwarded key gets them. One
    // tenant per relay (or clients that send none) is what they are for, and a relay whose clients
    // send one key still needs them, so they are served as ever; a relay of several tenants would
    // give each tenant's users these definitions in an outage, which only the operator can know.
    state = state && { ...state, kind: 'definitions', servedTo: 'every-request', ...(forwardHeaders.length > 0 ? { forwardHeaders: [...forwardHeaders] } : {}) }
    if (forwardHeaders.length > 0) {
      log.warn(
        `the definitions snapshot ${path} is served in proxy mode to every request whatever credentials it forwards (${forwardHeaders.join(', ')}): in an upstream outage every tenant's users get values from these definitions; if the relay's clients send keys of different tenants, leave --snapshot out, or give a values snapshot made with --header (served only to its key)`,
      )
    }
  }
  return core === undefined ? { layer, state, refusesStart: true } : { layer, core, state, refusesStart: true }
}
