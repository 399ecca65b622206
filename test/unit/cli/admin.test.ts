/** The admin tree as text: one actor per line, box-drawing indentation, hints for pages not shown. */
import { expect } from 'chai';
import { renderTree, type TreeNode } from '../../../src/cli/admin.js';

const now = 1_700_000_000_000;
const node = (path: string, extra: Partial<TreeNode> = {}): TreeNode => ({
  name: path.slice(path.lastIndexOf('/') + 1),
  path,
  kind: 'worker',
  status: 'running',
  restarts: 0,
  lastCrash: null,
  ...extra,
});

describe('cli/admin renderTree', () => {
  it('draws nested supervisors with status, restarts, last crash and child counts', () => {
    const tree = node('/observerio', {
      kind: 'supervisor',
      strategy: 'one_for_one',
      childCount: 2,
      counts: { running: 2 },
      children: [
        node('/observerio/store'),
        node('/observerio/tcp', {
          kind: 'supervisor',
          strategy: 'rest_for_one',
          restarts: 1,
          childCount: 2,
          counts: { running: 1, restarting: 1 },
          children: [node('/observerio/tcp/conns', { kind: 'supervisor', strategy: 'simple_one_for_one', childCount: 0, counts: {}, children: [] }), node('/observerio/tcp/listener', { status: 'restarting', restarts: 3, lastCrash: { reason: 'Error: boom\nat x', at: now - 65_000 } })],
        }),
      ],
    });
    expect(renderTree(tree, 50, now)).to.equal(
      [
        '/observerio  supervisor one_for_one  running  restarts 0  2 children (2 running)',
        '├─ store  worker  running  restarts 0',
        '└─ tcp  supervisor rest_for_one  running  restarts 1  2 children (1 running, 1 restarting)',
        '   ├─ conns  supervisor simple_one_for_one  running  restarts 0  0 children',
        '   └─ listener  worker  restarting  restarts 3  last crash 1m05s ago: Error: boom\\nat x',
        '',
      ].join('\n'),
    );
  });

  it('says how to page through the children it did not show', () => {
    const conns = (offset: number, shown: number, total: number): TreeNode =>
      node('/observerio/tcp/conns', {
        kind: 'supervisor',
        childCount: total,
        offset,
        truncated: true,
        children: Array.from({ length: shown }, (_, i) => node(`/observerio/tcp/conns/conn-${offset + i + 1}`)),
      });
    expect(renderTree(conns(0, 2, 1000), 2, now)).to.equal(
      [
        '/observerio/tcp/conns  supervisor  running  restarts 0  1,000 children',
        '├─ conn-1  worker  running  restarts 0',
        '├─ conn-2  worker  running  restarts 0',
        '└─ … 998 more: observerio admin tree --expand /observerio/tcp/conns --offset 2 --limit 2',
        '',
      ].join('\n'),
    );
    const middle = renderTree(conns(100, 50, 1000), 50, now).split('\n');
    expect(middle[1]).to.equal('├─ … 100 before these: observerio admin tree --expand /observerio/tcp/conns --offset 50');
    expect(middle.at(-2)).to.equal('└─ … 850 more: observerio admin tree --expand /observerio/tcp/conns --offset 150');
    // Cut by --depth: children counted but none listed.
    const cut = renderTree(node('/observerio/clients', { kind: 'supervisor', childCount: 3, counts: { running: 3 }, truncated: true, children: [] }), 50, now);
    expect(cut).to.contain('└─ … 3 not shown: observerio admin tree --expand /observerio/clients');
  });
});
