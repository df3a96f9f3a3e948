import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import * as Lmdb from "../../src/lmdb/Lmdb.ts"
import { describePostgres, pgStorage } from "../support/Services.ts"
import { suite } from "./ProjectionSuite.ts"
import { suite as runnerSuite } from "./ProjectionRunnerSuite.ts"

const folder = fs.mkdtempSync(path.join(os.tmpdir(), "minos-projection-"))
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }))

suite("lmdb", Lmdb.layer({ path: folder }))
describePostgres("PostgreSQL", () => suite("postgres", pgStorage("pj")))

const folder2 = fs.mkdtempSync(path.join(os.tmpdir(), "minos-projection-runner-"))
afterAll(() => fs.rmSync(folder2, { recursive: true, force: true }))
runnerSuite("lmdb", Lmdb.layer({ path: folder2 }))
describePostgres("PostgreSQL runner", () => runnerSuite("postgres", pgStorage("pr")))
