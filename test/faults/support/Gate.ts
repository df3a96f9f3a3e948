/**
 * Gates the fault suite: it needs PostgreSQL's server binaries (for its private cluster) and the
 * 3-broker Kafka cluster (servers of its own, so faults disturb no other suite). Missing either, the
 * suite is skipped, unless MINOS_REQUIRE_SERVICES=1 (CI), where that is a failing test.
 */
import { describe, it } from "@effect/vitest"
import { existsSync, readdirSync } from "node:fs"
import { requireServices } from "../../support/Services.ts"
import * as Cluster from "./Cluster.ts"

const pgBinaries = process.env["MINOS_PG_PRIVATE_BIN"] !== undefined ||
  (existsSync("/usr/lib/postgresql") && readdirSync("/usr/lib/postgresql").some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`)))
const missing = pgBinaries ? [] : ["PostgreSQL server binaries (/usr/lib/postgresql/<v>/bin)"]

const clusterUp = await Cluster.answers()

/** `describe` for a fault: it needs the private PostgreSQL's binaries and the 3-broker cluster. */
export const describeClusterFault = (name: string, body: () => void) => {
  const need = [...missing, ...(clusterUp ? [] : [`the Kafka cluster at ${Cluster.brokers.join(",")} (bash scripts/kafka.sh cluster up)`])]
  if (need.length === 0) describe(name, body)
  else if (requireServices) {
    describe(name, () => {
      it(`needs ${need.join(" and ")}`, () => {
        throw new Error(`${need.join(" and ")} required (MINOS_REQUIRE_SERVICES=1) but not available`)
      })
    })
  } else describe.skip(`${name} (${need.join(", ")} not available)`, body)
}
