/**
 * What one durable inbox claim costs on LMDB, raw: one `transactionSync` per claim (what our unit of
 * work does per consumed record) versus lmdb's asynchronous batched writes (`ifNoExists` + `put`:
 * concurrent writers share one commit and its fsync, which runs off the main thread).
 *
 *   node --conditions=effect-minos-source --import tsx bench/probe/LmdbCommitProbe.ts [claims=10000] [inFlight=16]
 */
import { open } from "lmdb"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const N = Number(process.argv[2] ?? 10_000)
const C = Number(process.argv[3] ?? 16)
const dir = mkdtempSync(join(tmpdir(), "lmdb-commit-probe-"))
const root = open({ path: dir, maxDbs: 32 })
const inbox = root.openDB<number, [string, string, string]>({ name: "inbox" })
const inboxage = root.openDB<true, [number, string, string, string]>({ name: "inboxage" })

let t = performance.now()
for (let i = 0; i < N; i++) {
  const key: [string, string, string] = ["g", "sync", String(i)]
  root.transactionSync(() => {
    if (inbox.get(key) !== undefined) return
    inbox.putSync(key, 1)
    inboxage.putSync([1, ...key], true)
  })
}
console.log(`transactionSync, one per claim: ${Math.round((N * 1000) / (performance.now() - t))} claims/s`)

t = performance.now()
let next = 0
await Promise.all(Array.from({ length: C }, async () => {
  while (next < N) {
    const key: [string, string, string] = ["g", "async", String(next++)]
    await inbox.ifNoExists(key, () => {
      inbox.put(key, 1)
      inboxage.put([1, ...key], true)
    })
  }
}))
console.log(`async batched writes, ${C} claims in flight: ${Math.round((N * 1000) / (performance.now() - t))} claims/s`)
await root.close()
rmSync(dir, { recursive: true, force: true })
