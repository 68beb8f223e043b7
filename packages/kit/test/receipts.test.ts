import { StorageReceiptSchema, type StorageReceipt } from '@pixelmill/contracts';
import { deriveSigningKey, imageFactsOf, issueReceipt, receiptProblem, RECEIPT_TTL_MS, signObject } from '../src';

const KEY = deriveSigningKey('internal-token')!;
const SHA = 'ab'.repeat(32);
const FACTS = {
  state: 'finished' as const,
  key: 'task_1',
  size: 1234,
  sha256: SHA,
  contentType: 'image/png' as const,
  width: 300,
  height: 200,
};
const EXPECTED = { state: 'finished' as const, key: 'task_1' };

/** The same signature with one character changed. */
const flipped = (signature: string) => (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);

describe('storage receipts', () => {
  it('when a receipt is issued, then it fits the contract and vouches for its object until it expires', () => {
    const now = 1_000_000;
    const receipt = issueReceipt(FACTS, KEY, now);
    expect(StorageReceiptSchema.parse(receipt)).toEqual(receipt);
    expect(receipt.expires).toBe(now + RECEIPT_TTL_MS);
    expect(receiptProblem(receipt, EXPECTED, KEY, now + 1)).toBeUndefined();
    expect(receiptProblem(receipt, EXPECTED, KEY, receipt.expires)).toMatch(/expired/);
  });

  it.each<[string, (receipt: StorageReceipt) => StorageReceipt]>([
    ['a flipped signature', (r) => ({ ...r, signature: flipped(r.signature) })],
    ['an altered size', (r) => ({ ...r, size: r.size - 1 })],
    ['an altered checksum', (r) => ({ ...r, sha256: 'cd'.repeat(32) })],
    ['an altered type', (r) => ({ ...r, contentType: 'image/gif' })],
    ['altered dimensions', (r) => ({ ...r, width: 200, height: 300 })],
    ['a later expiry', (r) => ({ ...r, expires: r.expires + 1 })],
    ['another key', (r) => ({ ...r, key: 'task_2' })],
  ])('when a receipt has %s, then its signature does not match', (_name, alter) => {
    expect(receiptProblem(alter(issueReceipt(FACTS, KEY)), EXPECTED, KEY)).toMatch(/signature does not match/);
  });

  it('when a receipt is signed with another key, then it is refused', () => {
    expect(receiptProblem(issueReceipt(FACTS, deriveSigningKey('other-token')!), EXPECTED, KEY)).toMatch(/signature/);
  });

  it('when a genuine receipt names another object, then it does not vouch for the one expected', () => {
    const other = issueReceipt({ ...FACTS, key: 'task_2' }, KEY);
    expect(receiptProblem(other, EXPECTED, KEY)).toBe('the receipt is for finished/task_2, not finished/task_1');
    const source = issueReceipt({ ...FACTS, state: 'inProgress' }, KEY);
    expect(receiptProblem(source, EXPECTED, KEY)).toMatch(/inProgress\/task_1/);
  });

  it('when a signed URL signature is offered as a receipt signature, then it does not match', () => {
    const receipt = issueReceipt(FACTS, KEY);
    const urlSignature = signObject({ method: 'POST', state: 'finished', key: 'task_1', expires: receipt.expires }, KEY);
    expect(receiptProblem({ ...receipt, signature: urlSignature }, EXPECTED, KEY)).toMatch(/signature/);
  });

  it("when an image's head is read, then its type and declared dimensions come out; a head that says nothing gives nulls", () => {
    const png = Buffer.alloc(33);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png);
    png.writeUInt32BE(13, 8);
    png.write('IHDR', 12, 'latin1');
    png.writeUInt32BE(300, 16);
    png.writeUInt32BE(200, 20);
    expect(imageFactsOf(png)).toEqual({ contentType: 'image/png', width: 300, height: 200 });
    expect(imageFactsOf(png.subarray(0, 16))).toEqual({ contentType: 'image/png', width: null, height: null });
    expect(imageFactsOf(Buffer.from('not an image'))).toEqual({ contentType: null, width: null, height: null });
  });
});
