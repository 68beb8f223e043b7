/** The message of a contract error body, or the bare status when the answer carried none. */
export function refusalMessage(result: { status: number; body: unknown }): string {
  const body = result.body as { error?: { message?: string } } | undefined;
  return body?.error?.message ?? `status ${result.status}`;
}
