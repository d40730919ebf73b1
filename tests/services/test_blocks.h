// Test helpers for the services: block jobs with random context embeddings
// and their reference decoding (one TokenDecodeBatcher, the job alone).
#ifndef BLOCKSERVE_TESTS_SERVICES_TEST_BLOCKS_H_
#define BLOCKSERVE_TESTS_SERVICES_TEST_BLOCKS_H_

#include <random>
#include <string>

#include "shared/engine/block_job.h"
#include "shared/engine/token_decode_batcher.h"
#include "shared/model/model.h"

namespace blockserve::services::testing {

inline std::string ModelDir(const std::string& name) {
  return std::string(BLOCKSERVE_TEST_DATA_DIR) + "/models/" + name;
}

// A block of `tokens` tokens from a random context embedding (seeded).
inline BlockJob MakeJob(int context_size, uint64_t session, uint32_t seed, int tokens = 4,
                        float temperature = 0.8f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  BlockJob job;
  job.session_id = session;
  job.block_index = 3;
  job.context.resize(context_size);
  for (float& v : job.context) v = normal(rng);
  job.first_position = 8;
  job.num_tokens = tokens;
  job.sampling = {.temperature = temperature, .top_k = 0, .top_p = 1.0f, .seed = seed};
  job.stop_at_eos = false;
  job.return_logprobs = true;
  return job;
}

// Decodes `job` alone with a fresh model and batcher.
inline BlockResult DecodeAlone(const std::string& model_dir, const BlockJob& job) {
  auto backend = *CreateBackend({.device = "cpu", .threads = 1});
  auto model = *Model::Load(model_dir, *backend, {.load_block_decoder = false});
  auto batcher = *TokenDecodeBatcher::Create(*model->token_decoder(), *backend, {});
  BlockResult failed;
  failed.status = batcher->Submit(job);
  if (!failed.status.ok()) return failed;
  while (true) {
    std::vector<BlockResult> done = batcher->Step();
    if (!done.empty()) return done[0];
  }
}

}  // namespace blockserve::services::testing

#endif  // BLOCKSERVE_TESTS_SERVICES_TEST_BLOCKS_H_
