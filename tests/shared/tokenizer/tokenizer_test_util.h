// Helpers shared by the tokenizer tests: the reference tokenizers copied
// into tests/data/tokenizers (loaded once per test binary) and a small
// synthetic byte-level BPE tokenizer.json for load and merge tests.
// Not thread-safe to initialize; the loaded tokenizers are shared read-only.
#ifndef BLOCKSERVE_TESTS_SHARED_TOKENIZER_TOKENIZER_TEST_UTIL_H_
#define BLOCKSERVE_TESTS_SHARED_TOKENIZER_TOKENIZER_TEST_UTIL_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve::testing {

// tests/data/tokenizers/<name>/tokenizer.json; name is "gpt2" or
// "gpt-neox-20b".
std::string TokenizerPath(const std::string& name);
// Loaded once and kept for the whole test binary.
const Tokenizer& ReferenceTokenizer(const std::string& name);

// A byte-level BPE tokenizer.json: the 256 byte symbols (ids 0..255), then
// `extra_tokens` (ids from 256 on), the given merges ("a b" strings) and a
// ByteLevel pre-tokenizer and decoder.
nlohmann::json MinimalTokenizerJson(
    const std::vector<std::string>& extra_tokens,
    const std::vector<std::string>& merges);

// The id of a byte-level token or fails the test.
int32_t IdOf(const Tokenizer& tokenizer, const std::string& token);

// Reads a whole file (fails the test when it cannot).
std::string ReadTestFile(const std::string& path);

}  // namespace blockserve::testing

#endif  // BLOCKSERVE_TESTS_SHARED_TOKENIZER_TOKENIZER_TEST_UTIL_H_
