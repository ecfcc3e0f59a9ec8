// What a Holdfast events sink refuses (a 400 for the whole batch: `EVENT_LIMITS` and the zod event
// schema of @holdfast/server). Delivery drops such an event alone before its batch goes out, so one
// oversized name, a flag value nested too deep or a `__proto__` key stored by an older page never
// takes the valid events beside it down. test/server/events-limits.test.ts proves on generated
// events that this check and the server's reader agree.
import type { HoldfastEvent } from '../../types'

/**
 * Whether the sink would refuse `event`: an id outside 1-128 characters; a name, targetingKey,
 * flagKey, variant or reason over 1,024 (or not a string); a `__proto__` key; nesting over 70
 * levels (72 in the body `{"events": [event]}`); metadata that is not an object or is over 4
 * levels, 100 keys or 16 KiB as JSON.
 */
export function overLimits(event: HoldfastEvent): boolean {
  const { id, metadata } = event
  if (!id || id.length > 128) return true
  for (const field of ['name', 'targetingKey', 'flagKey', 'variant', 'reason'] as const) {
    const v: unknown = event[field]
    if (v != null && (typeof v !== 'string' || v.length > 1024)) return true
  }
  if (shape(event, 70)) return true
  return metadata != null && (typeof metadata !== 'object' || Array.isArray(metadata) || shape(metadata, 4, 100) || JSON.stringify(metadata).length > 16_384)
}

// True when `value` nests deeper than `depth`, has more than `keys` object keys (at every level)
// or a `__proto__` key. Walked with a stack: no recursion to overflow.
function shape(value: unknown, depth: number, keys = Infinity): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, level] = stack.pop()!
    if (typeof node !== 'object' || node === null) continue
    if (level > depth) return true
    const array = Array.isArray(node)
    for (const key of Object.keys(node)) {
      if (!array && (--keys < 0 || key === '__proto__')) return true
      stack.push([(node as Record<string, unknown>)[key], level + 1])
    }
  }
  return false
}
