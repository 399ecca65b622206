/**
 * src/wire.ts is the one declaration of what crosses a process boundary. The type assertions here are
 * checked by `tsc -p tsconfig.json` (a drift between a producer and the wire is a compile error); the
 * tests below check at run time that the module stays type-only and that the dashboard takes nothing
 * of the daemon but types.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { ClientActors } from '../../src/clients/client-actors.js';
import type { Gateway } from '../../src/gateway/gateway.js';
import type { credentialsSchema } from '../../src/http/api/users.js';
import type { varValueSchema } from '../../src/http/api/vars.js';
import type { Status, TreeNode as RuntimeTreeNode, TreeOptions } from '../../src/otp/types.js';
import type { Var as SdkVar, VarValue as SdkVarValue } from '../../src/sdk/index.js';
import type * as Wire from '../../src/wire.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;
/** Compiles only when T is `true`. */
const holds = <T extends true>(): T | undefined => undefined;

// Producers speak the wire's types.
holds<Equal<Parameters<Gateway['publish']>[1], Wire.DashboardEvent>>();
holds<Equal<Awaited<ReturnType<ClientActors['change']>>, Wire.SetOverrideAnswer>>();
holds<Awaited<ReturnType<ClientActors['change']>> extends Wire.VarDelivery ? true : false>();
holds<Equal<z.infer<typeof varValueSchema>, Wire.VarValue>>();
holds<Equal<z.infer<typeof credentialsSchema>, Wire.Credentials>>();
holds<Equal<SdkVar, Wire.Var>>();
holds<Equal<SdkVarValue, Wire.VarValue>>();

// The tree the runtime builds is what /admin/tree promises, every status included.
holds<RuntimeTreeNode extends Wire.TreeNode ? true : false>();
holds<Equal<Exclude<keyof RuntimeTreeNode, keyof Wire.TreeNode>, never>>();
holds<Equal<Wire.NodeStatus, Status>>();
holds<'starting' extends Wire.NodeStatus ? true : false>();
holds<Equal<Wire.TreeQuery, TreeOptions>>();

// One tag, one shape, for every event on a key's channels; the answer's tag is not one of them.
type Tag = Wire.DashboardEvent['type'];
holds<Equal<{ [T in Tag]: IsUnion<Extract<Wire.DashboardEvent, { type: T }>> }[Tag], false>>();
holds<Equal<Extract<Wire.DashboardEvent, { type: 'var_delivery' }>, never>>();
holds<Equal<Extract<Wire.WsServerFrame, { type: 'delivery' }>, Wire.DeliveryEvent>>();
// The old tag names the answer and the deprecated copy of the event, nothing else.
holds<Equal<Extract<Wire.WsServerFrame, { type: 'var_delivery' }>, Wire.SetVarAnswer | Wire.LegacyDeliveryEvent>>();
holds<Equal<Omit<Wire.LegacyDeliveryEvent, 'type'>, Omit<Wire.DeliveryEvent, 'type'>>>();

const here = fileURLToPath(new URL('.', import.meta.url));
const src = join(here, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : []));
}

/** `import`/`export ... from` statements, with what they import and from where. */
function importsOf(text: string): Array<{ statement: string; from: string }> {
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)';/gms)].map((m) => ({ statement: m[0], from: m[1] as string }));
}

describe('src/wire.ts', () => {
  it('exports nothing at run time', async () => {
    const mod: Record<string, unknown> = await import('../../src/wire.js');
    expect(Object.keys(mod)).to.deep.equal([]);
  });

  it('has only type imports, type exports and declarations', () => {
    const text = readFileSync(join(src, 'wire.ts'), 'utf8');
    for (const { statement } of importsOf(text)) expect(statement, statement).to.match(/^(import|export) type /);
    const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    const topLevel = code.split('\n').filter((l) => /^\S/.test(l) && !/^}/.test(l));
    for (const line of topLevel) expect(line, line).to.match(/^(import type|export type|export interface|type|interface) /);
  });

  it('is where the dashboard takes the daemon from: types only, never code', () => {
    const dashboard = join(src, 'dashboard');
    const outside = sources(dashboard).flatMap((file) =>
      importsOf(readFileSync(file, 'utf8'))
        .filter(({ from }) => from.startsWith('.') && !join(file, '..', from).startsWith(dashboard + '/'))
        .map(({ statement, from }) => ({ file: file.slice(src.length + 1), statement, from })),
    );
    expect(outside.length, 'the dashboard reads the wire types').to.be.greaterThan(0);
    for (const i of outside) {
      expect(i.statement, i.file).to.match(/^import type /);
      expect(i.from, `${i.file} imports the daemon's shapes from wire.ts`).to.match(/\/wire\.js$/);
    }
  });
});
