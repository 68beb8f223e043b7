/**
 * The message of an answer's contract error body (`{ error: { code, message } }`), or `fallback`
 * (by default `status <n>`) when it carried none: for telling in a log or an error what another
 * service refused and why. Lenient on purpose (no schema): an answer outside its contract is
 * reported elsewhere, and any non-empty `error.message` string is worth passing on.
 */
export function errorBodyMessage(answer: { status: number; body: unknown }, fallback = `status ${answer.status}`): string {
  const { body } = answer;
  const error = isObject(body) ? body.error : undefined;
  const message = isObject(error) ? error.message : undefined;
  return typeof message === 'string' && message !== '' ? message : fallback;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
