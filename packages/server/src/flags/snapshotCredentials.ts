// Which credentials a values snapshot (a Bootstrap made by `holdfast-server snapshot --upstream`) was
// made with, so that a relay in proxy mode lets it stand in only for those. The upstream answered
// it for the snapshot's `--header`s (an SDK key, a tenant header); a relay forwarding each client's
// credentials serves many keys, and another key's user must never get values made with this one.
// The file holds the header names and a salted SHA-256 of their values, never the values: it may
// ship to browsers as a `fallback`.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { UNFORWARDABLE_HEADERS } from './headerNames'

/** `holdfastCredentials` in a values snapshot: the headers it was made with, by lower-case name, and a salted hash of their values. */
export interface SnapshotCredentials {
  /** Lower-case header names, sorted (the relay sorts them as it reads the file). */
  headers: string[]
  /** Random, per file (hex). */
  salt: string
  /** SHA-256 (hex) of the salt and the headers' names and values. */
  sha256: string
}

/**
 * A header name the record may hold: lower case (the relay compares names in lower case) and one
 * the relay can forward. In the pattern, so that the published JSON Schema refuses it too.
 */
const RECORDED_NAME = new RegExp(`^(?!(?:${[...UNFORWARDABLE_HEADERS].join('|')})$)[a-z0-9!#$%&'*+.^_\`|~-]+$`)

/**
 * The record's schema (read at a relay's start; a record that does not read makes the snapshot
 * unusable), and its part of the published JSON Schema of a values snapshot.
 */
export const snapshotCredentialsSchema = z
  .object({
    // Refused here as a relay could never serve the file (before, read as any strings, it was
    // refused at start or never matched a request, while the published schema let it pass): a
    // name in upper case or one the relay cannot forward is matched by no request, nor is a name
    // twice. The order is not the relay's business: it sorts them on reading (a JSON Schema
    // cannot say "sorted").
    headers: z
      .array(z.string().regex(RECORDED_NAME))
      .refine((names) => new Set(names).size === names.length, 'a header name is listed twice')
      .meta({ uniqueItems: true })
      .describe('The header names the snapshot was made with: lower-case, each once, none that a relay cannot forward (Host, Content-Type, If-None-Match, …).'),
    salt: z.string().min(1).describe('Random, per file (hex).'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 (hex) of the salt and the headers\' names and values: never the values themselves.'),
  })
  // Other fields are let through, as the relay's reading always did (zod's default strips them):
  // published as `additionalProperties: false`, a later field would have failed files the relay reads.
  .loose()
  .describe('Written by `holdfast-server snapshot --upstream … --header …`: whose credentials the values were made with. A relay in proxy mode serves the snapshot only to requests that forward exactly these headers with these values. The client reading the file as a `fallback` ignores it.')

/**
 * Why a record of the right shape (names, salt, hash) that the schema refuses can be matched by no
 * request, or undefined when it is not of that shape. Older snapshot commands wrote some: a
 * conditional header (`--header If-Match`, taken until the relay refused to forward them), one
 * header in two spellings (recorded twice). Such a file can be served to nobody, which a relay says
 * and starts not ready (see upstreamStart.ts), as before the schema refused it; a record that does
 * not read at all is a torn or hand-edited file.
 */
export function unmatchableRecord(recorded: unknown): string | undefined {
  const shape = snapshotCredentialsSchema.extend({ headers: z.array(z.string()) }).safeParse(recorded)
  if (!shape.success) return undefined
  const names = shape.data.headers
  const bad = [...new Set(names.filter((name, i) => !RECORDED_NAME.test(name) || names.indexOf(name) !== i))]
  return bad.length === 0 ? undefined : `it was made with ${bad.join(', ')}, which no request can match as recorded (a header name in upper case, listed twice, or one the relay cannot forward); make it again with the headers the relay forwards`
}

/** The record of `headers` (name → value, any case), for the snapshot command. */
export function recordCredentials(headers: Record<string, string>, salt = randomBytes(16).toString('hex')): SnapshotCredentials {
  const pairs = sortedPairs(headers)
  return { headers: pairs.map(([name]) => name), salt, sha256: digest(salt, pairs) }
}

/** Whether the forwarded headers of a request (name → value, any case) are exactly those the snapshot was made with. */
export function madeWith(record: SnapshotCredentials, forwarded: Record<string, string>): boolean {
  const pairs = sortedPairs(forwarded)
  if (pairs.length !== record.headers.length || pairs.some(([name], i) => name !== record.headers[i])) return false
  return timingSafeEqual(Buffer.from(digest(record.salt, pairs), 'hex'), Buffer.from(record.sha256, 'hex'))
}

function sortedPairs(headers: Record<string, string>): Array<readonly [string, string]> {
  return Object.entries(headers)
    .map(([name, value]) => [name.toLowerCase(), value] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

function digest(salt: string, pairs: Array<readonly [string, string]>): string {
  return createHash('sha256').update(JSON.stringify([salt, pairs])).digest('hex')
}
