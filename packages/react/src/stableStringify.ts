// Value identity for props and defaults that users write inline (`context={{ targetingKey }}`,
// `useConfig('x', {})`): a new object with the same content must count as "unchanged".

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` compare equal. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined'
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`
  const obj = value as Record<string, unknown>
  const parts: string[] = []
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] !== undefined) parts.push(`${JSON.stringify(key)}:${stableStringify(obj[key])}`)
  }
  return `{${parts.join(',')}}`
}
