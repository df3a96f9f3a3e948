#!/usr/bin/env node
// The layout rules of src/ (docs/architecture.md), checked over the code's own imports:
//   - domain imports nothing of ours; shared helpers (errors, internal, query) import only domain
//     and each other; ports import only those and other ports; backends import ports and never
//     another backend; engines import ports and engines, never a backend or config; config imports
//     only shared code; only runtime (and the package index) imports config and backends;
//   - no import reaches into another folder's internal/ (src/internal/ is shared by all);
//   - no cycle between top-level folders;
//   - examples import the package by name, never a path into src/ nor an internal module;
//   - package.json exports no internal module at any depth.
// `node scripts/check-layout.mjs` prints the violations and exits 1 when there is one.
import { readFileSync, readdirSync, statSync } from "node:fs"
import { dirname, join, posix, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** Top-level folder of src/ → role. */
export const folderRoles = {
  domain: "pure",
  errors: "shared",
  internal: "shared",
  query: "shared",
  broker: "port",
  cluster: "port",
  eventstore: "port",
  queue: "port",
  readmodel: "port",
  snapshot: "port",
  storage: "port",
  transaction: "port",
  command: "engine",
  discovery: "engine",
  http: "engine",
  messaging: "engine",
  projection: "engine",
  router: "engine",
  saga: "engine",
  testing: "engine",
  kafka: "backend",
  lmdb: "backend",
  memory: "backend",
  postgres: "backend",
  config: "config",
  runtime: "runtime"
}

/** Port modules that sit in an engine's folder, beside the engine that uses them. */
export const fileRoles = {
  "saga/SagaStore.ts": "port"
}

const allowed = {
  pure: new Set(["pure"]),
  shared: new Set(["pure", "shared"]),
  port: new Set(["pure", "shared", "port"]),
  engine: new Set(["pure", "shared", "port", "engine"]),
  backend: new Set(["pure", "shared", "port"]),
  config: new Set(["pure", "shared"]),
  runtime: new Set(["pure", "shared", "port", "engine", "backend", "config", "runtime"]),
  index: new Set(["pure", "shared", "port", "engine", "backend", "config", "runtime"])
}

const importPattern = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g

/** The module specifiers a source text imports. */
export const importsOf = (text) => {
  const out = []
  for (const m of text.matchAll(importPattern)) out.push(m[1] ?? m[2])
  return out
}

const roleOf = (srcPath) => {
  if (!srcPath.includes("/")) return { folder: "", role: "index" }
  const folder = srcPath.split("/")[0]
  return { folder, role: fileRoles[srcPath] ?? folderRoles[folder] }
}

/** The folder an internal/ path is private to ("" for src/internal/ itself, shared by all). */
const internalOwner = (srcPath) => {
  const i = srcPath.split("/").indexOf("internal")
  return i < 0 ? undefined : srcPath.split("/").slice(0, i).join("/")
}

/**
 * Checks a set of files (paths relative to the repository root → text) and the package's exports
 * map; returns one line per violation.
 */
export const check = (files, exportsMap) => {
  const problems = []
  const edges = new Map()
  for (const [file, text] of files) {
    const inSrc = file.startsWith("src/")
    const inExamples = file.startsWith("examples/")
    if (!inSrc && !inExamples) continue
    for (const spec of importsOf(text)) {
      if (inExamples) {
        if (spec.startsWith(".")) {
          const target = posix.normalize(posix.join(posix.dirname(file), spec))
          if (!target.startsWith("examples/")) problems.push(`${file}: imports ${spec}; examples import the package by name (effect-minos/…)`)
        } else if (spec === "effect-minos" || spec.startsWith("effect-minos/")) {
          if (spec.split("/").includes("internal")) problems.push(`${file}: imports the internal module ${spec}`)
        }
        continue
      }
      if (!spec.startsWith(".")) continue
      const target = posix.normalize(posix.join(posix.dirname(file), spec))
      if (!target.startsWith("src/")) {
        problems.push(`${file}: imports ${spec}, outside src/`)
        continue
      }
      const from = file.slice(4)
      const to = target.slice(4)
      const owner = internalOwner(to)
      if (owner !== undefined && owner !== "" && !(from === owner || from.startsWith(owner + "/"))) {
        problems.push(`${file}: reaches into ${owner}/internal/ (${spec}); internal modules are private to their folder`)
      }
      const a = roleOf(from)
      const b = roleOf(to)
      if (a.role === undefined) problems.push(`${file}: the folder ${a.folder}/ has no role in scripts/check-layout.mjs`)
      if (b.role === undefined) continue
      if (a.role === undefined || a.folder === b.folder) continue
      if (!allowed[a.role].has(b.role)) {
        problems.push(`${file}: ${a.folder}/ (${a.role}) must not import ${b.folder}/ (${b.role}): ${spec}`)
      }
      if (a.folder !== "" && b.folder !== "") {
        if (!edges.has(a.folder)) edges.set(a.folder, new Map())
        if (!edges.get(a.folder).has(b.folder)) edges.get(a.folder).set(b.folder, file)
      }
    }
  }
  // cycles between top-level folders
  const state = new Map()
  const stack = []
  const visit = (node) => {
    state.set(node, "open")
    stack.push(node)
    for (const [next, via] of edges.get(node) ?? []) {
      if (state.get(next) === "open") {
        const cycle = stack.slice(stack.indexOf(next)).concat(next)
        problems.push(`folder cycle ${cycle.join(" → ")} (e.g. ${via})`)
      } else if (!state.has(next)) visit(next)
    }
    stack.pop()
    state.set(node, "done")
  }
  for (const node of [...edges.keys()].sort()) if (!state.has(node)) visit(node)
  // the exports map must not expose an internal module
  if (exportsMap !== undefined) {
    for (const file of files.keys()) {
      if (!file.startsWith("src/") || !file.split("/").includes("internal")) continue
      const subpath = "./" + file.slice(4).replace(/\.ts$/, "")
      const target = resolveExport(exportsMap, subpath)
      if (target !== null) problems.push(`package.json exports ${subpath} (→ ${target}); internal modules must not be exported`)
    }
  }
  return problems
}

/**
 * Node's subpath resolution over an exports map (exact keys, then the longest `*` pattern). A
 * conditional target picks its first key that is in `conditions` or is `default`, as Node does;
 * without `conditions` it picks the first key that resolves at all, so a subpath counts as exported
 * when any condition (types, the sources condition, default…) exposes it.
 */
export const resolveExport = (exportsMap, subpath, conditions) => {
  const pick = (value, star) => {
    if (value === null) return null
    if (typeof value === "string") return value.replaceAll("*", star ?? "")
    if (typeof value === "object") {
      for (const [condition, target] of Object.entries(value)) {
        if (conditions !== undefined && condition !== "default" && !conditions.includes(condition)) continue
        const resolved = pick(target, star)
        if (resolved !== null || conditions !== undefined) return resolved
      }
    }
    return null
  }
  if (Object.hasOwn(exportsMap, subpath)) return pick(exportsMap[subpath], undefined)
  let best
  for (const key of Object.keys(exportsMap)) {
    const star = key.indexOf("*")
    if (star < 0) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= prefix.length + suffix.length) {
      if (best === undefined || prefix.length > best.prefix.length) best = { key, prefix, suffix }
    }
  }
  if (best === undefined) return null
  return pick(exportsMap[best.key], subpath.slice(best.prefix.length, subpath.length - best.suffix.length))
}

const walk = (dir, root, out) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path, root, out)
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.set(relative(root, path).split("\\").join("/"), readFileSync(path, "utf8"))
  }
  return out
}

/** Reads src/ and examples/ of the repository at `root`. */
export const readTree = (root) => {
  const files = new Map()
  for (const top of ["src", "examples"]) walk(join(root, top), root, files)
  return files
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
  const problems = check(readTree(root), pkg.exports)
  for (const p of problems) console.error(`layout: ${p}`)
  if (problems.length > 0) {
    console.error(`layout: ${problems.length} violation(s) of the rules in docs/architecture.md`)
    process.exit(1)
  }
  console.log("layout: ok")
}
