// Every test file gets a fresh in-memory IndexedDB implementation (Node has none of its own).
// Tests still give each client its own database name so no two tests share state.
import 'fake-indexeddb/auto'
