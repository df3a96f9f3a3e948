import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { binArgs } from "../support/Bin.ts"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Inbox } from "../../src/queue/Inbox.ts"
import { Outbox } from "../../src/queue/Outbox.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"

const cli = (...args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number; out: string }>((resume) => {
    execFile(process.execPath, [...binArgs, ...args], (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (error.code as number) : 0, out: stdout + stderr }))
    })
  })

describe("effect-minos dead-letters", () => {
  it.live("lists the dead letters of a service's store and replays one through the outbox", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "dlq-cli-"))
      const store = join(dir, "store")
      const file = join(dir, "config.yml")
      writeFileSync(file, `version: effect-minos/1\nservice:\n  name: exam\nstorage:\n  backend: lmdb\n  lmdb:\n    path: ${store}\n`)
      const id = yield* Effect.scoped(Effect.gen(function*() {
        const inbox = yield* Inbox
        return yield* inbox.deadLetter({
          group: "exam", topic: "ExamCreated", key: "k", value: "{\"poison\":true}", headers: {},
          identifier: "m-1", error: "Boom: cannot handle", attempts: 3, firstFailedAt: 1, lastFailedAt: 2
        })
      }).pipe(Effect.provide(Lmdb.layer({ path: store }))))

      const listed = yield* cli("dead-letters", "list", file)
      assert.strictEqual(listed.code, 0, listed.out)
      assert.include(listed.out, `${id}\tExamCreated\t3 attempt(s)`)
      assert.include(listed.out, "1 dead letter(s)")

      const replayed = yield* cli("dead-letters", "replay", String(id), file)
      assert.strictEqual(replayed.code, 0, replayed.out)
      assert.include(replayed.out, `replayed ${id} to ExamCreated`)
      assert.include((yield* cli("dead-letters", "list", file)).out, "0 dead letter(s)")
      const pending = yield* Effect.scoped(Effect.flatMap(Outbox, (o) => o.pending).pipe(Effect.provide(Lmdb.layer({ path: store }))))
      assert.strictEqual(pending, 1)

      const missing = yield* cli("dead-letters", "replay", "999", file)
      assert.strictEqual(missing.code, 1)
      assert.include(missing.out, "No dead letter 999")
    }), 180_000)
})
