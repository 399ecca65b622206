/**
 * The hot routes' bodies read without zod (PUT /api/vars/:name, the WebSocket's set_var): what the
 * fast path accepts must be exactly what the schema accepts, as the schema gives it, and everything
 * else must be left to the schema (null), so each refusal keeps the schema's message.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { acceptPutVar, putVarSchema } from '../../../src/http/api/vars.js';
import { acceptSetVarFrame, clientFrameSchema } from '../../../src/http/ws.js';

/** Each body parsed from JSON text, as the routes get them. */
const bodies = (texts: string[]): unknown[] => texts.map((t) => JSON.parse(t) as unknown);

function agrees(accept: (v: unknown) => unknown, schema: z.ZodType, inputs: unknown[]): { accepted: number; left: number } {
  let accepted = 0;
  let left = 0;
  for (const v of inputs) {
    const fast = accept(v);
    const slow = schema.safeParse(v);
    const what = JSON.stringify(v)?.slice(0, 80);
    if (fast === null) {
      left += 1;
      continue;
    }
    accepted += 1;
    expect(slow.success, `the schema refuses what the fast path took: ${what}`).to.equal(true);
    expect(fast, what).to.deep.equal(slow.success ? slow.data : undefined);
  }
  return { accepted, left };
}

describe('PUT /api/vars/:name body without zod (acceptPutVar)', () => {
  const valid = bodies([
    '{"value":1}',
    '{"value":"x","type":"integer"}',
    '{"value":true,"type":"bool"}',
    '{"value":1.5,"target":{"devices":["a"]}}',
    '{"value":"","type":"t","target":null}',
    '{"value":"a\\u0001b","type":"x\\u0001y"}',
    `{"value":1,"type":"${'t'.repeat(32)}"}`,
    '{"target":{"labels":"platform=android"},"value":-0}',
  ]);
  const invalid = bodies([
    '{}',
    '[]',
    '[1]',
    'null',
    '1',
    '"x"',
    '{"value":null}',
    '{"value":{"a":1}}',
    '{"value":[1]}',
    '{"value":1,"type":""}',
    `{"value":1,"type":"${'t'.repeat(33)}"}`,
    '{"value":1,"type":5}',
    '{"value":1,"type":null}',
    '{"value":1,"apiKey":"x"}',
    '{"value":1,"__proto__":{"type":"x"}}',
    '{"value":1,"constructor":1}',
    '{"type":"integer"}',
  ]);

  it('accepts the valid bodies, exactly as the schema gives them', () => {
    expect(agrees(acceptPutVar, putVarSchema, valid)).to.deep.equal({ accepted: valid.length, left: 0 });
  });

  it('leaves every body the schema refuses to the schema', () => {
    for (const v of invalid) expect(putVarSchema.safeParse(v).success, JSON.stringify(v)).to.equal(false);
    expect(agrees(acceptPutVar, putVarSchema, invalid)).to.deep.equal({ accepted: 0, left: invalid.length });
  });
});

describe('set_var frame without zod (acceptSetVarFrame)', () => {
  const frames = bodies([
    '{"type":"set_var","name":"n","value":1}',
    '{"type":"set_var","name":"n","value":"x","varType":"integer","id":"req-1"}',
    '{"type":"set_var","name":"","value":false,"id":7}',
    `{"type":"set_var","name":"n","value":1,"id":"${'i'.repeat(64)}"}`,
    '{"type":"set_var","name":"n","value":1,"target":{"devices":["d"]},"id":-3}',
    '{"type":"set_var","name":"a\\u0001","value":1}',
  ]);
  const refused = bodies([
    '{"type":"set_var","name":"n"}',
    '{"type":"set_var","name":1,"value":1}',
    '{"type":"set_vars","name":"n","value":1}',
    '{"name":"n","value":1}',
    '{"type":"set_var","name":"n","value":{"a":1}}',
    '{"type":"set_var","name":"n","value":1,"apiKey":"x"}',
    '{"type":"set_var","name":"n","value":1,"varType":""}',
    '{"type":"set_var","name":"n","value":1,"varType":1}',
    `{"type":"set_var","name":"n","value":1,"id":"${'i'.repeat(65)}"}`,
    '{"type":"set_var","name":"n","value":1,"id":1.5}',
    '{"type":"set_var","name":"n","value":1,"id":9007199254740993}',
    '{"type":"set_var","name":"n","value":1,"id":null}',
    '{"type":"set_var","name":"n","value":1,"__proto__":{}}',
    '[{"type":"set_var","name":"n","value":1}]',
  ]);

  it('accepts the valid frames, exactly as the schema gives them', () => {
    expect(agrees(acceptSetVarFrame, clientFrameSchema, frames)).to.deep.equal({ accepted: frames.length, left: 0 });
  });

  it('leaves every frame the schema refuses to the schema', () => {
    for (const f of refused) expect(clientFrameSchema.safeParse(f).success, JSON.stringify(f)).to.equal(false);
    expect(agrees(acceptSetVarFrame, clientFrameSchema, refused)).to.deep.equal({ accepted: 0, left: refused.length });
  });

  it('gives the frame as sent, field for field', () => {
    expect(acceptSetVarFrame(frames[1])).to.deep.equal({ type: 'set_var', name: 'n', value: 'x', varType: 'integer', id: 'req-1' });
    expect(acceptSetVarFrame(frames[4])).to.deep.equal({ type: 'set_var', name: 'n', value: 1, target: { devices: ['d'] }, id: -3 });
    expect(acceptSetVarFrame(frames[0])).to.deep.equal({ type: 'set_var', name: 'n', value: 1 });
  });
});
