import winston from 'winston';
import { currentRequestId } from './request-context';

export type Logger = winston.Logger;
export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'debug' | 'silent';

const addRequestId = winston.format((info) => {
  const requestId = currentRequestId();
  if (requestId && info.requestId === undefined) info.requestId = requestId;
  return info;
});

/** One JSON logger per process; every line carries the service and, inside a request, its id. */
export function createLogger(service: string, level: LogLevel = 'info'): Logger {
  return winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    defaultMeta: { service },
    format: winston.format.combine(
      addRequestId(),
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console()],
  });
}

/**
 * One line as the logger writes it, for the moments without a logger: a configuration refused,
 * a start that failed. Every line a service writes is then JSON, for a log collector to parse.
 */
export function formatLogLine(
  level: Exclude<LogLevel, 'silent'>,
  service: string,
  message: string,
  meta: Record<string, unknown> = {},
): string {
  return `${JSON.stringify({ level, message, service, ...meta, timestamp: new Date().toISOString() })}\n`;
}
