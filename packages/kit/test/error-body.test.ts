import { errorBodyMessage } from '../src';

describe('errorBodyMessage', () => {
  it('when the body is a contract error body, then its message is returned', () => {
    const answer = { status: 409, body: { error: { code: 'conflict', message: 'task 1 is finished' } } };
    expect(errorBodyMessage(answer)).toBe('task 1 is finished');
    expect(errorBodyMessage(answer, 'master answered 409')).toBe('task 1 is finished');
  });

  it.each([
    undefined,
    null,
    '',
    'text',
    42,
    {},
    { error: null },
    { error: 'boom' },
    { error: { code: 'x' } },
    { error: { message: 7 } },
    { error: { message: '' } },
  ])('when the body is %j, then the status is told instead, or the fallback given', (body) => {
    expect(errorBodyMessage({ status: 502, body })).toBe('status 502');
    expect(errorBodyMessage({ status: 502, body }, 'master answered 502')).toBe('master answered 502');
  });
});
