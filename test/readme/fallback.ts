import { createClient, type Bootstrap } from '@holdfast/core'
import { RELAY_URL, context } from './your-app' // your own code
import snapshot from './flags.fallback.json'     // written by the CI step above
// TypeScript types a JSON import by its literal contents, which it does not take for a `Bootstrap`
// once the flags' metadata differ in keys (even with a cast): the file is one, so say so.
const fallback = snapshot as unknown as Bootstrap
const client = createClient({ url: RELAY_URL, context, fallback }) // a first visit with no network still has values
