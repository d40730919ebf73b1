// Named model configurations: the paper's models (spec section 5) and small
// test models.
//
// block_main_b4_{5,19,85,300,800,1.2b}: V 50304, L_B 4, R 2, MLP 4x, P = H.
// vanilla_{31,70,160,410}: Pythia-style GPT-NeoX, V 50304, 2048 positions.
// block_tiny, block_tiny_mixed, block_tiny_b2, vanilla_tiny: V 512, cheap
// enough for unit tests (see presets.cc for their sizes).
// Pure functions; thread-safe.
#ifndef BLOCKSERVE_SHARED_MODEL_PRESETS_H_
#define BLOCKSERVE_SHARED_MODEL_PRESETS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shared/model/model_config.h"

namespace blockserve {

// The configuration called `name`; NOT_FOUND (listing the known names)
// otherwise.
absl::StatusOr<ModelConfig> PresetConfig(absl::string_view name);

// Every preset name, paper models first.
std::vector<std::string> PresetNames();

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_PRESETS_H_
