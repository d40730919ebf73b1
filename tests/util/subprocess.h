// Test utility: runs a program to completion with optional standard input and
// captures its exit status, standard output and standard error. For tests of
// the blockserve command-line tool. Thread-compatible.
#ifndef BLOCKSERVE_TESTS_UTIL_SUBPROCESS_H_
#define BLOCKSERVE_TESTS_UTIL_SUBPROCESS_H_

#include <string>
#include <vector>

namespace blockserve::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 if it did not exit normally (killed, timed out)
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with argv, writing `input` to its stdin. Kills it
// after `timeout_s` seconds.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "",
                         int timeout_s = 120);

// Runs the built blockserve tool (BLOCKSERVE_BIN) with `args`.
ProcessResult RunBlockserve(const std::vector<std::string>& args, const std::string& input = "");

// The last non-empty line of `text` (a command's final JSON object), or "".
std::string LastLine(const std::string& text);

}  // namespace blockserve::testing

#endif  // BLOCKSERVE_TESTS_UTIL_SUBPROCESS_H_
