import { OwnerSchema } from '@pixelmill/contracts';
import { ApiKeys, ownerIdOf } from '../../src/domain/api-keys';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';

describe('API keys', () => {
  it('when no key is configured, then keys are off', () => {
    expect(new ApiKeys([]).enabled).toBe(false);
  });

  it('when a configured key is presented, then its owner id is answered; any other string gets none', () => {
    const keys = new ApiKeys([KEY_A, KEY_B]);

    expect(keys.enabled).toBe(true);
    expect(keys.ownerOf(KEY_A)).toBe(ownerIdOf(KEY_A));
    expect(keys.ownerOf(KEY_B)).toBe(ownerIdOf(KEY_B));
    expect(keys.ownerOf(`${KEY_A}x`)).toBeUndefined();
    expect(keys.ownerOf(KEY_A.slice(0, -1))).toBeUndefined();
    expect(keys.ownerOf('')).toBeUndefined();
  });

  it('derives an owner id that master accepts, is stable, differs per key and does not contain the key', () => {
    const owner = ownerIdOf(KEY_A);

    expect(OwnerSchema.safeParse(owner).success).toBe(true);
    expect(owner).toHaveLength(32);
    expect(ownerIdOf(KEY_A)).toBe(owner);
    expect(ownerIdOf(KEY_B)).not.toBe(owner);
    expect(owner).not.toContain(KEY_A);
    expect(owner).not.toContain('0123456789');
  });
});
