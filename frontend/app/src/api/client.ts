// The typed API client: openapi-fetch over the types openapi-typescript generates from the
// service's OpenAPI document (schema.d.ts; `make api-client` regenerates it and a test fails
// when it drifts from the service).
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

let bearer: string | null = null;

/** The session token sent with every request (null: signed out). */
export function setBearer(token: string | null): void {
  bearer = token;
}

const auth: Middleware = {
  onRequest({ request }) {
    if (bearer) request.headers.set("Authorization", `Bearer ${bearer}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
api.use(auth);

/** An error from the API, carrying its own `detail` for the person to read. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

function detailOf(error: unknown, status: number): string {
  if (error && typeof error === "object" && "detail" in error) {
    const detail = (error as { detail: unknown }).detail;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }
  return `the service answered ${status}`;
}

/** The data of an openapi-fetch result, or an ApiError with the API's detail. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw new ApiError(result.response.status, detailOf(result.error, result.response.status));
  }
  return result.data as T;
}
