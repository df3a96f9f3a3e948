// Prints vitest's JSON results as one plain line: "Tests: N passed, N failed, N skipped".
import { readFileSync } from "node:fs"

const file = process.argv[2] ?? ".cache/test-results.json"
const r = JSON.parse(readFileSync(file, "utf8"))
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
