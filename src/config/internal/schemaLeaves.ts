/**
 * Walks a Schema's encoded AST and lists its scalar leaves with their key paths, so environment
 * overrides can be derived from the same schema that validates the file (no second list to drift).
 */
import { SchemaAST } from "effect"

export type LeafKind = "string" | "number" | "boolean" | "string-list"

export interface Leaf {
  readonly path: ReadonlyArray<string>
  readonly kind: LeafKind
}

const kindOf = (ast: SchemaAST.AST): LeafKind | "object" | undefined => {
  switch (ast._tag) {
    case "String":
    case "TemplateLiteral":
      return "string"
    case "Number":
      return "number"
    case "Boolean":
      return "boolean"
    case "Literal":
      return typeof ast.literal === "number" ? "number" : typeof ast.literal === "boolean" ? "boolean" : "string"
    case "Objects":
      return ast.propertySignatures.length > 0 ? "object" : undefined
    case "Arrays": {
      const item = ast.rest[0]
      return item !== undefined && kindOf(item) === "string" ? "string-list" : undefined
    }
    case "Union": {
      const kinds = new Set(
        ast.types.filter((t) => t._tag !== "Undefined" && t._tag !== "Null").map((t) => kindOf(t))
      )
      // a union that accepts strings takes any environment value as text
      return kinds.size === 1 ? [...kinds][0] : kinds.has("object") ? "object" : kinds.has("string") ? "string" : undefined
    }
    default:
      return undefined
  }
}

const objectOf = (ast: SchemaAST.AST): SchemaAST.Objects | undefined => {
  if (ast._tag === "Objects") return ast
  if (ast._tag === "Union") {
    for (const t of ast.types) {
      const o = objectOf(t)
      if (o !== undefined) return o
    }
  }
  return undefined
}

/** Every scalar (or list-of-string) leaf reachable through nested structs. */
export const leaves = (ast: SchemaAST.AST, prefix: ReadonlyArray<string> = []): ReadonlyArray<Leaf> => {
  const encoded = SchemaAST.toEncoded(ast)
  const obj = objectOf(encoded)
  if (obj === undefined) return []
  const out: Array<Leaf> = []
  for (const ps of obj.propertySignatures) {
    if (typeof ps.name !== "string") continue
    const path = [...prefix, ps.name]
    const kind = kindOf(ps.type)
    if (kind === "object") out.push(...leaves(ps.type, path))
    else if (kind !== undefined) out.push({ path, kind })
  }
  return out
}
