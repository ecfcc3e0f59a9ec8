// Enough Gherkin for the flagd-testbed feature files: Scenario Outlines with their tags, steps and
// Examples rows. A plain `Scenario:` ends the outline before it, so its steps and tables are not
// mistaken for the outline's. Used by the server's and the OpenFeature provider's testbed runs.
import type { JsonValue } from '@holdfast/core'

export interface Outline {
  name: string
  tags: string[]
  steps: string[]
  examples: Record<string, string>[]
}

/** The Scenario Outlines of a feature file, in order. */
export function outlines(feature: string): Outline[] {
  const result: Outline[] = []
  let tags: string[] = []
  let current: Outline | undefined
  let header: string[] | undefined
  for (const raw of feature.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('@')) tags = line.split(/\s+/)
    else if (line.startsWith('Scenario Outline:')) {
      current = { name: line.slice('Scenario Outline:'.length).trim(), tags, steps: [], examples: [] }
      result.push(current)
      tags = []
      header = undefined
    } else if (line.startsWith('Scenario:')) current = undefined
    else if (current && /^(Given|And|When|Then)\b/.test(line)) current.steps.push(line)
    else if (current && line.startsWith('|')) {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim())
      if (!header) header = cells
      else current.examples.push(Object.fromEntries(header.map((h, i) => [h, cells[i]])))
    }
  }
  return result
}

/** An Examples cell as the testbed's `type` column says (Boolean, Integer, Float, Object, else String). */
export function typed(type: string, text: string): JsonValue {
  if (type === 'Boolean') return text === 'true'
  if (type === 'Integer' || type === 'Float') return Number(text)
  if (type === 'Object') return JSON.parse(text)
  return text
}
