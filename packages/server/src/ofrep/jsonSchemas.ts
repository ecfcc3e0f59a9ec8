import { z } from 'zod'
import { valuesSnapshotSchema } from '../flags/records'

/** Where the published JSON Schema of the Bootstrap format lives, relative to the package root. */
export const BOOTSTRAP_SCHEMA_FILE = 'schema/bootstrap.schema.json'

/**
 * The Bootstrap / values-snapshot format (`@holdfast/core`'s `Bootstrap`, and the snapshot's
 * `holdfastCredentials`) as JSON Schema (draft 2020-12), generated from the zod schema so the two cannot drift: `npm run schemas:server` writes it to
 * {@link BOOTSTRAP_SCHEMA_FILE}, and a test fails when the committed file is not current.
 */
export function bootstrapJsonSchema(): Record<string, unknown> {
  return { $id: 'https://holdfast.dev/schema/bootstrap.schema.json', ...z.toJSONSchema(valuesSnapshotSchema) }
}
