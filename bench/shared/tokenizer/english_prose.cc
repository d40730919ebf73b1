#include "bench/shared/tokenizer/english_prose.h"

#include <cstdint>
#include <vector>

namespace blockserve::bench {
namespace {

// Placeholders: {N} name, {P} place, {T} thing, {A} adjective, {#} number.
const char* const kParagraphs[] = {
    "When {N} arrived in {P} the harbour was already quiet. The fishing "
    "boats had come in before noon, and the men who sold {T} on the quay "
    "were counting their coins and arguing about the weather. {N} had "
    "travelled for {#} days to get there, and the last of the money had "
    "gone on a {A} room above a bakery.",
    "It is often said that a good {T} is worth more than a clever plan. "
    "Whether that is true depends on who you ask: the engineers in {P} "
    "would tell you that nothing survives contact with a deadline, while "
    "the accountants would point out that the {A} estimate was off by "
    "{#} percent, again.",
    "\"I don't think you understand,\" said {N}, putting down the {T}. "
    "\"We've tried this before. We tried it in {P}, and we tried it the "
    "year after that. It didn't work then and it won't work now.\" Nobody "
    "answered. Somewhere outside a dog barked {#} times and then stopped.",
    "The report, published on {#} March, describes how the {A} system in "
    "{P} handled the increase in traffic. Requests were queued, batched and "
    "answered in order; the median latency rose from {#} to {#} "
    "milliseconds, but no request was lost. The authors recommend adding "
    "capacity before the next season rather than after it.",
    "She kept a notebook for everything: the price of {T}, the names of the "
    "people she met, the trains she missed. By the end of the summer it "
    "held {#} pages of small, careful handwriting, and {N} used to joke "
    "that it was the only {A} history of {P} anyone would ever write.",
    "Rain fell all night on the roofs of {P}. In the morning the streets "
    "were full of puddles, and the children walked to school in a long, "
    "noisy line, jumping in every one of them. Their teacher, a {A} woman "
    "called {N}, pretended not to notice.",
    "To install the package, download the archive, unpack it, and run the "
    "setup script with the --prefix option. If the script complains about a "
    "missing {T}, install it first; version {#}.{#} or later is required. "
    "Then restart the service and check the log for errors.",
    "Nobody remembers exactly when the bridge at {P} was built. Some say "
    "it was the Romans; others insist it was a local baron who wanted to "
    "charge a toll for every {T} that crossed the river. What is certain is "
    "that it has stood for at least {#} years, and that it is {A}.",
    "{N} looked at the map again. The road went north for {#} miles and "
    "then simply stopped, as if whoever drew it had lost interest. \"That "
    "can't be right,\" {N} muttered, but there was no one to ask, only a "
    "{A} sky and the wind moving through the grass.",
    "The committee met on Tuesday to discuss the budget. After a long "
    "debate about the cost of {T}, it was agreed that the {A} proposal "
    "from {P} should be adopted, subject to a review in {#} months. The "
    "chair thanked everyone for their patience and closed the meeting.",
    "In the old kitchen there was a shelf of jars, each with a label in "
    "faded ink: flour, sugar, salt, {T}. {N}'s grandmother had written them "
    "in {#}, the year she moved to {P}, and nobody had dared to change "
    "them since. The jars were {A}, and so was the kitchen.",
    "Questions? Write to the support team and include your order number, "
    "the date of purchase and a short description of the problem. We answer "
    "most messages within {#} hours. Please don't send the {T} back before "
    "we've confirmed that a return is the right thing to do.",
};

const char* const kNames[] = {"Anna",  "Tom",    "Margaret", "Oliver",
                              "Priya", "Samuel", "Eleanor",  "Jonas",
                              "Clara", "Hugh",   "Nadia",    "Peter"};
const char* const kPlaces[] = {"Lisbon",    "the valley",  "Aberdeen",
                               "the north", "Kingsbridge", "Marseille",
                               "the city",  "Halifax",     "Oldham"};
const char* const kThings[] = {"lantern",   "bicycle", "contract",  "ladder",
                               "telescope", "teapot",  "library",   "engine",
                               "compass",   "violin",  "dictionary"};
const char* const kAdjectives[] = {"remarkable", "quiet",   "expensive",
                                   "ordinary",   "fragile", "stubborn",
                                   "beautiful",  "useless", "famous"};

// A small deterministic generator (xorshift64*).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ULL;
  }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Next() % N];
  }

 private:
  uint64_t state_;
};

}  // namespace

std::string GenerateEnglishProse(size_t bytes) {
  Random random(0x5EED5EEDULL);
  std::string out;
  out.reserve(bytes + 1024);
  while (out.size() < bytes) {
    for (const char* p = random.Pick(kParagraphs); *p != '\0'; ++p) {
      if (*p == '{' && p[1] != '\0' && p[2] == '}') {
        switch (p[1]) {
          case 'N':
            out += random.Pick(kNames);
            break;
          case 'P':
            out += random.Pick(kPlaces);
            break;
          case 'T':
            out += random.Pick(kThings);
            break;
          case 'A':
            out += random.Pick(kAdjectives);
            break;
          default:
            out += std::to_string(1 + random.Next() % 500);
            break;
        }
        p += 2;
      } else {
        out += *p;
      }
    }
    out += random.Next() % 4 == 0 ? "\n\n" : "\n";
  }
  return out;
}

}  // namespace blockserve::bench
