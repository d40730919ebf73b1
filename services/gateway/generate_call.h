// GenerateCall: one public Generate request through the gateway.
//
//   handler (gRPC thread): draining? -> UNAVAILABLE; CheckGenerateRequest
//     -> INVALID_ARGUMENT; admission full -> RESOURCE_EXHAUSTED (all before
//     any expensive work); else admitted now or queued.
//   Begin (work pool): tokenize, resolve the seed, pick the least-loaded
//     context replica, write the first message (seed, prompt tokens), open
//     the upstream ContextService.Generate stream with a deadline (the
//     client's, capped by --max-request-seconds).
//   upstream messages (gRPC thread): tokens -> OutputAssembler (detokenize,
//     stop sequences) -> client messages; a stop match finishes the request
//     and cancels the upstream session.
//   end: a last message with the finish reason, usage and seed; or the
//     upstream error, mapped through status_mapping. The admission slot and
//     the replica are released exactly once.
//   client cancel / deadline: the queued request is withdrawn, or the
//     upstream call is cancelled (the context service frees the session).
//
// The server stream (ServerStream) and the upstream reactor share this
// object; it lives until both are done. Thread-safe (one mutex; no gRPC
// operation waits on it).
#ifndef BLOCKSERVE_SERVICES_GATEWAY_GENERATE_CALL_H_
#define BLOCKSERVE_SERVICES_GATEWAY_GENERATE_CALL_H_

#include "blockserve/v1/generation.grpc.pb.h"
#include "services/gateway/gateway_context.h"

namespace blockserve::services {

// Handles one Generate call; returns the reactor for gRPC.
grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateCall(
    GatewayContext& gateway, grpc::CallbackServerContext* context,
    const v1::GenerateRequest* request);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_GENERATE_CALL_H_
