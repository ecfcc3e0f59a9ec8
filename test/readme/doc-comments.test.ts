// @vitest-environment node
// STYLE.md: "Every exported function, option and type has a one-paragraph doc comment with its
// default." The shipped `.d.ts` is where a user reads that paragraph (an editor's hover, a
// go-to-definition into node_modules), so this reads the BUILT declarations each package ships, the
// way the TypeScript compiler resolves them: every entry an `exports` map declares a `types` for
// (run `npm run build` first; the test fails, it does not skip, when an entry is not built).
//
// Checked, for every symbol an entry exports that the package itself declares (`@holdfast/react`'s
// `export * from '@holdfast/core'` is checked once, under core):
//   - the symbol (function, constant, class, interface, type alias) has a doc comment;
//   - every property and method of an exported interface or object type alias (a type literal, or
//     each type literal of a union or intersection), and of the type literals nested in a member's
//     type (`ClientOptions.events.url`), has one; and so do a class's public members;
//   - "a doc comment" is JSDoc text (tags count) of at least MIN_WORDS words.
// The rule for defaults: an optional (`?`) member of an option bag — an interface or type alias
// whose name ends in `Options` or `Props`, and the type literals nested in its members — must say
// what happens when it is left out: its text matches DEFAULT_WORDS ("default", "Default", "defaults
// to", or "no default" / "none" / "unset" where leaving it out means there is none).
// A failure lists `package: Symbol.member` for each gap.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const MIN_WORDS = 3
const DEFAULT_WORDS = /\bdefaults?\b|\bnone\b|\bunset\b/i
const OPTION_BAG = /(Options|Props)$/

// Gaps in files another change is splitting, whose doc comments are written after that split is
// merged (empty since the splits of upstreamSource.ts, redisStore.ts, sharedContexts.ts and
// core's live/ were). Each entry is one gap in one such file; an entry that is no longer a gap
// fails the test, so the list only shrinks.
const PENDING_SPLIT = new Set<string>([])

type Entry = { pkg: string; subpath: string; types: string }

function entries(): Entry[] {
  const out: Entry[] = []
  for (const pkg of ['core', 'react', 'openfeature', 'server']) {
    const dir = join(root, 'packages', pkg)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    for (const [subpath, target] of Object.entries<unknown>(manifest.exports ?? {})) {
      const types = typesOf(target)
      if (types) out.push({ pkg, subpath, types: resolve(dir, types) })
    }
  }
  return out
}

/** The ESM `types` condition of an `exports` target (`import.types`, or a top-level `types`). */
function typesOf(target: unknown): string | undefined {
  if (typeof target !== 'object' || target === null) return undefined
  const t = target as Record<string, unknown>
  if (typeof t.types === 'string') return t.types
  return typesOf(t.import)
}

function docText(symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const text = ts.displayPartsToString(symbol.getDocumentationComment(checker))
  const tags = symbol
    .getJsDocTags(checker)
    .map((tag) => `${tag.name} ${ts.displayPartsToString(tag.text ?? [])}`)
    .join(' ')
  return `${text} ${tags}`.trim()
}

const words = (text: string) => text.split(/\s+/).filter((w) => /[A-Za-z0-9]/.test(w)).length

/** The type literals a type node is made of: itself, or the members of a union/intersection/parenthesis. */
function literals(node: ts.TypeNode | undefined): ts.TypeLiteralNode[] {
  if (!node) return []
  if (ts.isTypeLiteralNode(node)) return [node]
  if (ts.isUnionTypeNode(node) || ts.isIntersectionTypeNode(node)) return node.types.flatMap(literals)
  if (ts.isParenthesizedTypeNode(node)) return literals(node.type)
  return []
}

function gapsOf(entry: Entry): string[] {
  const program = ts.createProgram([entry.types], {
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
  })
  const checker = program.getTypeChecker()
  const file = program.getSourceFile(entry.types)
  if (!file) throw new Error(`${entry.types} is not built: run npm run build`)
  const moduleSymbol = checker.getSymbolAtLocation(file)
  if (!moduleSymbol) throw new Error(`${entry.types} exports nothing`)
  // The package's own declaration files: its dist folder.
  const own = dirname(entry.types)
  const label = entry.subpath === '.' ? entry.pkg : `${entry.pkg}${entry.subpath.slice(1)}`
  const gaps: string[] = []

  const checkMember = (name: string, member: ts.Symbol, optionBag: boolean) => {
    const text = docText(member, checker)
    if (words(text) < MIN_WORDS) gaps.push(`${label}: ${name} (no doc comment)`)
    else if (optionBag && member.flags & ts.SymbolFlags.Optional && !DEFAULT_WORDS.test(text))
      gaps.push(`${label}: ${name} (optional, says no default)`)
    // Option fields nested as type literals (`events?: false | { url; flushIntervalMs? }`).
    for (const decl of member.declarations ?? []) {
      const typeNode = ts.isPropertySignature(decl) || ts.isPropertyDeclaration(decl) ? decl.type : undefined
      for (const literal of literals(typeNode)) checkLiteral(name, literal, optionBag)
    }
  }
  const checkLiteral = (owner: string, node: ts.TypeLiteralNode, optionBag: boolean) => {
    for (const m of node.members) {
      const sym = (m as ts.NamedDeclaration).name ? checker.getSymbolAtLocation((m as ts.NamedDeclaration).name!) : undefined
      // Index and call signatures have no name to document; the type's own comment covers them.
      if (sym) checkMember(`${owner}.${sym.name}`, sym, optionBag)
    }
  }

  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
    const decls = (symbol.declarations ?? []).filter((d) => dirname(d.getSourceFile().fileName) === own)
    // Declared in another package (react's re-export of core): checked there.
    if (decls.length === 0) continue
    const name = exported.name
    if (words(docText(symbol, checker)) < MIN_WORDS) gaps.push(`${label}: ${name} (no doc comment)`)
    const optionBag = OPTION_BAG.test(name)
    for (const decl of decls) {
      if (ts.isInterfaceDeclaration(decl)) {
        for (const m of decl.members) {
          const sym = m.name ? checker.getSymbolAtLocation(m.name) : undefined
          if (sym) checkMember(`${name}.${sym.name}`, sym, optionBag)
        }
      } else if (ts.isTypeAliasDeclaration(decl)) {
        for (const literal of literals(decl.type)) checkLiteral(name, literal, optionBag)
      } else if (ts.isClassDeclaration(decl)) {
        for (const m of decl.members) {
          if (!m.name || ts.isConstructorDeclaration(m)) continue
          const modifiers = ts.getCombinedModifierFlags(m)
          if (modifiers & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue
          if (ts.isPrivateIdentifier(m.name)) continue
          const sym = checker.getSymbolAtLocation(m.name)
          if (sym) checkMember(`${name}.${sym.name}`, sym, false)
        }
      }
    }
  }
  return [...new Set(gaps)]
}

describe('every exported symbol of the built declarations has a doc comment (with its default)', () => {
  const all = entries()
  const memo = new Map<Entry, string[]>()
  const gapsFor = (entry: Entry) => memo.get(entry) ?? memo.set(entry, gapsOf(entry)).get(entry)!
  for (const entry of all) {
    it(`${entry.pkg} ${entry.subpath}`, () => {
      const gaps = gapsFor(entry)
      expect(gaps.filter((gap) => !PENDING_SPLIT.has(gap))).toEqual([])
    })
  }
  it('the entries checked are the ones the exports maps declare', () => {
    expect(all.map((e) => `${e.pkg} ${e.subpath}`)).toEqual([
      'core .',
      'core ./testing',
      'react .',
      'react ./testing',
      'openfeature .',
      'server .',
    ])
  })
  it('every pending gap is still a gap (the list only shrinks)', () => {
    const found = new Set(all.flatMap(gapsFor))
    expect([...PENDING_SPLIT].filter((gap) => !found.has(gap))).toEqual([])
  })
})
