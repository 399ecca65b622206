import { expect } from 'chai';
import type { Var } from '../../../src/model.js';
import { inEffectVars, makeOverride, onVerify } from '../../../src/variables/overrides.js';
import { afterSend, pending } from '../../../src/variables/pending.js';
import { ALL, parseTarget, type DeviceView } from '../../../src/variables/target.js';

const v = (name: string, value: string, type = 'integer'): Var => ({ name, type, value });
const d: DeviceView = { deviceId: 'p1', labels: { platform: 'android' } };

describe('variables/pending', () => {
  it('is every override in effect the device was never sent', () => {
    expect(pending([v('a', '1'), v('b', '2')], new Map())).to.deep.equal([v('a', '1'), v('b', '2')]);
  });
  it('is nothing once everything in effect was sent', () => {
    const inEffect = [v('a', '1'), v('b', '2')];
    expect(pending(inEffect, afterSend(new Map(), inEffect))).to.deep.equal([]);
  });
  it('collapses per variable by construction: three edits while offline leave one pending value', () => {
    let overrides = [makeOverride(v('a', '1'), ALL, 'x', 1)];
    const sent = onVerify(d, overrides).lastSent;
    for (const [value, at] of [['2', 2], ['3', 3], ['4', 4]] as const) overrides = [makeOverride(v('a', value), ALL, 'x', at)];
    expect(pending(inEffectVars(d, overrides), sent)).to.deep.equal([v('a', '4')]);
  });
  it('an edit back to what was sent leaves nothing pending', () => {
    const sent = afterSend(new Map(), [v('a', '1')]);
    expect(pending([v('a', '1')], sent)).to.deep.equal([]);
  });
  it('a type change alone is pending', () => {
    expect(pending([v('a', '1', 'float')], afterSend(new Map(), [v('a', '1', 'integer')]))).to.deep.equal([v('a', '1', 'float')]);
  });
  it('a cleared override is pending as the game value it reported, when that differs from what it was sent', () => {
    const sent = afterSend(new Map(), [v('a', '9')]);
    expect(pending([], sent, [v('a', '1')])).to.deep.equal([v('a', '1')]);
    expect(pending([], sent, [v('a', '9')])).to.deep.equal([]);
  });
  it('a cleared override with no report has nothing to restore', () => {
    expect(pending([], afterSend(new Map(), [v('a', '9')]), [])).to.deep.equal([]);
  });
  it('a more specific override set later replaces the pending value of the broader one', () => {
    const overrides = [makeOverride(v('a', '1'), ALL, 'x', 1), makeOverride(v('a', '2'), parseTarget({ labels: 'platform=android' }), 'x', 2)];
    expect(pending(inEffectVars(d, overrides), new Map())).to.deep.equal([v('a', '2')]);
  });
  it('afterSend does not change its input', () => {
    const before = new Map([['a', v('a', '1')]]);
    const next = afterSend(before, [v('a', '2')]);
    expect(before.get('a')?.value).to.equal('1');
    expect(next.get('a')?.value).to.equal('2');
  });
});
