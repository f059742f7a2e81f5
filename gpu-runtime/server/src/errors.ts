// Errors of the server process itself (bad options, refused start-up, missing backend). CUDA-level
// failures of a session are CudaError (backend.ts) and travel to the client as a CUresult instead.

export type ServerErrorCode =
  | 'RGPU_ERR_BAD_ARGS'
  | 'RGPU_ERR_INSECURE_LISTEN'
  | 'RGPU_ERR_BACKEND_UNAVAILABLE'
  | 'RGPU_ERR_BAD_DEVICE_SPEC'
  | 'RGPU_ERR_TLS_CONFIG';

export class ServerError extends Error {
  constructor(readonly code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerError';
  }
}
