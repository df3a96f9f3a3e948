/**
 * Gates the fault suite: it needs PostgreSQL's server binaries (for its private cluster) and the
 * Kafka brokers it is pointed at. Missing either, the suite is skipped, unless
 * MINOS_REQUIRE_SERVICES=1 (CI), where that is a failing test.
 */
import { describe, it } from "@effect/vitest"
import { existsSync, readdirSync } from "node:fs"
import { connect } from "node:net"
import { requireServices } from "../../support/Services.ts"
import * as Cluster from "./Cluster.ts"
import * as Topics from "./Topics.ts"

const answers = (address: string): Promise<boolean> =>
  new Promise((resolve) => {
    const [host, port] = address.split(":")
    const socket = connect({ host: host!, port: Number(port) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2_000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const pgBinaries = process.env["MINOS_PG_PRIVATE_BIN"] !== undefined ||
  (existsSync("/usr/lib/postgresql") && readdirSync("/usr/lib/postgresql").some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`)))
const kafkaUp = (await Promise.all(Topics.brokers.map(answers))).some((ok) => ok)

const missing = [
  ...(pgBinaries ? [] : ["PostgreSQL server binaries (/usr/lib/postgresql/<v>/bin)"]),
  ...(kafkaUp ? [] : [`Kafka at ${Topics.brokers.join(",")}`])
]

/** `describe` for a fault: runs when its servers can be had. */
export const describeFault = (name: string, body: () => void) => {
  if (missing.length === 0) describe(name, body)
  else if (requireServices) {
    describe(name, () => {
      it(`needs ${missing.join(" and ")}`, () => {
        throw new Error(`${missing.join(" and ")} required (MINOS_REQUIRE_SERVICES=1) but not available`)
      })
    })
  } else describe.skip(`${name} (${missing.join(", ")} not available)`, body)
}

const clusterUp = await Cluster.answers()

/** `describe` for a fault on the 3-broker cluster (`scripts/kafka.sh cluster up`). */
export const describeClusterFault = (name: string, body: () => void) => {
  const need = [...missing.filter((m) => !m.startsWith("Kafka")), ...(clusterUp ? [] : [`the Kafka cluster at ${Cluster.brokers.join(",")}`])]
  if (need.length === 0) describe(name, body)
  else if (requireServices) {
    describe(name, () => {
      it(`needs ${need.join(" and ")}`, () => {
        throw new Error(`${need.join(" and ")} required (MINOS_REQUIRE_SERVICES=1) but not available`)
      })
    })
  } else describe.skip(`${name} (${need.join(", ")} not available)`, body)
}
