/**
 * The SDK is installed alone, never with the daemon (DESIGN.md §9): everything src/sdk/ loads at run
 * time (type-only imports vanish at compile time) stays within the SDK, the shared rules of model.ts
 * and the pure labels module, and imports no npm package.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const SRC = resolve('src');
const ALLOWED = new Set(['model.ts', 'variables/labels.ts']);

/** The specifiers a module loads at run time: `import ... from`, `export ... from`, but not `import type`. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) if (!m[1]) out.push(m[2] as string);
  for (const m of text.matchAll(/^import\s+'([^']+)'/gm)) out.push(m[1] as string);
  return out;
}

describe('sdk import graph', () => {
  it('loads nothing of the daemon and no npm package', () => {
    const seen = new Set<string>();
    const queue = [resolve(SRC, 'sdk/index.ts')];
    const outside: string[] = [];
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of runtimeImports(file)) {
        if (spec.startsWith('node:')) continue;
        if (!spec.startsWith('.')) {
          outside.push(`${relative(SRC, file)} → ${spec}`);
          continue;
        }
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        const rel = relative(SRC, target);
        if (!rel.startsWith('sdk/') && !ALLOWED.has(rel)) outside.push(`${relative(SRC, file)} → ${rel}`);
        else queue.push(target);
      }
    }
    expect(outside).to.deep.equal([]);
    expect([...seen].map((f) => relative(SRC, f))).to.include.members(['sdk/client.ts', 'sdk/codec.ts', 'variables/labels.ts']);
  });
});
