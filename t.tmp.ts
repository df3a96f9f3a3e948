import { Schema } from "effect"
const ast = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })).ast as any
console.log(ast._tag, JSON.stringify(ast.checks?.map((c: any) => ({ tag: c._tag, ann: c.annotations })), null, 0).slice(0, 600))
