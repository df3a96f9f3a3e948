/**
 * Figures of one fault run: printed, and written to `.cache/faults/<fault>.json` for
 * `scripts/faults-table.mjs`, which turns a full run into the table of docs/reliability.md.
 */
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"

/** `full` for `npm run test:faults`; the CI subset runs smaller loads of the same faults. */
export const full = process.env["MINOS_FAULTS"] === "full"

/** `quick` in CI, `big` in a full run. */
export const scale = <A>(quick: A, big: A): A => (full ? big : quick)

export interface Figures {
  readonly fault: string
  readonly load: string
  /** Invariants that must be 0. */
  readonly zero: Readonly<Record<string, number>>
  /** Counted, not bounded (duplicates, restarts, statuses…). */
  readonly counted: Readonly<Record<string, number | string>>
  readonly seconds: number
}

export const write = (name: string, figures: Figures) =>
  Effect.sync(() => {
    mkdirSync(".cache/faults", { recursive: true })
    writeFileSync(`.cache/faults/${name}.json`, JSON.stringify({ ...figures, mode: full ? "full" : "quick", at: new Date().toISOString() }, null, 2))
    const line = (o: Readonly<Record<string, unknown>>) => Object.entries(o).map(([k, v]) => `${k}=${v}`).join(" ")
    console.log(`[faults] ${figures.fault} (${full ? "full" : "quick"}, ${figures.seconds} s): ${figures.load}\n  must be 0: ${line(figures.zero)}\n  counted:   ${line(figures.counted)}`)
  })
