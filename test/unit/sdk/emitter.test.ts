import { expect } from 'chai';
import { TypedEmitter } from '../../../src/sdk/emitter.js';

interface Events {
  error: [err: Error];
  tick: [n: number, label: string];
}

class Probe extends TypedEmitter<Events> {
  readonly thrown: unknown[] = [];
  fire<K extends keyof Events>(event: K, ...args: Events[K]): boolean {
    return this.emit(event, ...args);
  }
  protected override onListenerError(_event: keyof Events, err: unknown): void {
    this.thrown.push(err);
  }
}

describe('sdk TypedEmitter', () => {
  it("does not throw for an 'error' event nobody listens to", () => {
    const e = new Probe();
    expect(e.fire('error', new Error('x'))).to.equal(false);
  });

  it('calls listeners in order with their arguments; once() only once; off() removes', () => {
    const e = new Probe();
    const seen: string[] = [];
    const a = (n: number, l: string): void => void seen.push(`a${n}${l}`);
    e.on('tick', a);
    e.once('tick', (n) => seen.push(`once${n}`));
    expect(e.fire('tick', 1, 'x')).to.equal(true);
    e.fire('tick', 2, 'y');
    e.off('tick', a);
    e.fire('tick', 3, 'z');
    expect(seen).to.deep.equal(['a1x', 'once1', 'a2y']);
    expect(e.listenerCount('tick')).to.equal(0);
  });

  it('keeps calling the other listeners when one throws and reports the exception', () => {
    const e = new Probe();
    const seen: number[] = [];
    e.on('tick', () => {
      throw new Error('boom');
    });
    e.on('tick', (n) => seen.push(n));
    e.fire('tick', 5, '');
    expect(seen).to.deep.equal([5]);
    expect((e.thrown[0] as Error).message).to.equal('boom');
  });
});
