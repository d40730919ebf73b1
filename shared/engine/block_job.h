// BlockJob / BlockResult: the unit of work between the global stage (context
// scheduler) and the local stage (token decoding).
//
// A job carries everything needed to decode one block of tokens from one
// context embedding, so any token decoder — in process or a remote token
// worker — can take any block, and decoding a job twice gives the same
// tokens (sampling draws depend only on seed and position).
#ifndef BLOCKSERVE_SHARED_ENGINE_BLOCK_JOB_H_
#define BLOCKSERVE_SHARED_ENGINE_BLOCK_JOB_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "shared/engine/request.h"

namespace blockserve {

struct BlockJob {
  uint64_t session_id = 0;
  uint64_t block_index = 0;     // generated block number within the session
  std::vector<float> context;   // the context embedding c_b (P floats)
  int64_t first_position = 0;   // sequence position of the block's first token
  int32_t num_tokens = 0;       // tokens to decode, 1..L_B
  SamplingParams sampling;
  bool stop_at_eos = true;      // stop the block after an EOS token
  int32_t eos_token_id = 0;
  bool return_logprobs = false;
};

struct BlockResult {
  uint64_t session_id = 0;
  uint64_t block_index = 0;
  std::vector<int32_t> tokens;  // decoded ids; fewer than num_tokens only after EOS
  std::vector<float> logprobs;  // one per token when requested
  absl::Status status;          // non-OK: the block could not be decoded
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_BLOCK_JOB_H_
