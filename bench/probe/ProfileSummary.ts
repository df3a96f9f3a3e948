/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by area (GC, idle, Effect's runtime,
 * @effect/sql-pg, node's net/http internals, lmdb, our src/ by folder, …) and the top functions by
 * self time, as shares of the sampled time.
 *
 *   node --conditions=effect-minos-source --import tsx bench/probe/ProfileSummary.ts <file.cpuprofile> [top=25] [skipMs=0] [operations]
 *
 * `skipMs` leaves out the first milliseconds of the profile (a server's start-up); with
 * `operations` the busy time is also given per operation.
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly startTime: number
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** The area a frame belongs to, from its script URL. */
export const areaOf = (frame: CallFrame): string => {
  const f = frame.functionName
  const url = frame.url.replace(`file://${process.cwd()}/`, "")
  if (f === "(garbage collector)") return "GC"
  if (f === "(idle)") return "idle"
  if (f === "(program)") return "program (V8/native, unattributed)"
  if (url === "") return `native: ${f || "(anonymous)"}`.slice(0, 60)
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) {
    const name = pkg[1]!
    if (name === "effect") {
      const m = /effect\/(?:src|dist)\/(?:internal\/)?([^/.]+)/.exec(url)
      return `effect/${m?.[1] ?? "?"}`
    }
    return name
  }
  if (url.startsWith("node:")) {
    const m = /^node:(?:internal\/)?([^/]+)/.exec(url)
    return `node:${m?.[1] ?? url}`
  }
  const src = /^(src|bench|examples|test)\/(.+)\.ts/.exec(url)
  if (src) return `${src[1]}/${src[2]!.includes("/") ? src[2]!.split("/")[0] : src[2]}`
  return url.replace(/^file:\/\//, "").slice(-50)
}

/** A coarse concern for an area: what an optimisation would target. */
export const concernOf = (area: string, frame: CallFrame): string => {
  const f = frame.functionName
  if (area === "GC") return "GC"
  if (area.startsWith("native: ")) {
    if (/^(writev|writeBuffer|writeUtf8String|writeLatin1String|writeAsciiString)$/.test(f)) return "socket/file writes (syscalls)"
    if (f === "consoleCall") return "logging"
    return "other native"
  }
  if (area === "node:console" || area === "node:util" || area === "effect/Logger" || area === "effect/Console" || /Logger|logger/.test(f)) return "logging"
  if (/^(effect\/http|effect\/Http|@effect\/platform-node|node:_http|node:http|src\/http|src\/router|bench\/http)/.test(area) || area.startsWith("effect/HttpServer")) return "HTTP stack"
  if (/^effect\/(Schema|schema|SchemaAST|SchemaParser|SchemaGetter|SchemaIssue|SchemaTransformation|SchemaUtils)/.test(area)) return "Schema (decode/encode)"
  if (area === "@effect/sql-pg" || area === "effect/sql" || area.startsWith("pg") || area === "pg-protocol") return "SQL driver"
  if (area === "lmdb" || area === "msgpackr" || area === "ordered-binary" || area === "src/lmdb") return "LMDB"
  if (area === "kafkajs" || area === "@platformatic/kafka" || area === "src/kafka") return "Kafka client"
  if (area.startsWith("effect/")) return "Effect runtime (fibers, context, pipe)"
  if (area.startsWith("src/") || area.startsWith("examples/")) return `our code (${area})`
  if (area.startsWith("node:")) return "node (other: net, streams, timers, modules)"
  return area
}

export const summarise = (profile: Profile, top = 25, skipMs = 0, operations = 0) => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parentOf = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  // an anonymous native frame (an addon's function, e.g. lmdb's commit) is named after its JS caller
  const frameOf = (id: number): CallFrame => {
    const frame = byId.get(id)!.callFrame
    if (frame.url !== "" || frame.functionName !== "") return frame
    const parent = parentOf.get(id)
    if (parent === undefined) return frame
    const caller = byId.get(parent)!.callFrame
    return { functionName: `(native, called by ${caller.functionName || "(anonymous)"})`, url: caller.url, lineNumber: caller.lineNumber }
  }
  const self = new Map<number, number>()
  let total = 0
  let at = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (at < skipMs * 1000) return
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
  })
  const areas = new Map<string, number>()
  const concerns = new Map<string, number>()
  const functions = new Map<string, number>()
  for (const [id, us] of self) {
    const frame = frameOf(id)
    const area = areaOf(frame)
    areas.set(area, (areas.get(area) ?? 0) + us)
    if (area !== "idle") {
      const concern = concernOf(area, frame)
      concerns.set(concern, (concerns.get(concern) ?? 0) + us)
    }
    const file = frame.url.replace(`file://${process.cwd()}/`, "").replace(/^.*\/node_modules\//, "")
    const key = `${frame.functionName || "(anonymous)"}  ${file}:${frame.lineNumber + 1}`
    functions.set(key, (functions.get(key) ?? 0) + us)
  }
  const busy = total - (areas.get("idle") ?? 0)
  const pct = (us: number, of: number) => `${((100 * us) / Math.max(of, 1)).toFixed(1)}%`
  const lines: Array<string> = []
  lines.push(`sampled ${(total / 1e6).toFixed(2)} s, busy (not idle) ${(busy / 1e6).toFixed(2)} s; shares below are of the busy time`)
  if (operations > 0) lines.push(`${operations} operations: ${(busy / operations / 1000).toFixed(3)} ms busy per operation`)
  lines.push("", "self time by concern:")
  for (const [concern, us] of [...concerns].sort((a, b) => b[1] - a[1])) {
    lines.push(`  ${pct(us, busy).padStart(6)}  ${operations > 0 ? `${(us / operations / 1000).toFixed(3)} ms/op  ` : ""}${concern}`)
  }
  lines.push("", "self time by area:")
  for (const [area, us] of [...areas].filter(([a]) => a !== "idle").sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${pct(us, busy).padStart(6)}  ${area}`)
  }
  lines.push("", "top functions by self time:")
  for (const [key, us] of [...functions].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${pct(us, busy).padStart(6)}  ${key}`)
  }
  return lines.join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, skip, ops] = process.argv.slice(2)
  if (file === undefined) {
    console.error("usage: node --conditions=effect-minos-source --import tsx bench/probe/ProfileSummary.ts <file.cpuprofile> [top]")
    process.exit(2)
  }
  console.log(summarise(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(top ?? 25), Number(skip ?? 0), Number(ops ?? 0)))
}
