// A context's held flags as the OFREP entries a relay serves them as. Its own module: the held
// contexts' cache (contextCache.ts, hashing the served form) and the proxy's answers
// (proxyAnswer.ts) both need it; before, contextCache.ts took it from proxyAnswer.ts, which takes
// contextCache.ts's HeldContext: an import cycle.
import type { FlagMap } from '@holdfast/core'
import type { OfrepEntry } from '../ofrep/evaluate'

/**
 * The held flags as OFREP entries: a value kept through a per-flag error says so in its reason
 * (STALE) and names the error in its metadata (`errorCode`), as CONTRACT §4 asks of a kept value.
 * Not as the entry's own `errorCode`: an entry with one is a failure entry to every OFREP client
 * (the official provider tests `'errorCode' in entry`), so a client holding nothing yet would get
 * its default instead of the value kept for it. Holdfast reads the code back from the metadata.
 *
 * `notFound` (the flags the upstream removed with FLAG_NOT_FOUND since its last clean answer) go
 * out as FLAG_NOT_FOUND entries when the answer holds a bare failure entry: such an answer is
 * partial to a client, which keeps every flag it does not mention, so a flag merely absent stayed
 * in the browser (stale) where the relay had removed it. A clean answer needs none (absence
 * removes) and stays clean, so the browser keeps its ETag for it.
 */
export function toEntries(flags: FlagMap, notFound?: readonly string[]): OfrepEntry[] {
  const entries: OfrepEntry[] = []
  let partial = false
  for (const flag of flags.values()) {
    if (flag.value === undefined && flag.errorCode !== undefined) {
      entries.push({ key: flag.key, errorCode: flag.errorCode, ...(flag.metadata ? { metadata: flag.metadata } : {}) })
      partial = true
      continue
    }
    const entry: OfrepEntry = { key: flag.key, reason: flag.stale ? 'STALE' : (flag.reason ?? 'UNKNOWN') }
    if (flag.value !== undefined) entry.value = flag.value
    if (flag.variant !== undefined) entry.variant = flag.variant
    if (flag.errorCode !== undefined && flag.stale) entry.metadata = { ...flag.metadata, errorCode: flag.errorCode }
    else if (flag.metadata !== undefined) entry.metadata = flag.metadata
    entries.push(entry)
  }
  if (partial && notFound) for (const key of notFound) if (!flags.has(key)) entries.push({ key, errorCode: 'FLAG_NOT_FOUND' })
  return entries
}
