// The flagd-testbed evaluation scenarios (OpenFeature's Gherkin, in ../shared/ofrep/gherkin), run
// through a Holdfast client against the reference server: the pair must resolve every example of
// the tables the way an OpenFeature provider would. The Examples tables are read from the feature
// file itself, so a scenario added upstream is picked up (or fails loudly) rather than ignored.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, type JsonValue } from '@holdfast/core'
import { createFlagServer } from '@holdfast/server'
import { testbedDir } from '../support/shared'
import { outlines, typed } from '../support/gherkin'

const read = (name: string) => JSON.parse(readFileSync(join(testbedDir!, name), 'utf8'))


let url: string
let close: () => Promise<void>
beforeAll(async () => {
  if (!testbedDir) return
  // The feature's flags live in several files; one evaluator is shared across them.
  const files = ['flags_testing-flags.json', 'flags_zero-flags.json', 'evaluator_flags_testkit-flags.json'].map(read)
  const definitions = {
    flags: Object.assign({}, ...files.map((f) => f.flags ?? {})),
    $evaluators: Object.assign({}, ...files.map((f) => f.$evaluators ?? {})),
  }
  // The testkit file holds deliberately broken flags; flagd's lenient mode serves the rest.
  const server = await createFlagServer({ flags: definitions, port: 0, strictValidation: false, logger: { info() {}, warn() {}, error() {} } })
  url = server.url
  close = server.close
})
afterAll(() => close?.())

const feature = testbedDir ? readFileSync(join(testbedDir, 'gherkin_evaluation.feature'), 'utf8') : ''
// The @deprecated outline contradicts its replacement (@no-default-variant) on the same rows.
const scenarios = outlines(feature).filter((o) => !o.tags.includes('@deprecated'))

test.skipIf(!testbedDir)('the feature file has the outlines this suite knows how to run', () => {
  expect(scenarios.length).toBeGreaterThanOrEqual(5)
  for (const s of scenarios) expect(s.examples.length).toBeGreaterThan(0)
})

for (const scenario of scenarios) {
  describe(scenario.name, () => {
    test.each(scenario.examples)('$key ($type)', async (row) => {
      const contextStep = scenario.steps.find((s) => s.includes('a context containing a key'))
      const context: Record<string, unknown> = { targetingKey: 'gherkin-user' }
      if (contextStep) {
        const [, key, value] = /key "([^"]+)".*value "([^"]*)"/.exec(contextStep)!
        const resolved = value.replace(/<(\w+)>/g, (_, name) => row[name])
        if (resolved !== '') context[key] = resolved
      }
      const reasonStep = scenario.steps.find((s) => s.includes('the reason should be'))
      const expectedReason = reasonStep && /"([^"]*)"/.exec(reasonStep)![1].replace(/<(\w+)>/g, (_, name) => row[name])

      const client = createClient({ url, context: context as never, storage: 'memory', logger: { warn() {}, error() {} } })
      expect((await client.start()).state).toBe('ready')
      const defaultValue = typed(row.type, row.default ?? row.code_default)
      const details = client.getDetails(row.key, defaultValue)
      expect(details.value).toEqual(typed(row.type, row.resolved_value))
      if (expectedReason && expectedReason !== 'DEFAULT') expect(details.reason).toBe(expectedReason)
      if (expectedReason === 'DEFAULT' && details.source !== 'default') expect(details.reason).toBe('DEFAULT')
      await client.close()
    })
  })
}
