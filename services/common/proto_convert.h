// Conversions between the engine's value types (shared/engine) and the
// messages of proto/blockserve/v1. Handlers call these and nothing else to
// cross the transport boundary, so every field is mapped in one place.
//
// Pure functions; thread-safe.
#ifndef BLOCKSERVE_SERVICES_COMMON_PROTO_CONVERT_H_
#define BLOCKSERVE_SERVICES_COMMON_PROTO_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "blockserve/v1/common.pb.h"
#include "blockserve/v1/context.pb.h"
#include "blockserve/v1/token_worker.pb.h"
#include "shared/engine/block_job.h"
#include "shared/engine/request.h"
#include "shared/model/model_config.h"

namespace blockserve::services {

v1::FinishReason ToProto(FinishReason reason);
// kNone for FINISH_REASON_UNSPECIFIED (and unknown values).
FinishReason FromProto(v1::FinishReason reason);

void ToProto(const SamplingParams& sampling, v1::ResolvedSampling* out);
SamplingParams FromProto(const v1::ResolvedSampling& sampling);

void ToProto(const BlockJob& job, v1::DecodeBlock* out);
BlockJob FromProto(const v1::DecodeBlock& block);
void ToProto(const BlockResult& result, v1::DecodedBlock* out);
BlockResult FromProto(const v1::DecodedBlock& block);

// The context service's request <-> the engine's.
void ToProto(const GenerationRequest& request, v1::ContextGenerateRequest* out);
GenerationRequest FromProto(const v1::ContextGenerateRequest& request);

// `name`: the model's name (its directory's base name).
void ToProto(const ModelConfig& config, const std::string& name, v1::ModelInfo* out);
// The fields of a ModelConfig that request validation needs (vocabulary,
// EOS, block length, maximum length); the layer stacks stay empty.
ModelConfig ConfigForValidation(const v1::ModelInfo& info);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_PROTO_CONVERT_H_
