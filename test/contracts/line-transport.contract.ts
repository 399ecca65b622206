/**
 * The one LineTransport contract suite (CONVENTIONS.md §2): every transport a connection actor can
 * drive passes the same tests. `line-transport.test.ts` runs it against NetTransport over real
 * loopback sockets and against the in-memory transport the connection's unit tests use.
 */
import { expect } from 'chai';
import type { LineTransport } from '../../src/tcp/transport.js';
import { eventually } from '../helpers/eventually.js';

/** The device's end of the pipe, driven by the test. */
export interface Peer {
  send(text: string): void;
  /** Everything the peer has read so far. */
  received(): string;
  /** Stops and restarts reading, so that writes queue up. */
  stall(): void;
  resume(): void;
  /** Goes away abruptly (a reset), or with a normal close. */
  close(abrupt: boolean): void;
}

export interface Pair {
  transport: LineTransport;
  peer: Peer;
  dispose(): Promise<void> | void;
  /** What `remoteAddress` looks like; `host:port` unless the transport cannot know the port. */
  address?: RegExp;
  /**
   * `messages`: each `send` is one message whose lines end with it (a WebSocket), so a line is never
   * split over two sends; `stream` (the default): bytes, split anywhere (TCP).
   */
  framing?: 'stream' | 'messages';
}

export type PairFactory = () => Promise<Pair>;

interface Recorder {
  data: string[];
  closed: string[];
}

function listen(t: LineTransport): Recorder {
  const r: Recorder = { data: [], closed: [] };
  t.listen({ data: (chunk) => r.data.push(chunk.toString('utf8')), closed: (reason) => r.closed.push(reason) });
  return r;
}

export function lineTransportContract(name: string, factory: PairFactory): void {
  describe(`LineTransport contract: ${name}`, () => {
    let pair: Pair;
    beforeEach(async () => {
      pair = await factory();
    });
    afterEach(async () => {
      await pair.dispose();
    });

    it('delivers bytes sent before listen once listening, then the rest, in order', async () => {
      pair.peer.send('v:AAAAAAAAAAAA\n');
      await new Promise((r) => setTimeout(r, 10));
      const r = listen(pair.transport);
      if (pair.framing === 'messages') {
        pair.peer.send('i:AAAAAAAAAAAA:W10=\n');
      } else {
        pair.peer.send('i:AAAA');
        pair.peer.send('AAAAAAAA:W10=\n');
      }
      await eventually(() => expect(r.data.join('')).to.equal('v:AAAAAAAAAAAA\ni:AAAAAAAAAAAA:W10=\n'));
      expect(r.closed).to.deep.equal([]);
    });

    it('names the peer as host:port, also once closed', async () => {
      listen(pair.transport);
      const before = pair.transport.remoteAddress;
      expect(before).to.match(pair.address ?? /^.+:\d+$/);
      pair.peer.close(false);
      await eventually(() => expect(pair.transport.remoteAddress).to.equal(before));
    });

    it('writes reach the peer in order, corked ones once uncorked', async () => {
      listen(pair.transport);
      expect(pair.transport.write('OK\n')).to.equal(true);
      pair.transport.cork();
      pair.transport.write('v:a\n');
      pair.transport.write('v:b\n');
      pair.transport.uncork();
      await eventually(() => expect(pair.peer.received()).to.equal('OK\nv:a\nv:b\n'));
      await eventually(() => expect(pair.transport.buffered).to.equal(0));
    });

    it('reports backpressure and counts what the peer has not read, until it reads again', async () => {
      listen(pair.transport);
      pair.peer.stall();
      const block = 'x'.repeat(1024 * 1024 - 1) + '\n';
      const results: boolean[] = [];
      for (let i = 0; i < 16; i++) results.push(pair.transport.write(block));
      expect(results[15]).to.equal(false);
      await eventually(() => expect(pair.transport.buffered).to.be.greaterThan(0));
      pair.peer.resume();
      await eventually(() => expect(pair.peer.received().length).to.equal(16 * block.length), { timeoutMs: 10_000 });
      await eventually(() => expect(pair.transport.buffered).to.equal(0));
    });

    it('end() sends what was written, then reports closed once', async () => {
      const r = listen(pair.transport);
      pair.transport.write('e:verify_timeout:bye\n');
      pair.transport.end();
      await eventually(() => expect(r.closed).to.have.length(1));
      // A WebSocket reports its close as soon as the close frame is queued, before the peer read it.
      await eventually(() => expect(pair.peer.received()).to.equal('e:verify_timeout:bye\n'));
      expect(r.closed[0]).to.be.a('string');
    });

    it('destroy() reports closed once', async () => {
      const r = listen(pair.transport);
      pair.transport.destroy();
      pair.transport.destroy();
      await eventually(() => expect(r.closed).to.have.length(1));
      await new Promise((res) => setTimeout(res, 10));
      expect(r.closed).to.have.length(1);
    });

    it('reports a peer that goes away, with the error of an abrupt one, once', async () => {
      const r = listen(pair.transport);
      pair.peer.close(true);
      await eventually(() => expect(r.closed).to.have.length(1));
      expect(r.closed[0]).to.match(/^peer closed: \S+$/);
    });

    it('reports a peer gone before listen once listening', async () => {
      pair.peer.close(false);
      await new Promise((res) => setTimeout(res, 20));
      const r = listen(pair.transport);
      await eventually(() => expect(r.closed).to.deep.equal(['peer closed']));
    });

    it('calls the idle callback once nothing has moved for the given time', async () => {
      listen(pair.transport);
      let idle = 0;
      pair.transport.setIdleTimeout(30, () => (idle += 1));
      await eventually(() => expect(idle).to.equal(1));
      await new Promise((res) => setTimeout(res, 80));
      expect(idle).to.equal(1);
    });
  });
}
