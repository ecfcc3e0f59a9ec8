import { z } from 'zod'

// The flagd flag document, as the reference server reads it. This is the structural layer (what
// every document must look like before anything is compiled); flagd-core's own JSON schema checks
// the targeting rules on top in strict mode. Objects are loose: flagd adds fields over time, and a
// reader that refuses an unknown or omitted optional field breaks on the next release.
//
// Keys such as "__proto__" are ordinary flag keys here. zod's record() drops them from its output,
// so callers validate with these schemas and keep using the object JSON.parse gave them.

const primitive = z.union([z.string(), z.number(), z.boolean()])

/** Flag or flag-set metadata: a flat object of strings, numbers and booleans (flagd schema). */
export const flagMetadataSchema = z.record(z.string(), primitive)

/** One flag: `{ state, variants, defaultVariant?, targeting?, metadata? }`. */
export const flagdFlagSchema = z
  .object({
    state: z.enum(['ENABLED', 'DISABLED']),
    variants: z.record(z.string(), z.unknown()),
    defaultVariant: z.string().nullable().optional(),
    targeting: z.record(z.string(), z.unknown()).optional(),
    metadata: flagMetadataSchema.optional(),
  })
  .loose()

/** A whole flagd document: `{ $schema?, flags, $evaluators?, metadata? }`. */
export const flagdDocumentSchema = z
  .object({
    $schema: z.string().optional(),
    flags: z.record(z.string(), flagdFlagSchema),
    $evaluators: z.record(z.string(), z.unknown()).optional(),
    metadata: flagMetadataSchema.optional(),
  })
  .loose()
