import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schedule } from "effect"
import { execFile } from "node:child_process"
import { binArgs } from "../support/Bin.ts"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Entity from "../../src/domain/Entity.ts"
import * as Repository from "../../src/command/Repository.ts"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import * as Projection from "../../src/projection/Projection.ts"
import * as ProjectionRunner from "../../src/projection/ProjectionRunner.ts"
import { Exam, examFields } from "../fixtures/Domain.ts"
import { examViews } from "../projection/Fixtures.ts"

const cli = (...args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number; out: string }>((resume) => {
    execFile(process.execPath, [...binArgs, ...args], (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (error.code as number) : 0, out: stdout + stderr }))
    })
  })

describe("effect-minos projections", () => {
  it.live("lists the projections of a service's store and requests a rebuild the service's follower carries out", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "projections-cli-"))
      const store = join(dir, "store")
      const file = join(dir, "config.yml")
      writeFileSync(file, `version: effect-minos/1\nservice:\n  name: exam\nstorage:\n  backend: lmdb\n  lmdb:\n    path: ${store}\n`)
      const views = examViews("ExamView")
      // the service: three exams, its follower registered and caught up
      const service = (body: Effect.Effect<void, unknown, any>) =>
        Effect.scoped(Effect.gen(function*() {
          yield* Layer.build(ProjectionRunner.layer([views], { pollIntervalMs: 20 }))
          yield* body
        }).pipe(Effect.provide(Lmdb.layer({ path: store }))))
      yield* service(Effect.gen(function*() {
        const repo = yield* Repository.make(Exam, { publish: false })
        for (let i = 0; i < 3; i++) {
          const { id, version } = yield* repo.create(Entity.create(examFields))
          yield* views.waitFor(id, version, 10_000)
        }
      }))

      const listed = yield* cli("projections", "list", file)
      assert.strictEqual(listed.code, 0, listed.out)
      assert.include(listed.out, "ExamView\tExam async/local\tgeneration 1")
      assert.include(listed.out, "lag 0\tparked 0\tdocuments 3")
      assert.include(listed.out, "1 projection(s)")

      const requested = yield* cli("projections", "rebuild", "ExamView", file, "--detach")
      assert.strictEqual(requested.code, 0, requested.out)
      assert.include(requested.out, "rebuild into generation 2 requested")
      assert.include((yield* cli("projections", "list", file)).out, "rebuilding g2: 0 event(s)")

      // the service runs again and carries it out
      yield* service(Effect.asVoid(Projection.stateOf("ExamView").pipe(
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: ({ state }) => state.generation === 2 }),
        Effect.timeout("20 seconds")
      )))
      const after = yield* cli("projections", "list", file)
      assert.include(after.out, "generation 2")
      assert.include(after.out, "documents 3")

      const unknown = yield* cli("projections", "rebuild", "Nope", file)
      assert.strictEqual(unknown.code, 1)
      assert.include(unknown.out, "No projection Nope")
    }), 180_000)
})
