import { z } from 'zod';
import * as common from './common';
import { commonContract, IMAGE_TYPES, type ServiceName } from './common';
import * as frontend from './frontend';
import { API_KEY_HEADER, frontendContract } from './frontend';
import * as kv from './kv';
import { kvContract } from './kv';
import * as master from './master';
import { masterAdminContract, masterContract } from './master';
import { isBinary, isEmpty, type BodySpec, type Route, type RouteAuth } from './route';
import * as storage from './storage';
import { storageContract } from './storage';
import * as taskdb from './taskdb';
import { taskdbContract } from './taskdb';

/** A JSON Schema (2020-12) or another part of an OpenAPI document, as plain JSON. */
export type JsonObject = { [key: string]: unknown };

/** An OpenAPI 3.1 document: what this module writes of it. */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description?: string };
  tags: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, JsonObject>>;
  components: { schemas: Record<string, JsonObject>; securitySchemes: Record<string, JsonObject> };
}

/** The routes each server mounts besides the common ones (`/healthz`, `/readyz`, `/openapi.json`, `/metrics`). */
export const SERVICE_CONTRACTS: { readonly [S in ServiceName]: Readonly<Record<string, Route>> } = {
  kv: kvContract,
  taskdb: taskdbContract,
  storage: storageContract,
  master: { ...masterContract, ...masterAdminContract },
  frontend: frontendContract,
};

const SERVICE_DESCRIPTIONS: Record<ServiceName, string> = {
  kv: 'Configuration and service addresses (key → value). Internal: called by the services of the stack.',
  taskdb: 'Task records and their state machine, atomic work claims. Internal: called by master.',
  storage:
    'Image bytes, in inProgress/ (before the work) and finished/ (after it). Internal: called by master, ' +
    'and by workers through signed URLs.',
  master:
    "The front door for images (called by the frontend), the only door for workers, and the operators' door: " +
    'the admin routes under /admin (list tasks by state, retry, cancel, delete), behind the internal token.',
  frontend:
    'The public API: upload an image (`POST /newImage`), ask whether it is done (`GET /image/isReady`), ' +
    'download the result (`GET /image/get`). Errors are JSON: `{error: {code, message, details?}}`.',
};

const COMMON_TAG = { name: 'common', description: 'Routes every pixelmill server answers' };

const SECURITY_SCHEMES: Record<Exclude<RouteAuth, 'public'>, Record<string, JsonObject>> = {
  internal: {
    internalToken: {
      type: 'http',
      scheme: 'bearer',
      description: "The stack's INTERNAL_TOKEN; needed when the server is started with one.",
    },
  },
  worker: {
    workerToken: {
      type: 'http',
      scheme: 'bearer',
      description: 'WORKER_TOKEN (INTERNAL_TOKEN when no WORKER_TOKEN is set); needed when the server has one.',
    },
  },
  apiKey: {
    apiKey: {
      type: 'apiKey',
      in: 'header',
      name: API_KEY_HEADER,
      description: 'One of the API keys the frontend is started with (API_KEYS); with keys, each sees only its own images.',
    },
    apiKeyBearer: {
      type: 'http',
      scheme: 'bearer',
      description: 'The same API key, as `Authorization: Bearer <key>`.',
    },
  },
};

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  303: 'See Other',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

let schemaNames: ReadonlyMap<z.ZodType, string> | undefined;

/** Every `XxxSchema` the contract modules export becomes the component `Xxx` where it is a whole body. */
function nameOf(schema: z.ZodType): string | undefined {
  if (!schemaNames) {
    const names = new Map<z.ZodType, string>();
    for (const module of [common, kv, taskdb, storage, master, frontend] as Array<Record<string, unknown>>) {
      for (const [exported, value] of Object.entries(module)) {
        if (value instanceof z.ZodType && exported.endsWith('Schema') && !names.has(value)) {
          names.set(value, exported.slice(0, -'Schema'.length));
        }
      }
    }
    schemaNames = names;
  }
  return schemaNames.get(schema);
}

type Io = 'input' | 'output';

function jsonSchema(schema: z.ZodType, io: Io): JsonObject {
  // Requests are described as clients send them (before defaults and coercion), answers as they arrive.
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' });
  return rest;
}

const BINARY_SCHEMA: JsonObject = { type: 'string', format: 'binary' };
const imageContent = (): JsonObject =>
  Object.fromEntries(IMAGE_TYPES.map((type) => [type, { schema: { ...BINARY_SCHEMA, contentMediaType: type } }]));

/** Builds one service's document, collecting the named schemas it uses into its components. */
class DocumentBuilder {
  readonly schemas: Record<string, JsonObject> = {};
  readonly securitySchemes: Record<string, JsonObject> = {};

  /** @param answers the schemas the document's answers use: a request body that is one of them may need its own name. */
  constructor(private readonly answers: ReadonlySet<BodySpec>) {}

  /**
   * A named schema by reference, others inline. A schema that is both a request and an answer, and
   * reads differently as each (defaults, coercion), names its request form `XxxInput`.
   */
  schema(schema: z.ZodType, io: Io): JsonObject {
    const json = jsonSchema(schema, io);
    const name = nameOf(schema);
    if (name === undefined) return json;
    const distinct = io === 'input' && this.answers.has(schema) && JSON.stringify(json) !== JSON.stringify(jsonSchema(schema, 'output'));
    const key = distinct ? `${name}Input` : name;
    this.schemas[key] = json;
    return { $ref: `#/components/schemas/${key}` };
  }

  parameters(route: Route): JsonObject[] {
    const parts: Array<['path' | 'query' | 'header', z.ZodType | undefined]> = [
      ['path', route.params],
      ['query', route.query],
      ['header', route.headers],
    ];
    return parts.flatMap(([where, schema]) => {
      if (schema === undefined) return [];
      const json = jsonSchema(schema, 'input');
      const properties = json.properties as Record<string, JsonObject> | undefined;
      if (json.type !== 'object' || properties === undefined) {
        throw new Error(`${route.method} ${route.path}: the ${where} schema must be an object`);
      }
      const required = new Set((json.required as string[] | undefined) ?? []);
      return Object.entries(properties).map(([name, property]) => {
        const { description, ...propertySchema } = property;
        return {
          name,
          in: where,
          ...(description === undefined ? {} : { description }),
          required: where === 'path' || required.has(name),
          schema: propertySchema,
        };
      });
    });
  }

  requestBody(route: Route): JsonObject | undefined {
    if (route.body === undefined) return undefined;
    const content: JsonObject = isBinary(route.body)
      ? imageContent()
      : { 'application/json': { schema: this.schema(route.body, 'input') } };
    if (route.form) content['multipart/form-data'] = { schema: jsonSchema(route.form, 'input') };
    return { required: true, content };
  }

  response(status: number, spec: BodySpec): JsonObject {
    const description = STATUS_TEXT[status] ?? `HTTP ${status}`;
    if (isEmpty(spec)) return { description };
    if (isBinary(spec)) return { description, content: imageContent() };
    const schema = this.schema(spec, 'output');
    // A text answer names its media type in the schema (`contentMediaType`); everything else is JSON.
    const text = !('$ref' in schema) && schema.type === 'string';
    const mediaType = text ? ((schema.contentMediaType as string | undefined) ?? 'text/plain') : 'application/json';
    return { description, content: { [mediaType]: { schema } } };
  }

  security(auth: RouteAuth): JsonObject[] | undefined {
    if (auth === 'public') return undefined;
    const schemes = SECURITY_SCHEMES[auth];
    Object.assign(this.securitySchemes, schemes);
    return Object.keys(schemes).map((name) => ({ [name]: [] }));
  }

  operation(name: string, route: Route, tag: string): JsonObject {
    const auth = route.auth ?? 'public';
    const responses: Record<string, JsonObject> = {};
    for (const [status, spec] of Object.entries(route.responses)) responses[status] = this.response(Number(status), spec);
    // The router itself refuses a guarded route without its token, before the handler runs.
    if ((auth === 'internal' || auth === 'worker') && responses['401'] === undefined) {
      responses['401'] = this.response(401, common.ErrorBodySchema);
    }
    const parameters = this.parameters(route);
    const requestBody = this.requestBody(route);
    const security = this.security(auth);
    return {
      operationId: name,
      summary: route.summary,
      tags: [tag],
      ...(security ? { security } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses: Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b))),
    };
  }
}

/** Express's `/objects/:state/:key` as OpenAPI's `/objects/{state}/{key}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export interface OpenApiOptions {
  /** The server's name: the document's title and the tag of its own routes. */
  service: string;
  /** The routes it mounts besides the common ones. */
  contract: Readonly<Record<string, Route>>;
  /** The API's version, usually the contracts package's. */
  version: string;
  description?: string;
}

/**
 * The OpenAPI 3.1 document of a server that mounts the common routes and `contract`, generated
 * from the route definitions: summaries, parameters, bodies (image bodies as binary), every
 * answer by status, and the security each route asks for.
 */
export function createOpenApiDocument({ service, contract, version, description }: OpenApiOptions): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const routes: Array<[string, Route, string]> = [
    ...Object.entries(commonContract).map(([name, route]): [string, Route, string] => [name, route, COMMON_TAG.name]),
    ...Object.entries(contract).map(([name, route]): [string, Route, string] => [name, route, service]),
  ];
  const builder = new DocumentBuilder(new Set(routes.flatMap(([, route]) => Object.values(route.responses))));
  for (const [name, route, tag] of routes) {
    const path = openApiPath(route.path);
    const item = (paths[path] ??= {});
    const method = route.method.toLowerCase();
    if (item[method]) throw new Error(`${route.method} ${route.path} is defined twice`);
    item[method] = builder.operation(name, route, tag);
  }
  return {
    openapi: '3.1.0',
    info: { title: `pixelmill ${service}`, version, ...(description === undefined ? {} : { description }) },
    tags: [{ name: service }, COMMON_TAG],
    paths,
    components: { schemas: sortKeys(builder.schemas), securitySchemes: builder.securitySchemes },
  };
}

/** The document of one of pixelmill's servers. */
export function serviceOpenApiDocument(service: ServiceName, version: string): OpenApiDocument {
  return createOpenApiDocument({
    service,
    contract: SERVICE_CONTRACTS[service],
    version,
    description: SERVICE_DESCRIPTIONS[service],
  });
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
