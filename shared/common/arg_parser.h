// Command-line option parsing for the blockserve tool and the services.
//
// Each command declares its options with a target variable, a help text and
// whether it is required; Parse() fills the targets from `--name value` or
// `--name=value` arguments and reports the first problem as an
// INVALID_ARGUMENT status whose message names the option. `--help` is always
// accepted and only sets help_requested(). Not thread-safe; targets are owned
// by the caller and must outlive the parser.
#ifndef BLOCKSERVE_SHARED_COMMON_ARG_PARSER_H_
#define BLOCKSERVE_SHARED_COMMON_ARG_PARSER_H_

#include <cstdint>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"

namespace blockserve {

class ArgParser {
 public:
  // `command` is shown in the usage line ("blockserve run"), `summary` under it.
  ArgParser(std::string command, std::string summary);

  void AddString(std::string name, std::string* target, std::string help,
                 bool required = false);
  void AddInt(std::string name, int64_t* target, std::string help, bool required = false);
  void AddInt(std::string name, int* target, std::string help, bool required = false);
  void AddUint64(std::string name, uint64_t* target, std::string help, bool required = false);
  void AddDouble(std::string name, double* target, std::string help, bool required = false);
  // A switch: present means true. `--name=false` is also accepted.
  void AddBool(std::string name, bool* target, std::string help);
  // An option that may be given several times; each value is appended.
  void AddRepeated(std::string name, std::vector<std::string>* target, std::string help);

  // Parses args (without the program and command names).
  absl::Status Parse(const std::vector<std::string>& args);
  absl::Status Parse(int argc, char** argv);  // argv[0] is skipped

  bool help_requested() const { return help_requested_; }
  // True when the option was given on the command line.
  bool WasSet(absl::string_view name) const;
  std::string Usage() const;

 private:
  struct Option {
    std::string name;
    std::string help;
    std::string value_hint;  // empty for switches
    bool required = false;
    bool is_switch = false;
    bool seen = false;
    std::function<absl::Status(absl::string_view)> assign;
    std::string default_text;
  };
  void Add(Option option);
  Option* Find(absl::string_view name);

  std::string command_;
  std::string summary_;
  std::vector<Option> options_;
  bool help_requested_ = false;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_COMMON_ARG_PARSER_H_
