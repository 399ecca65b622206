import { expect } from 'chai';
import { BoundedQueue } from '../../../src/sdk/bounded-queue.js';

describe('sdk BoundedQueue', () => {
  it('is FIFO', () => {
    const q = new BoundedQueue<number>(10);
    for (let i = 0; i < 5; i++) q.push(i);
    expect(q.length).to.equal(5);
    expect(q.peek()).to.equal(0);
    expect([q.shift(), q.shift()]).to.deep.equal([0, 1]);
    expect(q.length).to.equal(3);
  });

  it('drops the oldest when full and counts them', () => {
    const q = new BoundedQueue<number>(3);
    for (let i = 0; i < 10; i++) q.push(i);
    expect(q.dropped).to.equal(7);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).to.deep.equal([7, 8, 9, undefined]);
  });

  it('stays correct across internal compaction', () => {
    const q = new BoundedQueue<number>(100);
    for (let i = 0; i < 50_000; i++) q.push(i);
    expect(q.length).to.equal(100);
    expect(q.dropped).to.equal(49_900);
    expect(q.peek()).to.equal(49_900);
  });

  it('with capacity 0 keeps nothing', () => {
    const q = new BoundedQueue<number>(0);
    q.push(1);
    expect([q.length, q.dropped]).to.deep.equal([0, 1]);
  });
});
