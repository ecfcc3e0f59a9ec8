// What Redis answers, read as the store reads it: a stored document, a refusal without the script
// that made it, a key made safe in a SCAN pattern, an error's words.
import type { StoredDocument } from './sharedStore'

/**
 * A stored document from HGETALL, which answers a flat list (RESP2) or a map (RESP3): either is
 * read, and anything malformed (a key written by something else) as nothing stored (undefined).
 */
export function readDocument(reply: string[] | Record<string, string>): StoredDocument | undefined {
  const fields: Record<string, string> = {}
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1])
  else if (reply && typeof reply === 'object') for (const [k, v] of Object.entries(reply)) fields[k] = String(v)
  const version = Number(fields.version)
  const fetchedAt = Number(fields.fetchedAt)
  if (!Number.isFinite(version) || !Number.isFinite(fetchedAt) || typeof fields.body !== 'string') return undefined
  return { version, fetchedAt, body: fields.body, ...(fields.etag ? { etag: fields.etag } : {}), ...(fields.lineage ? { lineage: fields.lineage } : {}) }
}

/** Redis' refusal without the script and line it names (`… script: SHA, on @user_script:19.`). */
export function refusalOf(message: string): string {
  return message.replace(/\s*script: \S+, on @user_script:\d+\.?$/, '')
}

/** `text` with the glob characters of a SCAN `MATCH` pattern escaped. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/** An error's message (its name when it has none), or anything thrown as text. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name
  return String(error)
}
