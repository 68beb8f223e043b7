/** A route as `METHOD /express/:path`, e.g. `GET /objects/:state/:key`. */
export type RouteKey = string;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

interface RouterLike {
  stack: LayerLike[];
}
interface LayerLike {
  route?: { path: unknown; methods: Record<string, boolean | undefined> };
  handle?: unknown;
  match?: (path: string) => boolean;
}

const isRouter = (value: unknown): value is RouterLike =>
  (typeof value === 'function' || typeof value === 'object') && value !== null && Array.isArray((value as RouterLike).stack);

/**
 * The routes an Express 5 app (or router) mounts, read from its router stack: each route's
 * method and path, in the nested routers mounted at the root too. `all()` routes (the 405
 * answers of known paths) and plain middleware (static files) are not routes of the API.
 */
export function mountedRoutes(app: unknown): RouteKey[] {
  const root = (app as { router?: unknown }).router ?? app;
  if (!isRouter(root)) throw new Error('not an Express 5 app or router: no router stack');
  const found = new Set<RouteKey>();
  const walk = (router: RouterLike): void => {
    for (const layer of router.stack) {
      if (layer.route) {
        if (typeof layer.route.path !== 'string') throw new Error(`a route path that is not a string: ${String(layer.route.path)}`);
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== '_all') found.add(`${method.toUpperCase()} ${layer.route.path}`);
        }
      } else if (isRouter(layer.handle)) {
        // A router mounted under a prefix would need the prefix, which Express does not keep.
        if (!layer.match?.('/')) throw new Error('a router mounted under a path prefix: its routes cannot be read');
        walk(layer.handle);
      }
    }
  };
  walk(root);
  return [...found].sort();
}

/** The routes an OpenAPI document describes, in the form of `mountedRoutes`. */
export function documentedRoutes(document: { paths: Record<string, Record<string, unknown>> }): RouteKey[] {
  const found: RouteKey[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    const expressPath = path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
    for (const method of HTTP_METHODS) {
      if (item[method] !== undefined) found.push(`${method.toUpperCase()} ${expressPath}`);
    }
  }
  return found.sort();
}
