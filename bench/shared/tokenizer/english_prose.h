// English prose for the tokenizer benchmarks, generated at run time: a set
// of paragraphs written for Blockserve, repeated in a seeded random order
// with names, places, numbers and nouns varied, so that the text has the
// word statistics of ordinary prose rather than of one repeated sentence.
// Deterministic for a given size. Thread-safe (no shared state).
#ifndef BLOCKSERVE_BENCH_SHARED_TOKENIZER_ENGLISH_PROSE_H_
#define BLOCKSERVE_BENCH_SHARED_TOKENIZER_ENGLISH_PROSE_H_

#include <cstddef>
#include <string>

namespace blockserve::bench {

// About `bytes` bytes (a little more: whole paragraphs) of English prose.
std::string GenerateEnglishProse(size_t bytes);

}  // namespace blockserve::bench

#endif  // BLOCKSERVE_BENCH_SHARED_TOKENIZER_ENGLISH_PROSE_H_
