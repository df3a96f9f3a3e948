// Prints the figures of the last fault run (.cache/faults/<fault>.json, written by test/faults/) as
// the markdown table of docs/reliability.md: fault, load, invariants that must be 0, counted figures.
import { readdirSync, readFileSync } from "node:fs"

const dir = process.argv[2] ?? ".cache/faults"
const rows = readdirSync(dir)
  .filter((f) => /^\d.*\.json$/.test(f))
  .sort()
  .map((f) => JSON.parse(readFileSync(`${dir}/${f}`, "utf8")))
if (rows.length === 0) {
  console.error(`no figures in ${dir}: run npm run test:faults first`)
  process.exit(1)
}
const cell = (o) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(", ")
console.log("| fault | load | invariants (must be 0) | figures | mode, time |")
console.log("| --- | --- | --- | --- | --- |")
for (const r of rows) {
  const bad = Object.values(r.zero).some((n) => n !== 0)
  console.log(`| ${r.fault} | ${r.load} | ${cell(r.zero)}${bad ? " **NOT ALL 0**" : ""} | ${cell(r.counted)} | ${r.mode}, ${r.seconds} s |`)
}
const failing = rows.filter((r) => Object.values(r.zero).some((n) => n !== 0))
console.log(`\nfaults: ${rows.length - failing.length} passed, ${failing.length} failed`)
