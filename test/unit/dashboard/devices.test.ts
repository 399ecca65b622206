/** The devices list's order (src/dashboard/devices.ts): ids as people read them, numbers by value. */
import { expect } from 'chai';
import { byName, toDeviceView, type DeviceView } from '../../../src/dashboard/devices.js';

const view = (deviceId: string): DeviceView => toDeviceView({ deviceId, labels: {}, online: true, lastSeen: 0, lastAddress: null, strategy: null, pendingCount: 0, generated: false }) as DeviceView;

describe('dashboard device order', () => {
  it('sorts ids with numbers by value (many-9 before many-10), as localeCompare with numeric does', () => {
    const ids = ['many-10', 'many-9', 'many-100', 'Alpha', 'beta', 'many-1', 'sim-0', 'sim-999', 'sim-10'];
    const sorted = ids.map(view).sort(byName).map((d) => d.key);
    expect(sorted).to.deep.equal(['Alpha', 'beta', 'many-1', 'many-9', 'many-10', 'many-100', 'sim-0', 'sim-10', 'sim-999']);
    expect(sorted).to.deep.equal([...ids].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  });

});
