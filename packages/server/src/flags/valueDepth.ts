// How deep a flag value nests, measured without recursion. The proxy refuses an upstream answer
// whose value nests deeper than MAX_VALUE_DEPTH, and its data dir, --redis records and readers
// allow exactly that much: the limit is the value's own, however many levels a record wraps it
// in. Definitions allow the same depth below a flag's variants (flagDefinitions.ts). Before, both
// sides leaned on recursion (zod's, flagd-core's), which runs out of stack at a depth that depends
// on the wrapper and on how warm the process is: a value a long-running relay accepted and saved
// overflowed the reader of a freshly restarted one, and the generation was lost.

/**
 * Deepest nesting of arrays and objects in a flag value the relay accepts: 512 levels. A scalar
 * is 0, `{"a":1}` is 1. Far above any real flag value, far below where JSON.stringify, the merge
 * or any reader of this server runs out of stack.
 */
export const MAX_VALUE_DEPTH = 512

/** The depth of `value` (see {@link MAX_VALUE_DEPTH}), counted up to `limit + 1` at most. */
export function valueDepth(value: unknown, limit = MAX_VALUE_DEPTH): number {
  let deepest = 0
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (node === null || typeof node !== 'object') continue
    const level = depth + 1
    if (level > deepest) deepest = level
    if (level > limit) return level
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, level])
    }
  }
  return deepest
}

/**
 * Whether every number in `value` is finite: `JSON.parse` reads a number out of the double range
 * (`1e400`) as Infinity, which `JSON.stringify` writes as null. Without recursion, like {@link valueDepth}.
 */
export function allFinite(value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const node = stack.pop()
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) return false
    } else if (node !== null && typeof node === 'object') {
      for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push(child)
    }
  }
  return true
}
