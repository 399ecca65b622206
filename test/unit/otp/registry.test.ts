import { expect } from 'chai';
import { AlreadyRegistered, dynamicSupervisor, Registry, type Runtime } from '../../../src/otp/index.js';
import { eventually } from '../../helpers/eventually.js';
import { counter, startTree, sup } from './helpers.js';

describe('otp/registry', () => {
  let rt: Runtime;
  beforeEach(async () => {
    rt = await startTree(sup('root', { strategy: 'one_for_one' }, [{ id: 'dyn', start: dynamicSupervisor({}) }]));
  });
  afterEach(() => rt.stop());

  const child = (id: string) => rt.dynamicSupervisor('/root/dyn').startChild(counter(id, [], { restart: 'transient' }));

  describe('unique keys', () => {
    it('holds one actor per key', async () => {
      const reg = new Registry<string>('clients', 'unique');
      const a = await child('a');
      const b = await child('b');
      reg.register('k', a, 'va');
      expect(() => reg.register('k', b, 'vb')).to.throw(AlreadyRegistered);
      expect(reg.whereis('k')?.value).to.equal('va');
      reg.register('k', a, 'va2');
      expect(reg.lookup('k')).to.have.length(1);
      expect(reg.whereis('k')?.value).to.equal('va2');
    });
  });

  describe('duplicate keys', () => {
    it('holds many actors per key', async () => {
      const reg = new Registry<number>('sockets', 'duplicate');
      const a = await child('a');
      const b = await child('b');
      reg.register('k', a, 1);
      reg.register('k', b, 2);
      expect(reg.lookup('k').map((e) => e.value).sort()).to.deep.equal([1, 2]);
      expect(reg.countKey('k')).to.equal(2);
      const seen: number[] = [];
      reg.forEachValue('k', (v) => seen.push(v));
      reg.forEachValue('none', (v) => seen.push(v));
      expect(seen).to.deep.equal([1, 2]);
      expect(reg.unregister('k', a)).to.equal(true);
      expect(reg.lookup('k').map((e) => e.value)).to.deep.equal([2]);
    });
  });

  describe('by id', () => {
    it('finds a value by its id under its key only, follows a new value, and forgets it with its actor', async () => {
      const reg = new Registry<{ id: string; n: number }>('sockets', 'duplicate', { id: (v) => v.id });
      const a = await child('a');
      const b = await child('b');
      reg.register('k', a, { id: 'x', n: 1 });
      reg.register('k', b, { id: 'y', n: 2 });
      expect(reg.get('k', 'x')?.n).to.equal(1);
      expect(reg.get('k', 'y')?.n).to.equal(2);
      expect(reg.get('other', 'x')).to.equal(undefined);
      expect(reg.get('k', 'z')).to.equal(undefined);
      // The same actor registering again replaces its value, and the index with it.
      reg.register('k', a, { id: 'x2', n: 3 });
      expect(reg.get('k', 'x')).to.equal(undefined);
      expect(reg.get('k', 'x2')?.n).to.equal(3);
      expect(reg.unregister('k', b)).to.equal(true);
      expect(reg.get('k', 'y')).to.equal(undefined);
      await rt.dynamicSupervisor('/root/dyn').terminateChild('a');
      expect(reg.get('k', 'x2')).to.equal(undefined);
      expect(reg.size).to.equal(0);
    });

    it('finds by id without a scan of the key’s entries', async () => {
      let idReads = 0;
      const reg = new Registry<{ id: string }>('sockets', 'duplicate', { id: (v) => ((idReads += 1), v.id) });
      const refs = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(child));
      refs.forEach((ref, i) => reg.register('k', ref, { id: `c-${i}` }));
      idReads = 0;
      for (let i = 0; i < 5; i++) expect(reg.get('k', `c-${i}`)?.id).to.equal(`c-${i}`);
      expect(reg.get('k', 'missing')).to.equal(undefined);
      // A scan would read an id per entry it passes; the index reads none.
      expect(idReads).to.equal(0);
    });

    it('refuses get on a registry made without an id', () => {
      const reg = new Registry<number>('plain', 'duplicate');
      expect(() => reg.get('k', 'x')).to.throw(/no id index/);
    });
  });

  describe('by group', () => {
    it('lists a key’s values of one group in registration order, follows a new value, and forgets them with their actors', async () => {
      const reg = new Registry<{ dev: string; n: number }>('sockets', 'duplicate', { group: (v) => v.dev });
      const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(child));
      reg.register('k', a!, { dev: 'd1', n: 1 });
      reg.register('k', b!, { dev: 'd2', n: 2 });
      reg.register('k', c!, { dev: 'd1', n: 3 });
      reg.register('other', b!, { dev: 'd1', n: 4 });
      expect(reg.inGroup('k', 'd1').map((v) => v.n)).to.deep.equal([1, 3]);
      expect(reg.inGroup('k', 'd2').map((v) => v.n)).to.deep.equal([2]);
      expect(reg.inGroup('k', 'none')).to.deep.equal([]);
      expect(reg.inGroup('nokey', 'd1')).to.deep.equal([]);
      // A new value of the same actor moves it to its new group.
      reg.register('k', c!, { dev: 'd2', n: 5 });
      expect(reg.inGroup('k', 'd1').map((v) => v.n)).to.deep.equal([1]);
      expect(reg.inGroup('k', 'd2').map((v) => v.n)).to.deep.equal([2, 5]);
      expect(reg.unregister('k', b!)).to.equal(true);
      expect(reg.inGroup('k', 'd2').map((v) => v.n)).to.deep.equal([5]);
      expect(reg.inGroup('other', 'd1').map((v) => v.n)).to.deep.equal([4]);
      await rt.dynamicSupervisor('/root/dyn').terminateChild('a');
      expect(reg.inGroup('k', 'd1')).to.deep.equal([]);
    });

    it('finds a group without a scan of the key’s other entries', async () => {
      let groupReads = 0;
      const reg = new Registry<{ dev: string }>('sockets', 'duplicate', { group: (v) => ((groupReads += 1), v.dev) });
      const refs = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(child));
      refs.forEach((ref, i) => reg.register('k', ref, { dev: `d-${i}` }));
      groupReads = 0;
      for (let i = 0; i < 5; i++) expect(reg.inGroup('k', `d-${i}`)).to.deep.equal([{ dev: `d-${i}` }]);
      expect(groupReads).to.equal(0);
    });

    it('refuses inGroup on a registry made without a group', () => {
      const reg = new Registry<number>('plain', 'duplicate');
      expect(() => reg.inGroup('k', 'x')).to.throw(/no group index/);
    });
  });

  describe('clean-up', () => {
    it('drops an entry when its actor stops', async () => {
      const reg = new Registry<number>('sockets', 'duplicate');
      const a = await child('a');
      const b = await child('b');
      reg.register('k', a, 1);
      reg.register('k', b, 2);
      await rt.dynamicSupervisor('/root/dyn').terminateChild('a');
      expect(reg.lookup('k').map((e) => e.value)).to.deep.equal([2]);
      b.send({ kind: 'exit' });
      await eventually(() => expect(reg.lookup('k')).to.deep.equal([]));
      expect(reg.size).to.equal(0);
      expect(reg.keysList()).to.deep.equal([]);
    });

    it('drops an entry when its actor crashes and restarts (a new incarnation must register again)', async () => {
      const reg = new Registry<number>('clients', 'unique');
      const a = await child('a');
      reg.register('k', a, 1);
      a.send({ kind: 'crash', why: 'x' });
      await eventually(() => expect(reg.whereis('k')).to.equal(undefined));
      reg.register('k', a, 2);
      expect(reg.whereis('k')?.value).to.equal(2);
    });

    it('keeps an entry registered untilStopped through crash-restarts, and drops it when the actor stops for good', async () => {
      const reg = new Registry<number>('sockets', 'duplicate', { id: (v) => String(v) });
      const a = await child('a');
      const b = await child('b');
      reg.register('k', a, 1, { untilStopped: true });
      reg.register('k', b, 2);
      a.send({ kind: 'crash', why: 'x' });
      b.send({ kind: 'crash', why: 'y' });
      await eventually(() => expect(rt.find(a.path)?.restarts).to.equal(1));
      await eventually(() => expect(reg.lookup('k').map((e) => e.value)).to.deep.equal([1]));
      expect(reg.get('k', '1')).to.equal(1);
      await rt.dynamicSupervisor('/root/dyn').terminateChild('a');
      expect(reg.lookup('k')).to.deep.equal([]);
      expect(reg.size).to.equal(0);
    });

    it('never registers an already-dead actor', async () => {
      const reg = new Registry<number>('clients', 'unique');
      const a = await child('a');
      await rt.dynamicSupervisor('/root/dyn').terminateChild('a');
      reg.register('k', a, 1);
      await eventually(() => expect(reg.whereis('k')).to.equal(undefined));
    });
  });
});
