/**
 * The DBOS responder process of the saga benchmark: launches DBOS listening only on the remote
 * step's queue and runs `benchRemote` for every enqueued request. Prints `ready` once launched;
 * SIGTERM shuts it down.
 *
 *   node --import tsx bench/dbos/Responder.ts <systemDatabaseUrl> <schema> <pollingMs>
 */
import { DBOS } from "@dbos-inc/dbos-sdk"
import { config, QUEUE } from "./Workflows.ts"

const [url, schema, polling] = process.argv.slice(2)
DBOS.setConfig(config(url!, schema!, [QUEUE]))
await DBOS.launch()
await DBOS.registerQueue(QUEUE, { minPollingIntervalMs: Number(polling ?? 50) })
console.log("ready")
const stop = () => void DBOS.shutdown().then(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
