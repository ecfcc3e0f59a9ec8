// `npm run schemas:server`: writes the JSON Schemas generated from @holdfast/server's zod schemas
// (packages/server/schema/*.json). test/server/schemas.test.ts fails when a committed file is stale.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BOOTSTRAP_SCHEMA_FILE, bootstrapJsonSchema } from '../packages/server/src/ofrep/jsonSchemas'

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'packages', 'server')
writeFileSync(join(root, BOOTSTRAP_SCHEMA_FILE), JSON.stringify(bootstrapJsonSchema(), null, 2) + '\n')
console.log(`wrote packages/server/${BOOTSTRAP_SCHEMA_FILE}`)
