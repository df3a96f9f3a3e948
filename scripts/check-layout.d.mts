export declare const folderRoles: Readonly<Record<string, string>>
export declare const importsOf: (text: string) => Array<string>
export declare const check: (files: ReadonlyMap<string, string>, exportsMap?: Readonly<Record<string, unknown>>) => Array<string>
export declare const resolveExport: (exportsMap: Readonly<Record<string, unknown>>, subpath: string, conditions?: ReadonlyArray<string>) => string | null
export declare const readTree: (root: string) => Map<string, string>
