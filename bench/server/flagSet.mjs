// The flag set the server benchmark evaluates: `n` flags like a real product's — a third plain
// switches, a third targeted on context attributes, a third percentage rollouts — with metadata.
export function flagSet(n) {
  const flags = {}
  for (let i = 0; i < n; i++) {
    const kind = i % 3
    flags[`flag-${i}`] = {
      state: 'ENABLED',
      variants: kind === 0 ? { on: true, off: false } : { a: `variant-a-${i}`, b: `variant-b-${i}` },
      defaultVariant: kind === 0 ? 'off' : 'a',
      ...(kind === 1 ? { targeting: { if: [{ or: [{ '==': [{ var: 'plan' }, 'pro'] }, { ends_with: [{ var: 'email' }, '@example.com'] }] }, 'b', 'a'] } } : {}),
      ...(kind === 2 ? { targeting: { fractional: [['a', 50], ['b', 50]] } } : {}),
      metadata: { team: `team-${i % 7}` },
    }
  }
  return { metadata: { flagSetId: 'bench' }, flags }
}
