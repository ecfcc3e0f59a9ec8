import { createClient } from '@holdfast/core'
import { RELAY_URL, context } from './your-app' // your own code
import fallback from './flags.fallback.json'     // written by the CI step above; taken as it is, no cast
const client = createClient({ url: RELAY_URL, context, fallback }) // a first visit with no network still has values
