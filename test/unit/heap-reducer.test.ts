import { expect } from 'chai';
import { fullCollection, heapFigures, HeapReducer, type HeapFigures, type HeapReducerOptions } from '../../src/heap-reducer.js';

const MiB = 2 ** 20;

/** A reducer on a scripted heap, event loop and clock; `collect` drops the heap to `afterCollect`. */
function scripted(over: Partial<HeapReducerOptions> = {}) {
  const s = { heap: { committed: 50 * MiB, used: 20 * MiB } as HeapFigures, utilization: 0, now: 0, collections: 0, afterCollect: { committed: 60 * MiB, used: 40 * MiB } as HeapFigures };
  const r = new HeapReducer({
    checkMs: 1000,
    growthBytes: 32 * MiB,
    quietChecks: 2,
    quietUtilization: 0.25,
    minGapMs: 60_000,
    heap: () => s.heap,
    utilization: () => s.utilization,
    collect: () => {
      s.collections += 1;
      s.heap = s.afterCollect;
    },
    now: () => s.now,
    ...over,
  });
  return { s, r };
}

describe('HeapReducer', () => {
  it('collects once the heap grew past the threshold and the loop stayed quiet for the checks asked', () => {
    const { s, r } = scripted();
    s.heap = { committed: 250 * MiB, used: 200 * MiB };
    s.utilization = 0.9; // the storm
    expect(r.check()).to.equal(null);
    s.utilization = 0.05;
    expect(r.check()).to.equal(null); // one quiet check of two
    const got = r.check();
    expect(s.collections).to.equal(1);
    expect(got?.before.committed).to.equal(250 * MiB);
    expect(got?.after.committed).to.equal(60 * MiB);
  });

  it('leaves a busy process alone however big its heap', () => {
    const { s, r } = scripted();
    s.heap = { committed: 500 * MiB, used: 400 * MiB };
    s.utilization = 0.6;
    for (let i = 0; i < 10; i++) r.check();
    expect(s.collections).to.equal(0);
  });

  it('a busy check in between starts the quiet count again', () => {
    const { s, r } = scripted();
    s.heap = { committed: 250 * MiB, used: 200 * MiB };
    for (const u of [0.05, 0.9, 0.05]) {
      s.utilization = u;
      r.check();
    }
    expect(s.collections).to.equal(0);
    r.check();
    expect(s.collections).to.equal(1);
  });

  it('does nothing for growth under the threshold, counted from the lowest committed heap seen', () => {
    const { s, r } = scripted();
    s.heap = { committed: 81 * MiB, used: 30 * MiB }; // 31 MiB over start-up's 50
    for (let i = 0; i < 5; i++) r.check();
    expect(s.collections).to.equal(0);
    s.heap = { committed: 40 * MiB, used: 30 * MiB }; // V8 gave some back by itself
    r.check();
    s.heap = { committed: 73 * MiB, used: 30 * MiB }; // 33 over the new low
    r.check();
    expect(s.collections).to.equal(1);
  });

  it('counts the next growth from what the collection left, and keeps reductions minGapMs apart', () => {
    const { s, r } = scripted();
    s.heap = { committed: 250 * MiB, used: 200 * MiB };
    r.check();
    r.check();
    expect(s.collections).to.equal(1); // left 60 MiB
    s.heap = { committed: 90 * MiB, used: 80 * MiB }; // 30 over: not yet
    s.now = 120_000;
    r.check();
    r.check();
    expect(s.collections).to.equal(1);
    s.heap = { committed: 200 * MiB, used: 180 * MiB };
    s.now = 30_000; // within the gap of the first (at 0)
    r.check();
    r.check();
    expect(s.collections).to.equal(1);
    s.now = 60_000;
    r.check();
    r.check();
    expect(s.collections).to.equal(2);
  });

  it("fullCollection gives back a fragmented heap's half-empty pages (a plain full collection keeps them)", function () {
    this.timeout(60_000);
    const hadGc = 'gc' in globalThis;
    const collect = fullCollection();
    // Every fourth object kept: after the rest dies, each page is about a quarter full.
    let keep: Array<{ a: number; b: string; c: number[] }> = [];
    let junk: Array<{ a: number; b: string; c: number[] }> | null = [];
    for (let i = 0; i < 1_500_000; i++) (i % 4 === 0 ? keep : junk).push({ a: i, b: `x${i}`, c: [i, i + 1] });
    junk = null;
    collect(); // frees the garbage, and compacts
    const before = heapFigures();
    // Regrow the garbage and check against what a compacting collection leaves.
    junk = [];
    for (let i = 0; i < 1_500_000; i++) (i % 4 === 0 ? keep : junk).push({ a: i, b: `x${i}`, c: [i, i + 1] });
    keep = keep.filter((_, i) => i % 2 === 0);
    junk = null;
    const grown = heapFigures();
    collect();
    const after = heapFigures();
    expect(keep.length).to.equal(375_000);
    // Live data is about what `before` held; committed comes back near it instead of staying at `grown`.
    expect(grown.committed - before.committed).to.be.greaterThan(64 * MiB);
    expect(after.committed).to.be.lessThan(before.committed + (grown.committed - before.committed) / 2);
    if (!hadGc) expect('gc' in globalThis, 'gc() stays out of the global scope').to.equal(false);
  });
});
